"""Trusted preparation of one submission, in the parent, with the gradebook (nothing of this runs sandboxed).

What ``nbgrader autograde`` does before it executes a notebook, done here so that the sandbox only executes:
create the student and the submission rows (with the submission's timestamp), copy the assignment's other
files, read each notebook (an unreadable one is *malformed* and scores zero, as a missing one does), then
nbgrader's own sanitizing preprocessors (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells,
CheckCellMetadata) with two additions that make them impossible to fool:

* every cell's nbgrader metadata (grade, solution, locked, points) is reset from the gradebook, and a cell
  whose grade_id the gradebook does not know (a *fake* graded cell) loses its nbgrader metadata and runs as
  ordinary student code;
* a graded test cell or a locked instructor cell missing from the submission (deleted, or its grade_id edited)
  is put back from the gradebook, after the nearest cell that precedes it in the source notebook;
* before any of nbgrader's preprocessors, nbgrader metadata that is not a dict, has no known grade_id, or sits
  on a cell of the wrong type for an unlocked id is stripped (the cell runs as student code; junk metadata
  never zeroes a notebook), and of the cells that share a grade_id one keeps it: for a locked id the one whose
  source is the instructor's (else the first), so a copy of the metadata neither protects the copy nor
  unprotects the original; for other ids the last, as nbgrader does.

Files of a submission are read and copied without following symbolic links or opening special files (a FIFO,
a device, a link to a root-only file), and with size caps (:func:`read_regular`): such a file is left out and
listed in :attr:`Prepared.left_out` (the command reports it as "file left out"), and a notebook that is one is
*malformed*.

The result is a :class:`Prepared` submission: the sanitized notebooks and, for the sandbox, the list of code
cells to execute, each marked ``test`` (graded test cell), ``instructor`` (other locked cell) or ``student``.
"""

from __future__ import annotations

import ast
import datetime
import errno
import os
import re
import shutil
import stat
from dataclasses import dataclass, field

import nbformat
from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteKernelspec
from nbgrader.utils import is_ignored, parse_utc

from .overwrite import OverwriteReleasedCells


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
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (submitted file, why it was not copied)
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


MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024  # a submitted notebook larger than this is malformed
MAX_FILE_BYTES = 64 * 1024 * 1024  # another submitted file larger than this is left out
MAX_TIMESTAMP_BYTES = 256
TIMEZONE = re.compile(r"[+-]?\d{1,4}|[A-Za-z][A-Za-z0-9_+-]{0,30}(/[A-Za-z][A-Za-z0-9_+-]{0,30}){0,2}")


