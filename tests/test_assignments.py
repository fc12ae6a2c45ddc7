"""End-to-end checks of every nbgrader assignment, through the real nbgrader commands.

For each ``assignments/source/<id>/<id>.ipynb`` the test copies the course directory to a temporary folder,
runs ``nbgrader generate_assignment`` (once per session: :func:`grading_helpers.make_course` copies the generated
course), submits several notebooks as different students and runs ``nbgrader autograde`` (two assignments at a
time, each in its own course), then reads the gradebook:

* ``solution``   the source notebook itself: full marks on every autograded cell, no error in any cell,
  nothing on stderr; manually graded answer cells (nbgrader cells that are both ``solution`` and ``grade``,
  e.g. a written answer) get no autograde score and must be left to a human grader;
* ``unanswered`` the release version: zero, and every failing cell fails with ``NotImplementedError``;
* ``tampered``   the release with every test cell replaced by ``pass``: still zero (nbgrader restores them);
* ``cheat``      the solution with answers that call course_lib (``tests/cheats/<id>.py``): zero on those
  questions, full marks on the others.

nbgrader's log of that run must report a changed locked cell for the tampered notebook only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "assignments" / "source"
ASSIGNMENTS = sorted(p.name for p in SOURCE.iterdir() if (p / f"{p.name}.ipynb").exists())


def nbgrader_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")  # alembic, jupyter
    env.pop("NBGRADER_DB_URL", None)
    env.pop("NBGRADER_EXCHANGE", None)
    return env


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course, env=nbgrader_env(), capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def graded_cells(nb) -> list:
    return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def manually_graded(nb) -> set[str]:
    """grade_ids of the answers a human grades (nbgrader "manually graded answer": solution and grade)."""
    return {c.metadata.nbgrader.grade_id for c in graded_cells(nb) if c.metadata.nbgrader.get("solution")}


def load_cheats(assignment: str):
    path = ROOT / "tests" / "cheats" / f"{assignment}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"cheats_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def submit(course: Path, student: str, assignment: str, nb) -> None:
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{assignment}.ipynb")


def grade_assignment(assignment: str, course: Path) -> dict:
    """Generate, submit and autograde one assignment in the empty folder ``course``; what the checks need."""
    from grading_helpers import make_course  # the generated course, copied (one generate per session)

    make_course(course, assignment)

    source_nb = nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4)
    release_nb = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    submit(course, "solution", assignment, source_nb)
    submit(course, "unanswered", assignment, release_nb)

    tampered = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    for cell in graded_cells(tampered):
        cell.source = "pass"
    submit(course, "tampered", assignment, tampered)

    cheats = load_cheats(assignment)
    if cheats is not None:
        cheat_nb = nbformat.from_dict(json.loads(json.dumps(source_nb)))
        for cell in cheat_nb.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id in cheats.CHEATS:
                cell.source = cheats.CHEATS[grade_id]
        submit(course, "cheat", assignment, cheat_nb)

    log = nbgrader(course, "autograde", assignment, "--force")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        max_score = gb.find_assignment(assignment).max_score
        scores = {}
        for student in ["solution", "unanswered", "tampered"] + (["cheat"] if cheats else []):
            sub = gb.find_submission(assignment, student)
            per_question = {g.name: (g.score, g.max_score) for nb_ in sub.notebooks for g in nb_.grades}
            scores[student] = (sub.score, per_question)
            if student == "solution":
                pending = {g.name: (g.auto_score, g.needs_manual_grade) for nb_ in sub.notebooks for g in nb_.grades}
    manual = manually_graded(source_nb)
    return {"assignment": assignment, "course": course, "max_score": max_score, "scores": scores, "cheats": cheats,
            "manual": manual, "pending": pending, "log": log.stdout + log.stderr,
            "autograded_max": max_score - sum(scores["solution"][1][name][1] for name in manual)}


@pytest.fixture(scope="module")
def graded_all(request, tmp_path_factory):
    """Every assignment this session's tests of this module need, graded, each in its own course, two at a time
    (one nbgrader autograde runs one kernel at a time; the CI machine has two cores): assignment -> a future of
    :func:`grade_assignment`'s result."""
    from concurrent.futures import ThreadPoolExecutor

    wanted = {item.callspec.params["graded"] for item in request.session.items
              if getattr(item, "module", None) is request.module
              and "graded" in getattr(getattr(item, "callspec", None), "params", {})}
    with ThreadPoolExecutor(2) as pool:
        yield {a: pool.submit(grade_assignment, a, tmp_path_factory.mktemp(f"course_{a}"))
               for a in ASSIGNMENTS if a in wanted}


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, graded_all):
    """One assignment generated, submitted and autograded; what the checks need."""
    return graded_all[request.param].result()


def autograded_nb(graded, student):
    a = graded["assignment"]
    return nbformat.read(graded["course"] / "autograded" / student / a / f"{a}.ipynb", as_version=4)


