"""One verdict in every mode over the adversarial corpus (issue "grades that hold, round 2", item 2).

Every case of the adversarial corpus that plain nbgrader can run is graded three ways, and the per-question
scores are compared:

* ``nbgrader autograde`` (in-process, ``assert`` mode, no sandbox), one run per assignment over one course
  folder with every case as a student;
* ``python -m course_lib.check NOTEBOOK --original SOURCE`` (in-process, ``assert`` mode), on each submitted
  notebook, with its locked cells restored from the *source* notebook as nbgrader restores them (so it runs the
  same cells, hidden tests included; a student who passes the release runs only the visible ones);
* ``python -m course_lib.grading autograde`` (the sandbox, ``record`` mode), one run per assignment over a copy
  of the same course folder; for the cases of the adversarial corpus, the sandbox's run is the one of
  :mod:`test_grading_adversarial`, which asserts the same expected scores (not repeated here).

The corpus: the cases of :mod:`test_grading_adversarial` (01_feedforward), the stub-answer forgery of
:mod:`test_grading_forgery` on every assignment's release, the answers that call course_lib of
``tests/cheats/<id>.py`` on every assignment, and each assignment's source notebook (``honest``, the control
that the three modes can agree on full marks).

The sandbox must give the corpus's expected scores (``corpus()``'s; 0 on every question for the forgery;
the cheats' ``ZERO``). The other two modes must give the same score on every question, except where
they differ by design: :data:`PLAIN` records, for each such case, what plain nbgrader and the check give (and
asserts it), with the reason. Those are cheats that beat plain nbgrader, which has no sandbox (the issue's
goal, "0 forged passes", is the sandbox's), and right answers that plain nbgrader's own rules zero.

Cases left out, because plain nbgrader (no sandbox, the grader's own rights) cannot run them safely or at all:

* ``loop_top_level``, ``loop_in_function``, ``loop_ignoring_sigint``, ``cpu_hog``: they hang plain nbgrader
  until its per-cell timeout (120 s each, the kernel killed and restarted) and burn the shared cores meanwhile;
* ``memory_bomb`` (64 GiB on the host), ``fork_bomb`` (5,000 processes), ``output_flood`` (10 GB of output
  held by nbgrader), ``vandal`` (deletes the course's gradebook and another student's submission),
  ``keyring_store`` / ``keyring_probe`` (keys left in the host's keyrings), ``reads_disk`` (walks the host's
  whole disk): they harm or probe the host, which only the sandbox protects;
* ``fifo_timestamp``, ``dev_zero_timestamp``, ``link_to_root_file``: a FIFO, a link to /dev/zero and a link to a
  root-only file planted next to the notebook, aimed at the grader's copy of the submission folder and its
  read of ``timestamp.txt``; outside a sandbox they reach the host;
* ``=SUM(1,2)``, ``-dash``, ``ctl\\x1b[31mred\\x07``, ``caf\\xe9``: odd student ids (reports, terminals, a name
  that is not UTF-8); the notebook is the honest solution, nothing about verdicts;
* ``invalid_json``, ``wrong_nbformat``, ``empty_file``, ``binary_file``: no notebook to run (the sandbox reports
  them as malformed and scores 0);
* ``duplicated_test``, ``duplicated_locked``: a locked cell's grade_id twice; nbgrader stops the whole
  ``autograde`` run on it ("old version of the nbgrader metadata format"), leaving every later student ungraded.

Found when this test was written (tests/ only, nothing fixed elsewhere): the cheats that beat the in-process
modes (:data:`PLAIN`: the forgery on every assignment, ``hooks_checks``, ``calls_reference_thread``,
``fabricated_rule``, ``fabricated_rule_module``, ``patches_reporting``), a right answer that writes to stderr (0
in-process, full marks in the sandbox, since fixed: the sandbox fails it too), five notebooks nbgrader refuses
outright (0 on every question) that the sandbox and the check grade, a kernel that kills itself (nbgrader refuses
the notebook, the check cannot run it, the sandbox scores the questions before it), and two disagreements of the
check that were not by design (junk nbgrader metadata crashed it; with ``--original`` it did not put back a
deleted locked cell; both fixed in course_lib/check.py, :data:`DISAGREE` is for the next ones, as strict xfails).

Marked slow (two autograde runs per assignment and one check per notebook, side by side, two processes at a
time).
"""

from __future__ import annotations

import copy
import re
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from grading_helpers import env, insert_after, make_full_course, run, scores
from test_assignments import load_cheats
from test_grading_adversarial import CASES as ADVERSARIAL_CASES
from test_grading_adversarial import LIMITS, NOT_UTF8, corpus
from test_grading_forgery import FORGERY

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "assignments" / "source"
ASSIGNMENTS = sorted(p.name for p in SOURCE.iterdir() if (p / f"{p.name}.ipynb").exists())

