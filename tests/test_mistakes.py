"""The catalogue of plausible wrong solutions: each one loses exactly the points of its question, and says why.

**Format** (shared by every assignment). ``tests/mistakes/a<assignment>.py`` (``a01_feedforward.py`` for
``assignments/source/01_feedforward``; the ``a`` makes it an importable name) defines ``MISTAKES``, a list of
dicts, each one wrong answer a student could plausibly write:

``name``
    short, unique within the file (the pytest id: ``01_feedforward/softmax_no_max_shift``).
``cell``
    grade_id of the *solution* cell the wrong answer replaces (the whole cell).
``source``
    the code of the replacement cell (the whole cell: ``def f(...): ...``).
``caught_by``
    grade_id of the graded test cell that must fail: the only cell that loses points (no cascade).
``visible``
    True: a check of the cell's *visible* part fails (the student can see it before submitting);
    False: the visible part passes by design and a *hidden* check fails.
``message``
    a substring of the diagnosis of a failed check of that part (the part ``visible`` names): the feedback
    must point at this mistake.

**How it runs** (the grader's in-process route of ``course_lib.checks``; about as fast as the cells themselves):
for each assignment, one kernel runs the source notebook's setup, solution and graded test cells with
``RNN_COURSE_CHECKS=reference`` (the solution's records); a second kernel, in ``record`` mode and able to
import only the notebook's ``course.sandbox_modules`` from course_lib (as in the grader's sandbox), runs the
setup and solution cells once, then for each mistake: the wrong cell, every graded test cell (visible and
hidden parts, in notebook order), and the right cell again. Every graded cell is judged with
:func:`course_lib.checks.judge_cell` against the reference records; a cell that writes to stderr fails too
(nbgrader scores that as a failure). Ungraded cells (training, plots) are not run: they decide no grade.
Reusing the kernel is faithful because test cells only read the student's functions and restore any name they
rebind. Marked slow (it starts two kernels per assignment).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import queue
import re
from pathlib import Path

import nbformat
import pytest

from course_lib.checks import judge_cell, records_of
from course_lib.grading.reference import sandbox_modules

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "assignments" / "source"
CATALOGUES = ROOT / "tests" / "mistakes"
KEYS = {"name", "cell", "source", "caught_by", "visible", "message"}
CELL_TIMEOUT = 300


def load_catalogue(path: Path, name: str = "MISTAKES") -> list[dict]:
    spec = importlib.util.spec_from_file_location(f"mistakes_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name, [])


def catalogues(name: str = "MISTAKES") -> dict[str, list[dict]]:
    return {path.stem[1:]: load_catalogue(path, name) for path in sorted(CATALOGUES.glob("a*.py"))}


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_graded_test(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_solution(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("solution")) and not meta.get("grade")


def is_setup(cell) -> bool:
    return cell.cell_type == "code" and grade_id(cell) is not None and grade_id(cell).startswith("setup")


# the grader's sandbox holds only the notebook's sandbox_modules of course_lib: refuse the others on import
IMPORT_GUARD = """
import importlib.abc, sys
class _SandboxOnly(importlib.abc.MetaPathFinder):
    allowed = {allowed!r}
    def find_spec(self, name, path=None, target=None):
        if name.startswith("course_lib.") and not any(name == m or name.startswith(m + ".") for m in self.allowed):
            raise ModuleNotFoundError(f"No module named {{name!r}} (not installed in the grader's sandbox)")
        return None
