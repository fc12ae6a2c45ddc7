"""Stub answers that hand each check back its own expected value score nothing (the forgery of issue "stub
answers score by handing back the test's own expected values").

The submission is the release notebook (every answer a stub raising ``NotImplementedError``) with one student
cell first, :data:`FORGERY`, which (a) wraps ``Test._check``, ``Test.close``, ``Test.equal`` and ``Test.rule``
so that each check is handed the expected value it was given (a callable is called; errors are swallowed) and
every rule is handed a value that satisfies it, (b) re-applies the wrapping before every cell (the sandboxed
runner re-imports ``course_lib.checks`` before each graded test cell), (c) neuters ``course_lib.checks.judge``
and (d) rewrites the stubs, as each cell is run, into functions that return a stand-in object that survives
unpacking, indexing and calls (and rebinds the notebook's ``unpack`` helper, where there is one, to hand back a
tuple of such objects), so that the test cells reach their checks. Every test cell computes its
expected values through a ``reference(...)`` module, which the grader's sandbox stubs out, so the forgery
finds nothing to hand back: every autograded question must score 0

* through the record-mode kernel route of :mod:`test_mistakes` (the sandbox's import guard), for every
  assignment in ``assignments/source`` (:data:`ASSIGNMENTS`), and
* through the real sandboxed grader (``python -m course_lib.grading autograde``) for 01 and 02, with and
  without an instructor secret and ``--per-student-inputs``.

Marked slow (kernels, nbgrader round trips).
"""

from __future__ import annotations

import copy

import nbformat
import pytest
from test_mistakes import SOURCE, Assignment, cell_problems, grade_id, is_solution

FORGERY = r'''
import dis as _dis, re as _re, sys as _sys
import numpy as _np


class _Anything:
    """What a stub returns: survives unpacking (as many items as the caller unpacks), calls and indexing."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything()

    def __call__(self, *args, **kwargs):
        return _Anything()

    def __getitem__(self, key):
        return _Anything()

    def __setitem__(self, key, value):
        pass

    def __iter__(self):
        frame = _sys._getframe(1)
        code, at = frame.f_code.co_code, frame.f_lasti
        if 0 <= at < len(code) - 1 and code[at] == _dis.opmap["UNPACK_SEQUENCE"]:
            return iter([_Anything() for _ in range(code[at + 1])])
        return iter([])

    def __len__(self):
        return 0

    def __float__(self):
        return 0.0

    def __int__(self):
        return 0

    __index__ = __int__

    def __bool__(self):
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def _same(self, *args):
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _same
    __matmul__ = __rmatmul__ = __pow__ = __neg__ = __abs__ = _same


def _hand_back(expected, value):
    try:
        return expected() if callable(expected) else expected
    except BaseException:
        return value


def _satisfies(spec):
    rule, params = spec.get("rule"), spec.get("params") or {}
    if rule == "between":
        lo, hi = params.get("lo", float("-inf")), params.get("hi", float("inf"))
        return float(lo) if _np.isfinite(lo) else float(hi) if _np.isfinite(hi) else 0.0
    if rule == "decreasing":
        return [1.0, 0.0]
    if rule == "shape":
        return _np.zeros(tuple(params.get("shape", ())))
    return 0.0


def _wrap(T):
    if T is None or getattr(T, "_forged", False):
        return
    check, close, equal, rule = T._check, T.close, T.equal, T.rule

    def _check(self, key, value, spec, expected, mistakes, what):
        value = _satisfies(spec) if spec.get("kind") == "rule" else _hand_back(expected, value)
        return check(self, key, value, spec, expected, mistakes, what)

    def _close(self, key, value, expected, *args, **kwargs):
        return close(self, key, _hand_back(expected, value), expected, *args, **kwargs)

    def _equal(self, key, value, expected, *args, **kwargs):
        return equal(self, key, _hand_back(expected, value), expected, *args, **kwargs)

    def _rule(self, key, value, name, *args, **kwargs):
        return rule(self, key, _satisfies({"rule": name, "params": kwargs}), name, *args, **kwargs)

    T._check, T.close, T.equal, T.rule, T._forged = _check, _close, _equal, _rule, True


def _unpack(result, names):
    """The notebook's unpack, rebound: whatever a stub returned becomes a tuple of as many stand-ins as wanted."""
    if isinstance(result, tuple) and len(result) == len(names):
        return result
    return tuple(_Anything() for _ in names)


def _forge(*args):
    namespace = get_ipython().user_ns
    if callable(namespace.get("unpack")) and namespace.get("unpack") is not _unpack:
        namespace["unpack"] = _unpack
    for module in [m for name, m in list(_sys.modules.items()) if name.endswith("checks") and m is not None]:
        _wrap(getattr(module, "Test", None))
        if hasattr(module, "judge"):
            module.judge = lambda *a, **k: None
    _wrap(get_ipython().user_ns.get("Test"))


_STUB = _re.compile(r"^(\s*)raise NotImplementedError(\(\))?\s*$")


def _unstub(lines):
    out, functions = [], []
    for line in lines:
        match = _STUB.match(line)
        definition = _re.match(r"^(\s*)def (\w+)", line)
        if definition:
            functions.append(definition.group(2))
        if match:
            inside = bool(match.group(1))
            value = "None" if functions and functions[-1] == "__init__" else "_Anything()"
            line = f"{match.group(1)}return {value}\n" if inside else f"{match.group(1)}_Anything()\n"
        out.append(line)
    return out


get_ipython().input_transformers_post.append(_unstub)
get_ipython().events.register("pre_run_cell", _forge)
_forge()
'''