EXCLUDED = {
    "loop_top_level": "hangs plain nbgrader for its 120 s cell timeout",
    "loop_in_function": "hangs plain nbgrader for its 120 s cell timeout",
    "loop_ignoring_sigint": "hangs plain nbgrader for its 120 s cell timeout (SIGINT ignored)",
    "cpu_hog": "thirty CPU burners on the host's cores for 30 s",
    "memory_bomb": "64 GiB allocated on the host",
    "fork_bomb": "5,000 processes on the host",
    "output_flood": "10 GB of output held by nbgrader",
    "vandal": "deletes the course's gradebook and another student's submission",
    "keyring_store": "leaves keys in the host's keyrings",
    "keyring_probe": "reads the host's keyrings",
    "reads_disk": "walks the host's whole disk",
    "fifo_timestamp": "a FIFO as timestamp.txt, aimed at the grader's read of it",
    "dev_zero_timestamp": "a link to /dev/zero as timestamp.txt",
    "link_to_root_file": "a link to a root-only file next to the notebook",
    "=SUM(1,2)": "an odd student id, not a verdict case",
    "-dash": "an odd student id, not a verdict case",
    "ctl\x1b[31mred\x07": "an odd student id, not a verdict case",
    NOT_UTF8: "an odd student id (not UTF-8), not a verdict case",
    "invalid_json": "no notebook to run",
    "wrong_nbformat": "no notebook to run",
    "empty_file": "no notebook to run",
    "binary_file": "no notebook to run",
    "duplicated_test": "nbgrader stops the whole run on it ('old version of the nbgrader metadata format')",
    "duplicated_locked": "nbgrader stops the whole run on it ('old version of the nbgrader metadata format')",
}
ADVERSARIAL = [c for c in ADVERSARIAL_CASES if c not in EXCLUDED]
FIRST = "01_feedforward"
CASES = ([(FIRST, c) for c in ADVERSARIAL]
         + [(a, c) for a in ASSIGNMENTS for c in ("forgery", "cheat") + (("honest",) if a != FIRST else ())])

# The adversarial cases' sandbox scores are those of test_grading_adversarial.corpus(), which that module's
# test_exact_score_and_recorded_outcome asserts case by case from a sandboxed run of the same notebooks; grading
# them in the sandbox again here cost about two minutes of CI for no new verdict. Here they are graded by plain
# nbgrader and the check, which must give the same `want` (or differ as PLAIN records).
SANDBOX_ELSEWHERE = frozenset((FIRST, c) for c in ADVERSARIAL)

# Where plain nbgrader or the check differ from the sandbox by design: (assignment, case) -> ({mode: the scores
# of the questions that differ, or FULL_MARKS}, why). Every other question scores the same in the three modes.
FULL_MARKS = "full marks"
ZERO_MARKS = "zero on every question"
NO_VERDICT = "the check cannot run the notebook (exit 2)"
BEATS_PLAIN = "a cheat that beats plain nbgrader, which has no sandbox (the check catches it, as the sandbox does): "
REFUSED = "nbgrader refuses the notebook (no verdict, 0 on every question); the sandbox grades it: "
PLAIN: dict[tuple[str, str], tuple[dict[str, dict[str, float] | str], str]] = {
    **{(a, "forgery"): ({"nbgrader": FULL_MARKS if a != "05_imdb_sentiment" else {
        "test_tokenize": 2, "test_build_vocab": 2, "test_encode_batch": 3, "test_train_epoch": 3}},
        BEATS_PLAIN + "in-process the test cells compute their expected values with the real course_lib, and the "
        "wrapped checks hand them back (05's classifier question excepted). The check, which runs the same cells "
        "in-process, gives 0 like the sandbox") for a in ASSIGNMENTS},
    (FIRST, "hooks_checks"): ({"nbgrader": FULL_MARKS},
                              BEATS_PLAIN + "course_lib.checks patched to pass everything in the kernel"),
    (FIRST, "calls_reference_thread"): ({"nbgrader": {"test_affine_forward": 2}},
                                        BEATS_PLAIN + "the reference, importable in-process, called from a thread "
                                        "with the profiler removed, escapes forbid_calls_into"),
    (FIRST, "fabricated_rule"): ({"nbgrader": {"test_affine_forward": 2}},
                                 BEATS_PLAIN + "the rule's measure (steps_per_example) rebound in the kernel"),
    (FIRST, "fabricated_rule_module"): ({"nbgrader": {"test_affine_forward": 2}},
                                        BEATS_PLAIN + "course_lib.testing.python_steps rebound in the kernel"),
    (FIRST, "patches_reporting"): ({"nbgrader": {"test_softmax_loss": 3}},
                                   BEATS_PLAIN + "the kernel's error reporting patched, a failed check reads as a "
                                   "pass"),
    (FIRST, "changed_grade_id"): ({"nbgrader": ZERO_MARKS},
                                  REFUSED + "CheckCellMetadata: 'the nbgrader metadata may be corrupted'"),
    (FIRST, "fake_graded_cell"): ({"nbgrader": ZERO_MARKS},
                                  REFUSED + "a graded cell the source does not have (CheckCellMetadata: 'nbgrader "
                                  "cell does not have a grade_id')"),
    (FIRST, "junk_markdown"): ({"nbgrader": ZERO_MARKS},
                               REFUSED + "markdown cells with junk nbgrader metadata (DeduplicateIds: KeyError "
                               "'grade_id')"),
    (FIRST, "crafted_display"): ({"nbgrader": ZERO_MARKS},
                                 REFUSED + "a kernel message with execution_count 'x' makes the executed notebook "
                                 "invalid, nbgrader removes it"),
    (FIRST, "huge_execution_count"): ({"nbgrader": ZERO_MARKS},
                                      REFUSED + "a 60 MiB execution count sent by the kernel"),
    (FIRST, "kernel_suicide"): ({"nbgrader": ZERO_MARKS, "check": NO_VERDICT},
                                "the kernel kills itself (SIGKILL) after softmax_loss: nbgrader stops at the dead "
                                "kernel and refuses the notebook (DeadKernelError), the check exits 2 ('Kernel "
                                "died'), the sandbox scores the questions answered before"),
    (FIRST, "deleted_locked"): ({"nbgrader": ZERO_MARKS},
                                "nbgrader runs the notebook without the deleted setup cell: every test fails; the "
                                "sandbox runs the source's setup"),
}
# Disagreements that are not by design: strict xfail, so that the mark goes when they are fixed (none known).
DISAGREE: dict[tuple[str, str], str] = {}