def read_regular(path: str, limit: int, dir_fd: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes; else ValueError saying why.

    Never follows a symbolic link (``O_NOFOLLOW``), never blocks on a FIFO (``O_NONBLOCK``, then only regular
    files are read), never reads past ``limit`` (a file that grows while read is cut and refused).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise
        if error.errno == errno.ELOOP:
            raise ValueError("is a symbolic link") from None
        raise ValueError(f"cannot be opened ({error.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("is not a regular file")
        if info.st_size > limit:
            raise ValueError(f"is larger than {limit} bytes")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ValueError(f"is larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_timestamp(folder: str, notes: list[str]) -> datetime.datetime | None:
    """nbgrader's ``timestamp.txt`` of a submission, read safely; None (with a note) if absent or unusable."""
    try:
        text = read_regular(os.path.join(folder, "timestamp.txt"), MAX_TIMESTAMP_BYTES).decode("utf-8").strip()
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as error:
        notes.append(f"timestamp.txt ignored: {error}")
        return None
    parts = text.split(" ")
    if not text or (len(parts) == 3 and not TIMEZONE.fullmatch(parts[2])):
        notes.append("timestamp.txt ignored: not a timestamp")
        return None
    try:
        return parse_utc(text)
    except (ValueError, OverflowError, TypeError):
        notes.append("timestamp.txt ignored: not a timestamp")
        return None


def read_notebook(path: str) -> NotebookNode:
    """nbformat.read + validate; raises ValueError with a short reason for anything unreadable."""
    try:
        raw = read_regular(path, MAX_NOTEBOOK_BYTES)
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


def clean_metadata(nb: NotebookNode, info: SourceInfo, notes: list[str]) -> None:
    """Strip junk nbgrader metadata and settle duplicated grade_ids, before nbgrader's preprocessors see them."""
    holders: dict[str, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        metadata = cell.get("metadata")
        if not isinstance(metadata, dict) or "nbgrader" not in metadata:
            continue
        meta = metadata["nbgrader"]
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        source = info.sources.get(grade_id) if isinstance(grade_id, str) else None
        if source is None or (cell.get("cell_type") != source["cell_type"] and not source["locked"]):
            if meta:
                notes.append(f"cell {index}: nbgrader metadata {str(grade_id)[:40]!r} stripped (unknown id or "
                             "wrong cell type): it runs as ordinary code")
            del metadata["nbgrader"]
            continue
        holders.setdefault(grade_id, []).append(index)
    for grade_id, indices in holders.items():
        if len(indices) == 1:
            continue
        source = info.sources[grade_id]
        if source["locked"]:
            exact = [i for i in indices if str(nb.cells[i].get("source", "")).strip() == source["source"].strip()]
            keep = (exact or indices)[0]
        else:
            keep = indices[-1]
        for index in indices:
            if index != keep:
                del nb.cells[index].metadata["nbgrader"]
        notes.append(f"{grade_id}: {len(indices)} cells carried this id; only cell {keep} keeps it")


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
    """Put back graded and locked cells that are missing, from the gradebook's source, in source order."""
    present = {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(nb.cells) if "nbgrader" in c.metadata}
    for position, grade_id in enumerate(info.order):
        src = info.sources[grade_id]
        wanted = grade_id in info.graded or (src["locked"] and grade_id not in info.tasks)
        if not wanted or grade_id in present:
            continue
        graded = grade_id in info.graded
        meta = {"grade": graded, "grade_id": grade_id, "locked": src["locked"], "schema_version": 3,
                "solution": grade_id in info.solutions, "task": False, "checksum": src["checksum"]}
        if graded:
            meta["points"] = info.graded[grade_id]
        if src["cell_type"] == "code":
            cell = nbformat.v4.new_code_cell(src["source"], metadata={"nbgrader": meta})
        else:
            cell = nbformat.v4.new_markdown_cell(src["source"], metadata={"nbgrader": meta})
        before = [present[g] for g in info.order[:position] if g in present]
        index = max(before) + 1 if before else 0
        nb.cells.insert(index, cell)
        present = {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(nb.cells) if "nbgrader" in c.metadata}
        notes.append(f"{grade_id}: missing {'graded' if graded else 'locked'} cell restored from the gradebook")


def sanitize(nb: NotebookNode, resources: dict, info: SourceInfo, config, notes: list[str]) -> NotebookNode:
    clean_metadata(nb, info, notes)
    for pp in (ClearOutput(config=config), DeduplicateIds(config=config)):
        nb, resources = pp(nb, resources)
    normalize_metadata(nb, info, notes)
    restore_missing_tests(nb, info, notes)
    overwrite = OverwriteReleasedCells(config=config)
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


def copy_files(submitted: str, source: str, dest: str, ignore: list[str], keep: list[str],
               notes: list[str] | None = None, left_out: list[tuple[str, str]] | None = None) -> None:
    """nbgrader's copies into autograded/: the student's other files, then the source's on top (except keep).

    Walks without following symbolic links and copies regular files only, each read with a size cap
    (:func:`read_regular`); anything else (a link, a FIFO, a device, a file too large) is left out, with a note,
    and, for the submitted files, a ``(path, reason)`` in ``left_out``.
    """
    for origin, skip in ((submitted, []), (source, keep)):
        if not os.path.isdir(origin) or os.path.islink(origin):
            continue
        for dirpath, dirnames, filenames, dir_fd in os.fwalk(origin, follow_symlinks=False):
            if is_ignored(dirpath, ignore):
                dirnames[:] = []
                continue
            for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                path = os.path.join(dirpath, name)
                relative = os.path.relpath(path, origin)
                if relative in skip or name.endswith(".ipynb") or is_ignored(path, ignore):
                    continue
                try:
                    data = read_regular(name, MAX_FILE_BYTES, dir_fd=dir_fd)
                except (OSError, ValueError) as error:
                    if notes is not None:
                        notes.append(f"file {relative!r} left out: {error}")
                    if left_out is not None and origin == submitted:
                        left_out.append((relative, str(error)))
                    continue
                target = os.path.join(dest, relative)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if os.path.lexists(target):
                    os.remove(target)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)


def prepare(coursedir, config, assignment: str, student: str, infos: dict[str, SourceInfo],
            keep: list[str]) -> Prepared:
    """Everything before execution, for one submission (the caller holds the gradebook lock)."""
    db_url = coursedir.db_url
    result = Prepared(student=student)
    submitted = coursedir.format_path(coursedir.submitted_directory, student, assignment)
    dest = coursedir.format_path(coursedir.autograded_directory, student, assignment)
    source = coursedir.format_path(coursedir.source_directory, ".", assignment)
    linked = os.path.islink(submitted) or os.path.islink(os.path.dirname(submitted))
    if linked:  # a student's folder that points elsewhere (e.g. at /root): read nothing from it
        result.problems.append(("malformed", "the submission folder is a symbolic link: nothing was read"))
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
        gb.find_assignment(assignment)
        timestamp = None if linked else read_timestamp(submitted, result.notes)
        if timestamp:
            gb.update_or_create_submission(assignment, student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(assignment, student)
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    copy_files(os.devnull if linked else submitted, source, dest, list(coursedir.ignore), keep, result.notes,
               result.left_out)

    for name, info in sorted(infos.items()):
        path = os.path.join(submitted, f"{name}.ipynb")
        reason = None
        if linked or not os.path.lexists(path):
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