@pytest.mark.slow
def test_source_scores_full_marks(graded):
    score, per_question = graded["scores"]["solution"]
    assert graded["autograded_max"] > 0
    assert score == graded["autograded_max"], per_question
    assert graded["manual"] <= set(graded["pending"]), "a manually graded cell is missing from the gradebook"
    for name, (auto_score, needs_manual_grade) in graded["pending"].items():
        if name in graded["manual"]:  # left to a human grader, with nothing scored automatically
            assert auto_score is None and needs_manual_grade, (name, auto_score, needs_manual_grade)
        else:
            assert per_question[name][0] == per_question[name][1], (name, per_question[name])
    for cell in autograded_nb(graded, "solution").cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{cell.source[:80]!r} raised {out.get('ename')}"
            assert not (out["output_type"] == "stream" and out["name"] == "stderr"), (
                f"{cell.source[:80]!r} wrote to stderr (nbgrader scores that as a failure): {out['text'][:200]}"
            )


@pytest.mark.slow
def test_release_scores_zero_and_fails_only_with_not_implemented(graded):
    score, per_question = graded["scores"]["unanswered"]
    assert score == 0, per_question
    nb = autograded_nb(graded, "unanswered")
    errors = [out["ename"] for cell in nb.cells for out in cell.get("outputs", []) if out["output_type"] == "error"]
    assert errors, "the release version raised nothing"
    assert set(errors) == {"NotImplementedError"}, errors
    for cell in graded_cells(nb):
        if cell.metadata.nbgrader.grade_id in graded["manual"]:
            continue  # a manually graded answer is not run by the autograder
        cell_errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
        assert cell_errors, f"graded cell {cell.metadata.nbgrader.grade_id} passed on an unanswered notebook"


@pytest.mark.slow
def test_replacing_test_cells_with_pass_still_scores_zero(graded):
    score, per_question = graded["scores"]["tampered"]
    assert score == 0, per_question


@pytest.mark.slow
def test_answers_that_call_course_lib_score_zero_on_those_questions(graded):
    cheats = graded["cheats"]
    if cheats is None:
        pytest.fail(f"tests/cheats/{graded['assignment']}.py is missing: every assignment needs its cheat corpus")
    _, per_question = graded["scores"]["cheat"]
    failing = cheats.ZERO
    assert failing <= set(per_question), f"unknown grade_ids in ZERO: {failing - set(per_question)}"
    for grade_id, (score, max_score) in per_question.items():
        if grade_id in failing:
            assert score == 0, f"{grade_id}: a cheat scored {score}"
        elif max_score and grade_id.startswith("test_"):
            assert score == max_score, f"{grade_id}: an honest answer lost points ({score}/{max_score})"


def changed_cells_by_student(log: str) -> dict[str, set[str]]:
    """Cells that nbgrader's autograde log reports as changed ("Attribute ... for cell X has changed!"), per
    student (the log names each submission as it sanitizes it)."""
    found: dict[str, set[str]] = {}
    student = None
    for line in log.splitlines():
        if "Sanitizing " in line and "/submitted/" in line:
            student = line.split("/submitted/", 1)[1].split("/", 1)[0]
        elif "has changed!" in line:
            found.setdefault(student, set()).add(line.split(" for cell ", 1)[1].split(" has changed!", 1)[0])
    return found


@pytest.mark.slow
def test_autograde_reports_changed_cells_only_where_a_student_changed_them(graded):
    changed = changed_cells_by_student(graded["log"])
    assert "Sanitizing " in graded["log"], "nbgrader's log format changed: this test reads nothing"
    for student in ("solution", "unanswered", "cheat"):
        assert not changed.get(student), f"{student}: untouched locked cells reported as changed: {changed[student]}"
    tests = {c.metadata.nbgrader.grade_id for c in graded_cells(autograded_nb(graded, "tampered"))
             if c.cell_type == "code" and not c.metadata.nbgrader.get("solution")}
    assert changed.get("tampered") == tests, "every test cell replaced by `pass` must be reported"


def test_every_assignment_source_is_well_formed():
    """Cheap structural checks that do not need nbgrader to run."""
    assert ASSIGNMENTS, "no assignment found under assignments/source"
    for assignment in ASSIGNMENTS:
        nb = nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4)
        nbformat.validate(nb)
        ids = [c.metadata.nbgrader["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
        assert len(ids) == len(set(ids)), f"{assignment}: duplicate grade_id"
        solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
        tests = graded_cells(nb)
        assert solutions and tests, f"{assignment}: needs solution cells and graded test cells"
        for cell in tests:
            assert cell.metadata.nbgrader.get("points", 0) > 0, f"{assignment}: graded cell without points"
            if cell.cell_type == "code" and not cell.metadata.nbgrader.get("solution"):
                grade_id = cell.metadata.nbgrader.grade_id
                assert "### BEGIN HIDDEN TESTS" in cell.source, f"{assignment}: {grade_id} has no hidden tests"
                assert cell.metadata.nbgrader.get("points", 0) > 0
        for cell in nb.cells:
            assert not cell.get("outputs"), f"{assignment}: commit the source without outputs"
        assert nb.metadata.kernelspec.name == "python3"