def graded_ids(nb) -> dict[str, float]:
    """grade_id -> points of the autograded test cells."""
    return {c.metadata.nbgrader.grade_id: float(c.metadata.nbgrader.points) for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata.nbgrader.get("solution")}


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (the ``network`` case connects to it and fails)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def submissions(course: Path, assignment: str) -> dict[str, tuple[object, dict[str, float]]]:
    """student -> (notebook, the sandbox's expected scores) for one assignment."""
    source = nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4)
    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    full = graded_ids(source)
    cases: dict[str, tuple[object, dict[str, float]]] = {}
    if assignment == FIRST:
        everything = corpus(course, free_port())
        cases.update({c: (everything[c][0], everything[c][1]) for c in ADVERSARIAL})
    else:
        cases["honest"] = (source, full)
    cases["forgery"] = (insert_after(release, None, FORGERY), dict.fromkeys(full, 0.0))
    cheats = load_cheats(assignment)
    cheat = copy.deepcopy(source)
    for cell in cheat.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in cheats.CHEATS:
            cell.source = cheats.CHEATS[gid]
    cases["cheat"] = (cheat, {g: 0.0 if g in cheats.ZERO else p for g, p in full.items()})
    return cases


def check_scores(path: Path, source: Path, points: dict[str, float]) -> dict[str, float] | str:
    """``python -m course_lib.check`` on one notebook: grade_id -> score, or the output when it could not run."""
    result = subprocess.run([sys.executable, "-m", "course_lib.check", str(path), "--original", str(source)],
                            capture_output=True, text=True, timeout=1800, cwd=ROOT, env=env())
    found = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^(\w+)\s+\S+ pt\s+(passed|FAILED)", line)
        if match and match.group(1) in points:
            found[match.group(1)] = points[match.group(1)] if match.group(2) == "passed" else 0.0
    return found if result.returncode in (0, 1) else f"exit {result.returncode}: {result.stdout}{result.stderr}"