sys.meta_path.insert(0, _SandboxOnly())
del _SandboxOnly
"""


class Kernel:
    """A Jupyter kernel that runs cells and returns their outputs as nbformat output dicts."""

    def __init__(self, mode: str, allowed: list[str] | None = None):
        from jupyter_client.manager import start_new_kernel

        env = dict(os.environ, RNN_COURSE_CHECKS=mode, PYTHONWARNINGS="ignore")
        env.pop("NBGRADER_EXECUTION", None)
        env.pop("RNN_COURSE_GRADING_KEY", None)
        env.pop("RNN_COURSE_GRADING_SECRET", None)
        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(ROOT))
        if allowed is not None:
            outputs = self.run(IMPORT_GUARD.format(allowed=sorted(allowed)))
            assert not failed(outputs), outputs

    def run(self, code: str) -> list[dict]:
        outputs: list[dict] = []

        def hook(msg):
            kind, content = msg["header"]["msg_type"], msg["content"]
            if kind == "stream":
                outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
            elif kind in ("display_data", "execute_result"):
                outputs.append({"output_type": "display_data", "data": content["data"]})
            elif kind == "error":
                outputs.append({"output_type": "error", "ename": content["ename"], "evalue": content["evalue"]})

        try:
            self.kc.execute_interactive(code, output_hook=hook, timeout=CELL_TIMEOUT, allow_stdin=False)
        except (TimeoutError, queue.Empty):
            outputs.append({"output_type": "error", "ename": "Timeout", "evalue": f"over {CELL_TIMEOUT} s"})
        return outputs

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def failed(outputs: list[dict]) -> bool:
    return any(o["output_type"] == "error" or (o["output_type"] == "stream" and o["name"] == "stderr")
               for o in outputs)


def cell_problems(reference: list[dict], outputs: list[dict]) -> list[str]:
    """judge_cell's messages, plus stderr (nbgrader's rule) when the cell wrote there."""
    problems = judge_cell(reference, records_of(outputs))
    stderr = "".join(o["text"] for o in outputs if o["output_type"] == "stream" and o["name"] == "stderr")
    if stderr:
        problems.append(f"the cell wrote to stderr: {stderr[:200]!r}")
    return problems


# Shared by every module of a session, keyed on the source notebook's bytes: the reference records of each
# assignment (a pure function of the notebook: a fresh reference-mode kernel, fixed seeds, no secret), and the
# grades of the ``assignments`` fixture (test_mistakes and test_verdict_agreement grade the same catalogue
# answers on the same kind of record-mode kernel; each was graded twice, once per module).
_REFERENCES: dict[tuple[str, str], dict[str, list[dict]]] = {}
_FIXTURE_GRADES: dict[tuple[str, str], dict[tuple[str, str], dict[str, list[str]]]] = {}
BASELINE = ("", "")  # grade_with's key of the solution itself (no cell replaced)


class Assignment:
    """The two kernels of one assignment: the solution's reference records and a student kernel (started on
    first use: a session computes each assignment's reference records once)."""

    def __init__(self, assignment: str, graded: dict | None = None):
        self.name = assignment
        path = SOURCE / assignment / f"{assignment}.ipynb"
        self.nb = nbformat.read(path, as_version=4)
        self.key = (assignment, hashlib.sha256(path.read_bytes()).hexdigest())
        listed = self.nb.metadata.get("course", {}).get("sandbox_modules")
        assert listed and "course_lib.checks" in listed, f"{assignment}: metadata course.sandbox_modules"
        self.allowed = sandbox_modules(self.nb)  # what the sandbox installs: these, plus what it always does
        self.setup = [c for c in self.nb.cells if is_setup(c)]
        self.solutions = {grade_id(c): c.source for c in self.nb.cells if is_solution(c)}
        self.tests = [c for c in self.nb.cells if is_graded_test(c)]
        self.kernels: list[Kernel] = []
        self.graded: dict[tuple[str, str], dict[str, list[str]]] = {} if graded is None else graded
        self._student: Kernel | None = None
        if self.key not in _REFERENCES:
            _REFERENCES[self.key] = self._reference_records()
        self.reference = _REFERENCES[self.key]

    def _reference_records(self) -> dict[str, list[dict]]:
        assignment = self.name
        reference = self._kernel("reference")
        for cell in self.setup + [c for c in self.nb.cells if is_solution(c)]:
            outputs = reference.run(cell.source)
            assert not failed(outputs), f"{assignment}: {grade_id(cell)} failed in reference mode: {outputs}"
        records = {}
        for cell in self.tests:
            outputs = reference.run(cell.source)
            assert not failed(outputs), f"{assignment}: {grade_id(cell)} failed in reference mode: {outputs}"
            records[grade_id(cell)] = [r for r in records_of(outputs) if "spec" in r]
            assert records[grade_id(cell)], f"{assignment}: {grade_id(cell)} checks nothing"
        reference.close()
        self.kernels.remove(reference)
        return records

    @property
    def student(self) -> Kernel:
        """The record-mode kernel with the sandbox's modules only, setup and solution cells run."""
        if self._student is None:
            self._student = self._kernel("record", self.allowed)
            for cell in self.setup + [c for c in self.nb.cells if is_solution(c)]:
                outputs = self._student.run(cell.source)
                assert not failed(outputs), \
                    f"{self.name}: {grade_id(cell)} failed in the sandbox's modules: {outputs}"
        return self._student

    def _kernel(self, mode: str, allowed=None) -> Kernel:
        kernel = Kernel(mode, allowed)
        self.kernels.append(kernel)
        return kernel

    def grade(self) -> dict[str, list[str]]:
        """The problems of every graded test cell, run on the student kernel as it stands."""
        return {grade_id(c): cell_problems(self.reference[grade_id(c)], self.student.run(c.source))
                for c in self.tests}

    def grade_with(self, cell: str, source: str) -> dict[str, list[str]]:
        """Grades with the solution cell ``cell`` replaced by ``source`` (then put back); remembered, so that
        the class report below reuses the grades of the tests above."""
        if (cell, source) in self.graded:
            return self.graded[(cell, source)]
        self.student.run(source)
        try:
            self.graded[(cell, source)] = self.grade()
            return self.graded[(cell, source)]
        finally:
            restored = self.student.run(self.solutions[cell])
            assert not failed(restored), restored

    def close(self) -> None:
        for kernel in self.kernels:
            kernel.close()


