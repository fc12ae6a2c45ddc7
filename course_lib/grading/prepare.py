"""Trusted preparation of one submission, in the parent, with the gradebook (nothing of this runs sandboxed).

What ``nbgrader autograde`` does before it executes a notebook, done here so that the sandbox only executes:
create the student and the submission rows (with the submission's timestamp), copy the assignment's other
files, read each notebook (an unreadable one is *malformed* and scores zero, as a missing one does), then
nbgrader's own sanitizing preprocessors (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells,
CheckCellMetadata) with two additions that make them impossible to fool:

* every cell's nbgrader metadata (grade, solution, locked, points) is reset from the gradebook, and a cell
  whose grade_id the gradebook does not know (a *fake* graded cell) loses its nbgrader metadata and runs as
  ordinary student code;
* a graded test cell missing from the submission (deleted, or its grade_id edited) is put back from the
  gradebook, after the nearest cell that precedes it in the source notebook.

The result is a :class:`Prepared` submission: the sanitized notebooks and, for the sandbox, the list of code
cells to execute, each marked ``test`` (graded test cell), ``instructor`` (other locked cell) or ``student``.
"""

from __future__ import annotations

import ast
import os
import shutil
from dataclasses import dataclass, field

import nbformat
from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells, OverwriteKernelspec


@dataclass
class SourceInfo:
    """What the gradebook knows about one notebook of the assignment (read once, shared by all submissions)."""

    name: str
    order: list[str]  # grade_ids in source order
    sources: dict[str, dict]  # grade_id -> {cell_type, locked, source, checksum}
    graded: dict[str, float]  # grade_id -> points
    solutions: set[str]
    tasks: set[str]
    student_names: list[str]  # top-level names bound by the source's solution cells


@dataclass
class Prepared:
    student: str
    notebooks: dict[str, NotebookNode] = field(default_factory=dict)  # name -> sanitized notebook
    jobs: dict[str, list[dict]] = field(default_factory=dict)  # name -> code cells for the runner
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, reason)
    notes: list[str] = field(default_factory=list)
    zeroed: list[str] = field(default_factory=list)  # notebooks scored zero without running (missing/malformed)


def bound_names(source: str) -> set[str]:
    """Names a cell binds at top level (def, class, import, assignment); empty if it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def load_source_info(db_url: str, assignment: str) -> dict[str, SourceInfo]:
    infos = {}
    with Gradebook(db_url) as gb:
        for notebook in gb.find_assignment(assignment).notebooks:
            sources = {c.name: {"cell_type": c.cell_type, "locked": c.locked, "source": c.source,
                                "checksum": c.checksum} for c in notebook.source_cells}
            solutions = {c.name for c in notebook.solution_cells}
            names = set()
            for name in solutions:
                names |= bound_names(sources.get(name, {}).get("source", ""))
            infos[notebook.name] = SourceInfo(
                name=notebook.name, order=[c.name for c in notebook.source_cells], sources=sources,
                graded={c.name: float(c.max_score) for c in notebook.grade_cells}, solutions=solutions,
                tasks={c.name for c in notebook.task_cells}, student_names=sorted(names))
    return infos


def read_notebook(path: str) -> NotebookNode:
    """nbformat.read + validate; raises ValueError with a short reason for anything unreadable."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if not raw.strip():
            raise ValueError("empty file")
        text = raw.decode("utf-8")
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except ValueError:
        raise
    except Exception as error:  # JSON, encoding, nbformat version, schema errors
        raise ValueError(f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}") from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError("not a notebook")
    return nb


def normalize_metadata(nb: NotebookNode, info: SourceInfo, notes: list[str]) -> None:
    """Reset nbgrader metadata from the gradebook; strip it from cells the gradebook does not know."""
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        grade_id = meta.get("grade_id")
        if not meta or grade_id not in info.sources:
            if meta:
                notes.append(f"cell with unknown grade_id {grade_id!r} runs as ordinary code")
            del cell.metadata["nbgrader"]
            continue
        wanted = {"grade": grade_id in info.graded, "solution": grade_id in info.solutions,
                  "task": grade_id in info.tasks, "locked": info.sources[grade_id]["locked"]}
        for key, value in wanted.items():
            if bool(meta.get(key, False)) != value:
                notes.append(f"{grade_id}: metadata {key!r} was changed")
                meta[key] = value
        if grade_id in info.graded:
            if "points" not in meta or float(meta["points"]) != info.graded[grade_id]:
                notes.append(f"{grade_id}: points were changed")
            meta["points"] = info.graded[grade_id]
        elif "points" in meta and grade_id not in info.tasks:
            del meta["points"]
        meta.setdefault("schema_version", 3)