def grade_corpus(folder: Path) -> dict:
    """Every case graded in the three modes: {"expected": (assignment, case) -> the sandbox's expected scores,
    "results": (assignment, case) -> mode -> grade_id -> score (a string: the check could not run)}."""
    plain = make_full_course(folder / "plain", ASSIGNMENTS)
    boxed = folder / "sandboxed"
    shutil.copytree(plain, boxed, symlinks=True)
    expected, notebooks, results, logs = {}, {}, {}, {}
    for assignment in ASSIGNMENTS:
        for student, (nb, want) in submissions(plain, assignment).items():
            for course in (plain, boxed) if (assignment, student) not in SANDBOX_ELSEWHERE else (plain,):
                path = course / "submitted" / student / assignment / f"{assignment}.ipynb"
                path.parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, path)
            expected[(assignment, student)] = want
            notebooks[(assignment, student)] = plain / "submitted" / student / assignment / f"{assignment}.ipynb"
    # The three graders side by side, two processes at a time (each runs one kernel at a time): the sandbox (one
    # worker), plain nbgrader on the first assignment (most of the corpus) in its course and on the others in a copy
    # (one gradebook per process: SQLite is not shared between writers), and the check, one run per notebook.
    rest = folder / "plain_rest"
    shutil.copytree(plain, rest, symlinks=True)
    course_of = {a: plain if a == FIRST else rest for a in ASSIGNMENTS}

    def autograde(command: list[str], courses: dict[str, Path]) -> dict[str, subprocess.CompletedProcess]:
        return {a: run(course, *command[:2], a, *command[2:], check=False) for a, course in courses.items()}

    plain_first = ["nbgrader", "autograde", "--force"]
    boxed_all = ["course_lib.grading", "autograde", "--workers", "1", "--quiet", "--limits", LIMITS]
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(autograde, plain_first, {FIRST: plain}),
                pool.submit(autograde, boxed_all, dict.fromkeys(ASSIGNMENTS, boxed)),
                pool.submit(autograde, plain_first, {a: rest for a in ASSIGNMENTS if a != FIRST})]
        checks = {key: pool.submit(check_scores, path, SOURCE / key[0] / f"{key[0]}.ipynb", expected[key])
                  for key, path in notebooks.items()}
        plain_logs = {**runs[0].result(), **runs[2].result()}
        logs.update({a: [plain_logs[a], runs[1].result()[a]] for a in ASSIGNMENTS})
        checked = {key: future.result() for key, future in checks.items()}
    for assignment in ASSIGNMENTS:
        nbgrader = scores(f"sqlite:///{course_of[assignment] / 'gradebook.db'}", assignment)
        sandboxed = scores(f"sqlite:///{boxed / 'gradebook.db'}", assignment)
        for (a, student), want in expected.items():
            if a == assignment:
                results[(a, student)] = {"nbgrader": {g: nbgrader.get(student, {}).get(g) for g in want}}
                if (a, student) not in SANDBOX_ELSEWHERE:
                    results[(a, student)]["sandbox"] = {g: sandboxed.get(student, {}).get(g) for g in want}
    for key, found in checked.items():
        results[key]["check"] = found
    full = {a: graded_ids(nbformat.read(SOURCE / a / f"{a}.ipynb", as_version=4)) for a in ASSIGNMENTS}
    return {"expected": expected, "results": results, "logs": logs, "full": full}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from course_lib.grading import sandbox

    ok, why = sandbox.available()
    if not ok:
        pytest.skip(f"no sandbox here ({why}); CI installs bubblewrap")
    return grade_corpus(tmp_path_factory.mktemp("agreement"))


def test_the_corpus_is_every_case_but_the_excluded():
    assert set(EXCLUDED) <= set(ADVERSARIAL_CASES), set(EXCLUDED) - set(ADVERSARIAL_CASES)
    assert len(ADVERSARIAL) + len(EXCLUDED) == len(ADVERSARIAL_CASES)
    assert all(load_cheats(a) is not None for a in ASSIGNMENTS)
    assert set(PLAIN) <= set(CASES), set(PLAIN) - set(CASES)


@pytest.mark.slow
@pytest.mark.parametrize(("assignment", "case"), [
    pytest.param(a, c, marks=pytest.mark.xfail(strict=True, reason=DISAGREE[(a, c)])) if (a, c) in DISAGREE
    else (a, c) for a, c in CASES], ids=[f"{a}/{c}" for a, c in CASES])
def test_three_modes_agree(graded, assignment, case):
    key = (assignment, case)
    want, got = graded["expected"][key], graded["results"][key]
    if key in SANDBOX_ELSEWHERE:  # the sandbox's scores of this case: test_grading_adversarial, the same `want`
        got["sandbox"] = "asserted in tests/test_grading_adversarial.py"
    else:
        assert got["sandbox"] == pytest.approx(want), {"sandbox": got["sandbox"], "expected": want}
    differ = PLAIN.get(key, ({}, ""))[0]
    plain = {}
    for mode in ("nbgrader", "check"):
        plain[mode] = dict(want)
        if differ.get(mode) == NO_VERDICT:
            plain[mode] = got[mode] if isinstance(got[mode], str) and got[mode].startswith("exit 2") else NO_VERDICT
        elif differ.get(mode) in (FULL_MARKS, ZERO_MARKS):
            plain[mode] = {g: p if differ[mode] == FULL_MARKS else 0.0 for g, p in graded["full"][assignment].items()}
        else:
            plain[mode].update(differ.get(mode, {}))
    in_process = {mode: got[mode] for mode in ("nbgrader", "check")}
    assert in_process == {mode: plain[mode] if isinstance(plain[mode], str) else pytest.approx(plain[mode])
                          for mode in plain}, \
        {"sandbox": got["sandbox"], **in_process, "expected": plain}
