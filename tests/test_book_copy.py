"""A submission copied from the book scores 0 (issue "the book as a student reads it", item 5).

For each assignment, a submission is assembled from the code the built book prints
(``_build/jupyter_execute/book/<chapter>.ipynb``: every code cell's source and every listing a cell outputs,
see :mod:`book_copy_helpers`): each answer cell whose function (``def``/``class`` of the solution cell) or an
alias of it (:data:`book_copy_helpers.ALIASES`, written per assignment) is printed gets that code, with the
glue a student would write; every other answer stays the release's stub. The submission is graded by the
sandboxed grader (``python -m course_lib.grading autograde``) and by plain ``nbgrader autograde`` (side by
side, each in its own course), and every autograded question must score 0 in both. A failure lists, per
assignment, the questions that score and the chapter cells their code came from.

So that the test cannot pass vacuously: it asserts that every chapter of the table of contents was executed
and that the book prints code at all, and a control submission, assembled by the same machinery from the
*solution* cells of 01_feedforward instead of the book, must score full marks.

The book is built in the same session (the ``built_book`` fixture of conftest.py); set ``BOOK_EXECUTED_DIR``
to a folder of executed chapters (``_build/jupyter_execute/book`` of an earlier build) to skip the build.
Marked slow.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from book_copy_helpers import ALIASES, bound_names, chapters, definitions, printed
from book_copy_helpers import answer_cell as paste
from grading_helpers import make_full_course, run, scores
from test_mistakes import grade_id

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "assignments" / "source"
ASSIGNMENTS = sorted(p.name for p in SOURCE.iterdir() if (p / f"{p.name}.ipynb").exists())
CONTROL = "01_feedforward"


def solution_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution")]


def release_stubs(nb) -> dict[str, str]:
    """grade_id -> the release's version of every answer cell (nbgrader's ClearSolutions, the course's stubs)."""
    from nbgrader.preprocessors import ClearSolutions

    cleared, _ = ClearSolutions(code_stub={"python": "# YOUR CODE HERE\nraise NotImplementedError()"},
                                text_stub="YOUR ANSWER HERE").preprocess(copy.deepcopy(nb), {"language": "python"})
    return {grade_id(c): c.source for c in solution_cells(cleared)}


def autograded_points(nb) -> dict[str, float]:
    return {grade_id(c): float(c.metadata.nbgrader.points) for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata.nbgrader.get("solution")}


def bound(cell) -> set[str]:
    try:
        return bound_names(cell.source)
    except SyntaxError:
        return set()


def assemble(assignment: str, book: dict) -> tuple[object, dict[str, dict]]:
    """The source notebook with each answer cell pasted from ``book`` or left as the release's stub; and, per
    answer cell pasted, where its code came from and which helpers it needed."""
    nb = copy.deepcopy(nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4))
    stubs = release_stubs(nb)
    answers = set().union(*(bound(c) for c in solution_cells(nb)))  # the student's functions, stubs or not
    known = set(answers)  # and what the cells above an answer bind (test cells left out: their names are theirs)
    pasted = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("solution"):
            known |= set() if meta.get("grade") else bound(cell)
            continue
        gid = grade_id(cell)
        defined = re.findall(r"^(?:def|class)\s+(\w+)", cell.source, re.M)
        answer = None
        if not meta.get("grade"):  # a manually graded answer stays a stub
            answer = paste(gid, defined, book, known, ALIASES.get(assignment, {}).get(gid))
        if answer is None:
            cell.source = stubs[gid]
        else:
            cell.source = answer.source
            pasted[gid] = {"from": answer.where, "helpers": answer.helpers}
    return nb, pasted


def control_book(assignment: str) -> dict:
    """The definitions of the assignment's solution cells, as if the book printed them."""
    nb = nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4)
    pieces = [(f"{assignment} solution {grade_id(c)}",
               "\n".join(line for line in c.source.splitlines() if "### BEGIN SOLUTION" not in line
                         and "### END SOLUTION" not in line))
              for c in solution_cells(nb)]
    return definitions(pieces)