def release_cells(nb) -> dict[str, str]:
    """The release's stub of every solution cell (nbgrader's ClearSolutions, with the course's stub)."""
    from nbgrader.preprocessors import ClearSolutions

    cleared, _ = ClearSolutions(code_stub={"python": "# YOUR CODE HERE\nraise NotImplementedError()"}).preprocess(
        copy.deepcopy(nb), {"language": "python"})
    return {grade_id(c): c.source for c in cleared.cells if is_solution(c)}


ASSIGNMENTS = sorted(p.name for p in SOURCE.iterdir() if (p / f"{p.name}.ipynb").exists())
# test cells not yet rewritten to compute every expected value through a reference module: the forgery still
# scores there; strict, so the mark goes once they are (none left).
NOT_YET: dict[str, str] = {}


def forged_grades(assignment: str) -> dict[str, list[str]]:
    """Every graded cell's problems (empty: scored) after the forgery and the release's stubs, record mode."""
    a = Assignment(assignment)
    try:
        a.student.run(FORGERY)
        for source in release_cells(a.nb).values():
            a.student.run(source)
        return {grade_id(c): cell_problems(a.reference[grade_id(c)], a.student.run(c.source)) for c in a.tests}
    finally:
        a.close()


@pytest.mark.slow
@pytest.mark.parametrize("assignment", [
    pytest.param(a, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[a])) if a in NOT_YET else a
    for a in ASSIGNMENTS])
def test_forgery_scores_nothing_in_record_mode(assignment):
    graded = forged_grades(assignment)
    scored = sorted(gid for gid, problems in graded.items() if not problems)
    assert not scored, f"{assignment}: the forgery passes {scored}"


def forge_in_the_sandbox(folder, assignment: str, keyed: bool) -> dict[str, float]:
    """The forgery on the release of ``assignment``, graded by ``python -m course_lib.grading autograde`` in a
    fresh course under ``folder`` (with a secret and per-student inputs if ``keyed``): grade_id -> score."""
    from grading_helpers import insert_after, make_course, run, scores, submit

    course = make_course(folder / "course", assignment)
    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    submit(course, "forger", insert_after(release, None, FORGERY), assignment)
    extra = ["--per-student-inputs"] if keyed else []
    run(course, "course_lib.grading", "autograde", assignment, "--student", "forger", "--quiet", *extra,
        extra_env={"RNN_COURSE_GRADING_SECRET": "forgery test secret"} if keyed else None)
    return scores(f"sqlite:///{course / 'gradebook.db'}", assignment)["forger"]


SANDBOXED = [(a, keyed) for keyed in (False, True) for a in ("01_feedforward", "02_rnn")]


@pytest.fixture(scope="module")
def sandboxed_forgeries(tmp_path_factory):
    """(assignment, keyed) -> a future of :func:`forge_in_the_sandbox`: the four runs, each in its own course,
    two at a time (each grades one submission in one sandbox)."""
    from concurrent.futures import ThreadPoolExecutor

    from course_lib.grading import sandbox

    ok, why = sandbox.available()
    if not ok:
        pytest.skip(f"no sandbox here ({why}); CI installs bubblewrap")
    with ThreadPoolExecutor(2) as pool:
        yield {(a, keyed): pool.submit(forge_in_the_sandbox, tmp_path_factory.mktemp(f"forgery_{a}"), a, keyed)
               for a, keyed in SANDBOXED}


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ["01_feedforward", "02_rnn"])
@pytest.mark.parametrize("keyed", [False, True], ids=["fixed_inputs", "per_student_inputs"])
def test_forgery_scores_nothing_in_the_sandboxed_grader(sandboxed_forgeries, assignment, keyed):
    got = sandboxed_forgeries[(assignment, keyed)].result()
    assert got and not any(got.values()), f"{assignment}: the forgery scores {got}"