def restore_missing_tests(nb: NotebookNode, info: SourceInfo, notes: list[str]) -> None:
    """Put back graded cells that are missing, from the gradebook's source, in source order."""
    present = {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(nb.cells) if "nbgrader" in c.metadata}
    for position, grade_id in enumerate(info.order):
        if grade_id not in info.graded or grade_id in present:
            continue
        src = info.sources[grade_id]
        meta = {"grade": True, "grade_id": grade_id, "locked": src["locked"], "points": info.graded[grade_id],
                "schema_version": 3, "solution": grade_id in info.solutions, "task": False,
                "checksum": src["checksum"]}
        if src["cell_type"] == "code":
            cell = nbformat.v4.new_code_cell(src["source"], metadata={"nbgrader": meta})
        else:
            cell = nbformat.v4.new_markdown_cell(src["source"], metadata={"nbgrader": meta})
        before = [present[g] for g in info.order[:position] if g in present]
        index = max(before) + 1 if before else 0
        nb.cells.insert(index, cell)
        present = {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(nb.cells) if "nbgrader" in c.metadata}
        notes.append(f"{grade_id}: missing graded cell restored from the gradebook")


def sanitize(nb: NotebookNode, resources: dict, info: SourceInfo, config, notes: list[str]) -> NotebookNode:
    for pp in (ClearOutput(config=config), DeduplicateIds(config=config)):
        nb, resources = pp(nb, resources)
    normalize_metadata(nb, info, notes)
    restore_missing_tests(nb, info, notes)
    overwrite = OverwriteCells(config=config)
    overwrite.add_missing_cells = False  # done above, more robustly
    for pp in (OverwriteKernelspec(config=config), overwrite, CheckCellMetadata(config=config)):
        nb, resources = pp(nb, resources)
    return nb


def job_cells(nb: NotebookNode) -> list[dict]:
    """The code cells of a sanitized notebook, as the runner wants them."""
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if utils.is_grade(cell) and not utils.is_solution(cell):
            kind = "test"
        elif utils.is_locked(cell):
            kind = "instructor"
        else:
            kind = "student"
        cells.append({"index": index, "kind": kind, "source": cell.source})
    return cells


def zero_notebook(gb: Gradebook, notebook: str, assignment: str, student: str) -> None:
    """What nbgrader does for a missing notebook: every grade 0, nothing to grade by hand."""
    submission = gb.find_submission_notebook(notebook, assignment, student)
    for grade in submission.grades:
        grade.auto_score = 0
        grade.needs_manual_grade = False
    gb.db.commit()


def copy_files(submitted: str, source: str, dest: str, ignore: list[str], keep: list[str]) -> None:
    """nbgrader's copies into autograded/: the student's other files, then the source's on top (except keep)."""
    for origin, skip in ((submitted, []), (source, keep)):
        for filename in utils.find_all_files(origin, ignore + ["*.ipynb"]):
            relative = os.path.relpath(filename, origin)
            if relative in skip:
                continue
            target = os.path.join(dest, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.exists(target):
                os.remove(target)
            shutil.copy(filename, target)


def prepare(coursedir, config, assignment: str, student: str, infos: dict[str, SourceInfo],
            keep: list[str]) -> Prepared:
    """Everything before execution, for one submission (the caller holds the gradebook lock)."""
    db_url = coursedir.db_url
    result = Prepared(student=student)
    submitted = coursedir.format_path(coursedir.submitted_directory, student, assignment)
    dest = coursedir.format_path(coursedir.autograded_directory, student, assignment)
    source = coursedir.format_path(coursedir.source_directory, ".", assignment)
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
        gb.find_assignment(assignment)
        timestamp = coursedir.get_existing_timestamp(submitted)
        if timestamp:
            gb.update_or_create_submission(assignment, student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(assignment, student)
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    copy_files(submitted, source, dest, list(coursedir.ignore), keep)

    for name, info in sorted(infos.items()):
        path = os.path.join(submitted, f"{name}.ipynb")
        reason = None
        if not os.path.isfile(path):
            reason = ("missing", f"{name}.ipynb was not submitted")
        else:
            try:
                nb = read_notebook(path)
            except ValueError as error:
                reason = ("malformed", f"{name}.ipynb: {error}")
        if reason is None:
            resources = {"unique_key": name, "output_files_dir": f"{name}_files",
                         "nbgrader": {"student": student, "assignment": assignment, "notebook": name,
                                      "db_url": db_url}}
            try:
                nb = sanitize(nb, resources, info, config, result.notes)
            except Exception as error:
                reason = ("malformed", f"{name}.ipynb: {type(error).__name__}: {str(error)[:200]}")
        if reason is not None:
            result.problems.append(reason)
            result.zeroed.append(name)
            with Gradebook(db_url) as gb:
                zero_notebook(gb, name, assignment, student)
            continue
        result.notebooks[name] = nb
        result.jobs[name] = job_cells(nb)
    return result