CATALOGUES_BY_ASSIGNMENT = catalogues()
# Known hints that a check without one precedes (the test cell's owner is to attach the hint to the check that
# fails first); the test fails as soon as one is fixed, so that the list only shrinks.
HINT_NOT_FIRST = {
}
CASES = [(a, m) for a, ms in CATALOGUES_BY_ASSIGNMENT.items() for m in ms]
# A catalogue may also define RIGHT: other correct answers (``name``, ``cell``, ``source``), written the way a
# student could, that must score full marks: the tests may not assume the solution's way of doing it.
RIGHT = [(a, r) for a, rs in catalogues("RIGHT").items() for r in rs]


@pytest.fixture(scope="module")
def assignments():
    """name -> :class:`Assignment`, opened on first use; its grades are the session's (see _FIXTURE_GRADES)."""
    opened: dict[str, Assignment] = {}

    def get(name: str) -> Assignment:
        if name not in opened:
            path = SOURCE / name / f"{name}.ipynb"
            key = (name, hashlib.sha256(path.read_bytes()).hexdigest())
            opened[name] = Assignment(name, graded=_FIXTURE_GRADES.setdefault(key, {}))
            if BASELINE not in opened[name].graded:
                opened[name].graded[BASELINE] = opened[name].grade()
            baseline = opened[name].graded[BASELINE]
            assert not any(baseline.values()), f"{name}: the solution itself fails: {baseline}"
        return opened[name]

    yield get
    for assignment in opened.values():
        assignment.close()