@pytest.fixture(scope="module")
def executed(request) -> Path:
    folder = os.environ.get("BOOK_EXECUTED_DIR")
    if folder:
        return Path(folder)
    request.getfixturevalue("built_book")
    return ROOT / "_build" / "jupyter_execute" / "book"


def grade_book_copies(executed: Path, folder: Path) -> dict:
    """Every assignment's book copy (and the control) graded by the sandbox and by plain nbgrader."""
    names = chapters()
    missing = [n for n in names if not (executed / f"{n}.ipynb").exists()]
    assert not missing, f"chapters of _toc.yml not executed in {executed}: {missing}"
    book = definitions(printed(executed, names))
    submissions = {}
    for assignment in ASSIGNMENTS:
        submissions[(assignment, "book")] = assemble(assignment, book)
    submissions[(CONTROL, "control")] = assemble(CONTROL, control_book(CONTROL))

    folder.mkdir(parents=True, exist_ok=True)
    plain = make_full_course(folder / "plain", ASSIGNMENTS)
    boxed = folder / "sandboxed"
    shutil.copytree(plain, boxed, symlinks=True)
    for (assignment, student), (nb, _) in submissions.items():
        for course in (plain, boxed):
            path = course / "submitted" / student / assignment / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)

    def autograde(course: Path, *command: str) -> None:  # every assignment, one after the other
        for assignment in ASSIGNMENTS:
            run(course, *command[:2], assignment, *command[2:])

    # plain nbgrader (one kernel at a time) and the sandbox (one or two submissions an assignment) side by side
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(autograde, plain, "nbgrader", "autograde", "--force"),
                pool.submit(autograde, boxed, "course_lib.grading", "autograde", "--workers", "2", "--quiet")]
        for done in runs:
            done.result()
    graded = {}
    for assignment in ASSIGNMENTS:
        got = {"nbgrader": scores(f"sqlite:///{plain / 'gradebook.db'}", assignment),
               "sandbox": scores(f"sqlite:///{boxed / 'gradebook.db'}", assignment)}
        points = autograded_points(nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4))
        for (a, student), (_, pasted) in submissions.items():
            if a == assignment:
                graded[(a, student)] = {"points": points, "pasted": pasted,
                                        **{mode: {g: got[mode][student][g] for g in points} for mode in got}}
    return {"book": book, "graded": graded, "chapters": names}


@pytest.fixture(scope="module")
def graded(executed, tmp_path_factory):
    from course_lib.grading import sandbox

    ok, why = sandbox.available()
    if not ok:
        pytest.skip(f"no sandbox here ({why}); CI installs bubblewrap")
    return grade_book_copies(executed, tmp_path_factory.mktemp("book_copy"))


def report(result: dict) -> str:
    """The questions that score, and where the code that scored came from."""
    lines = []
    for mode in ("sandbox", "nbgrader"):
        for gid, score in result[mode].items():
            if score:
                source = result["pasted"].get(gid.removeprefix("test_"), "the release's stub")
                lines.append(f"{mode}: {gid} scores {score:g}/{result['points'][gid]:g}, answer: {source}")
    return "\n".join(lines)


@pytest.mark.slow
def test_the_book_prints_code_and_the_control_scores(graded):
    assert graded["chapters"] and graded["book"], "no chapter, or no printed definition found"
    control = graded["graded"][(CONTROL, "control")]
    source = nbformat.read(SOURCE / CONTROL / f"{CONTROL}.ipynb", as_version=4)
    assert set(control["pasted"]) == {grade_id(c) for c in solution_cells(source)}, control["pasted"]
    for mode in ("sandbox", "nbgrader"):
        assert control[mode] == control["points"], (mode, control[mode], control["pasted"])


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_copy_of_the_book_scores_zero(graded, assignment):
    result = graded["graded"][(assignment, "book")]
    assert not any(result["sandbox"].values()) and not any(result["nbgrader"].values()), \
        f"{assignment}: the book's printed code scores\n{report(result)}\npasted answers: {result['pasted']}"