def test_catalogues_are_well_formed():
    assert CATALOGUES_BY_ASSIGNMENT, "no catalogue under tests/mistakes"
    for assignment, mistakes in CATALOGUES_BY_ASSIGNMENT.items():
        nb = nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4)
        solutions = {grade_id(c) for c in nb.cells if is_solution(c)}
        tests = {grade_id(c) for c in nb.cells if is_graded_test(c)}
        assert len(mistakes) >= 8, f"{assignment}: at least eight plausible wrong solutions"
        names = [m["name"] for m in mistakes]
        assert len(names) == len(set(names)), f"{assignment}: duplicate names"
        for m in mistakes:
            assert set(m) == KEYS, f"{assignment}/{m.get('name')}: keys {sorted(set(m) ^ KEYS)}"
            assert m["cell"] in solutions, f"{assignment}/{m['name']}: no solution cell {m['cell']!r}"
            assert m["caught_by"] in tests, f"{assignment}/{m['name']}: no test cell {m['caught_by']!r}"
            assert isinstance(m["visible"], bool) and m["message"], m["name"]
            assert "### BEGIN SOLUTION" not in m["source"], m["name"]


@pytest.mark.slow
@pytest.mark.parametrize(("assignment", "right"), RIGHT, ids=[f"{a}/{r['name']}" for a, r in RIGHT])
def test_another_right_answer_scores_full_marks(assignments, assignment, right):
    assert set(right) == {"name", "cell", "source"}, right
    graded = assignments(assignment).grade_with(right["cell"], right["source"])
    assert not any(graded.values()), {cell: problems for cell, problems in graded.items() if problems}


@pytest.mark.slow
@pytest.mark.parametrize(("assignment", "mistake"), CASES, ids=[f"{a}/{m['name']}" for a, m in CASES])
def test_mistake_loses_exactly_its_question_with_a_message(assignments, assignment, mistake):
    graded = assignments(assignment).grade_with(mistake["cell"], mistake["source"])
    failing = {cell for cell, problems in graded.items() if problems}
    assert failing == {mistake["caught_by"]}, f"failing cells {sorted(failing)}: {graded}"
    problems = graded[mistake["caught_by"]]
    visible = [p for p in problems if not p.startswith("hidden test")]
    hidden = [p for p in problems if p.startswith("hidden test")]
    if mistake["visible"]:
        assert visible, f"only hidden checks catch it: {problems}"
        assert any(mistake["message"] in p for p in visible), f"no visible message names the mistake: {visible}"
    else:
        assert not visible, f"the visible test catches it (mark it visible=True): {visible}"
        assert any(mistake["message"] in p for p in hidden), f"no hidden message names the mistake: {hidden}"
    part = visible if mistake["visible"] else hidden
    hints = {text for record in assignments(assignment).reference[mistake["caught_by"]]
             for text in record.get("mistakes") or {}}
    if any(mistake["message"] in hint for hint in hints):
        # a hint is read where the test stops: the first failed check (assert mode raises there; the
        # sandbox's feedback lists it first)
        case = f"{assignment}/{mistake['name']}"
        if case in HINT_NOT_FIRST:
            assert mistake["message"] not in part[0], f"{case} is fixed: take it out of HINT_NOT_FIRST"
        else:
            assert mistake["message"] in part[0], f"the hint comes after another failed check: {part}"
    # the student's feedback (after the hidden tests are taken out) shows the message
    shown = feedback_of(assignments(assignment).nb, problems)
    assert any(mistake["message"] in line for line in shown.splitlines()), shown


def feedback_of(nb, problems: list[str]) -> str:
    """The text of the GradingError a failed cell shows in the feedback (as course_lib.grading.verdict writes
    it, then through the feedback's redaction of hidden test code)."""
    from course_lib.grading.feedback import hidden_lines, inert_output

    text = "\n".join(f"- {line}" for line in problems)
    error = {"output_type": "error", "ename": "GradingError", "evalue": f"{len(problems)} check(s) failed",
             "traceback": [f"GradingError: {len(problems)} check(s) failed\n{text}"]}
    return "\n".join(inert_output(error, hidden_lines(nb))["traceback"])


DOUBLED = re.compile(r"(?<![\w'.])([A-Za-z_][\w]*) \1(?![\w'])")


@pytest.mark.slow
@pytest.mark.parametrize("assignment", sorted(CATALOGUES_BY_ASSIGNMENT))
def test_no_message_repeats_its_name(assignments, assignment):
    """Every message a check of the assignment can show (each hint, and the generic diagnoses) says its key
    once: no "db db has the right shape"."""
    from course_lib.checks import message

    a = assignments(assignment)
    generic = ["differs from the expected values", "is not the expected value", "is all zeros"]
    for records in a.reference.values():
        for record in records:
            for problem in [*(record.get("mistakes") or {}), *generic]:
                text = message(record["test"], record["key"], record["spec"], problem)
                assert not DOUBLED.search(text), text


@pytest.mark.slow
@pytest.mark.parametrize("assignment", sorted(CATALOGUES_BY_ASSIGNMENT))
def test_class_report_counts_what_the_catalogue_says(assignments, assignment, tmp_path):
    """The catalogue graded as a class (each wrong answer one student, plus one right answer): the
    misconception report counts, per question, exactly the students the catalogue says it catches, each under
    the named mistake its message names (else "failed otherwise"), as visible or hidden as the catalogue says."""
    from course_lib.checks import message
    from course_lib.grading import misconceptions as mc

    a = assignments(assignment)
    mistakes = CATALOGUES_BY_ASSIGNMENT[assignment]
    results = {m["name"]: {gid: mc.verdict_record(not problems, problems)
                           for gid, problems in a.grade_with(m["cell"], m["source"]).items()} for m in mistakes}
    results["right"] = {gid: mc.verdict_record(True, []) for gid in a.reference}
    checks = mc.catalogue(a.reference)
    points = {grade_id(c): c.metadata.nbgrader.points for c in a.tests}
    tallies = {q.grade_id: q for q in mc.tally(assignment, checks, points, results, roster=["absent"])}
    assert list(tallies) == [grade_id(c) for c in a.tests]
    for gid, q in tallies.items():
        caught = [m for m in mistakes if m["caught_by"] == gid]
        # each named mistake with the message a student reads (the check's name, then the mistake's text)
        named = {text: message(c["test"], c["key"], c["spec"], text) for c in checks[gid] for text in c["mistakes"]}
        assert q.n == len(mistakes) + 2
        assert sorted(q.students["passed"]) == sorted({m["name"] for m in mistakes} - {m["name"] for m in caught}
                                                      | {"right"})
        assert q.students["missing"] == ["absent"] and not q.students["unanswered"] and not q.students["timeout"]
        for m in caught:
            # the named mistakes this student reads in their feedback: counted under each, else "failed otherwise"
            problems = results[m["name"]][gid]["failed"]
            hits = {text for text, shown in named.items() if shown in problems}
            if hits:
                assert m["name"] in q.students["mistake"], (gid, m["name"])
                assert all(m["name"] in q.mistakes[text] for text in hits), (gid, m["name"], hits)
            else:
                assert m["name"] in q.students["other"], (gid, m["name"])
            assert not any(m["name"] in q.mistakes[text] for text in set(named) - hits), (gid, m["name"])
            assert m["name"] in (q.visible_failed if m["visible"] else q.hidden_only), (gid, m["name"])
        assert len(q.students["mistake"]) + len(q.students["other"]) == len(caught)
        assert sum(len(v) for v in q.mistakes.values()) >= len(q.students["mistake"])
    assert any(q.students["mistake"] for q in tallies.values()), "no wrong answer of the catalogue is a named mistake"
    paths = mc.write_reports(list(tallies.values()), str(tmp_path), f"{assignment}: what the class got wrong")
    text = open(paths["misconceptions_csv"], encoding="utf-8").read()
    assert text.count("\n") == 1 + sum(6 + len(q.mistakes) + 2 for q in tallies.values())
    assert "absent" not in text and "absent" not in open(paths["misconceptions_html"], encoding="utf-8").read()
