"""Check your own assignment without an instructor: ``python -m course_lib.check NOTEBOOK.ipynb``.

Runs the notebook from top to bottom on a fresh kernel (as nbgrader does when it grades), then prints one
line per graded question: passed, failed with the message of the check that failed, or pending for the
answers an instructor grades by hand. Only the tests inside the notebook run (the visible ones); the grader's
hidden tests check more, so "passed" here is necessary, not sufficient. The notebook file itself is never
modified.

The grader runs its own copy of every locked cell (the setup and the test cells), whatever the submission
holds, and so does this check:

* with ``--original RELEASE.ipynb`` (the notebook as it was released), every locked cell is restored from it
  before the run, and a locked cell deleted from the submission is put back at its place (and reported), as
  the grader puts it back;
* without it, each locked cell is compared with the checksum nbgrader stored in its metadata when the
  assignment was released; a locked cell that was edited is reported and its question fails here, because its
  result says nothing about what the grader will run.

An error in an answer cell (a ``SyntaxError``, say) makes later cells fail with a ``NameError``: the line of a
failed question then names the cell where the first error happened.

Exit status: 0 when every visible test passes and no locked cell was changed, 1 otherwise, 2 when the notebook
cannot be read or run.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# What course_lib's `notebooks` extra installs for this command (pyproject.toml), and the command that does,
# as the course's introduction (book/intro.md, "Install the course on your computer") gives it.
_NOTEBOOK_MODULES = ("nbformat", "nbclient", "jupyter_client")
INSTALL_HINT = 'pip install "course_lib[notebooks] @ git+https://github.com/rnn-course/rnn-course"'


@dataclass
class QuestionResult:
    """The outcome of one graded cell: a test cell (passed or not), or an answer graded by hand (pending)."""

    grade_id: str
    points: float
    passed: bool
    reason: str = ""
    manual: bool = False


@dataclass
class CheckReport:
    """Everything :func:`check_notebook` found."""

    results: list[QuestionResult]
    edited: list[str] = field(default_factory=list)  # locked cells whose source differs from the released one
    restored: list[str] = field(default_factory=list)  # locked cells restored from --original
    deleted: list[str] = field(default_factory=list)  # locked cells deleted from the notebook, put back from it
    answer_errors: list[str] = field(default_factory=list)  # errors raised in answer (solution) cells
    verified: bool = False  # whether the locked cells could be checked at all
    no_nbgrader: bool = False  # the notebook holds checksums, but nbgrader (which computes them) is missing

    @property
    def ok(self) -> bool:
        return all(r.passed or r.manual for r in self.results) and not self.edited


def _meta(cell) -> dict:
    """The cell's nbgrader metadata; ``{}`` when it is missing or not a dict (junk metadata, as nbgrader sees it)."""
    metadata = cell.get("metadata", {})
    meta = metadata.get("nbgrader", {}) if isinstance(metadata, dict) else {}
    return meta if isinstance(meta, dict) else {}


def _is_manual(cell) -> bool:
    meta = _meta(cell)
    return bool(meta.get("grade")) and bool(meta.get("solution"))


def _is_locked(cell) -> bool:
    """A cell the student must not change: locked, or a test cell (graded and not an answer)."""
    meta = _meta(cell)
    return not meta.get("solution") and (bool(meta.get("locked")) or bool(meta.get("grade")))


def _first_error(outputs: list) -> dict | None:
    return next((out for out in outputs if out.get("output_type") == "error"), None)


def _error_line(error: dict) -> str:
    """``Name: first line of the message``, plus the line number for a syntax error."""
    lines = [line.strip() for line in (error.get("evalue") or "").splitlines() if line.strip()]
    text = f"{error.get('ename', 'Error')}: {lines[0] if lines else ''}".strip().rstrip(":")
    if error.get("ename") in ("SyntaxError", "IndentationError", "TabError"):
        text = re.sub(r"\(\S+\.py, line (\d+)\)", r"(line \1 of the cell)", text)
        found = re.search(r"line (\d+)", " ".join(_strip_ansi(t) for t in error.get("traceback", [])))
        if found and f"line {found.group(1)}" not in text:
            text += f" (line {found.group(1)} of the cell)"
    return text


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _error_summary(outputs: list) -> str:
    error = _first_error(outputs)
    if error is not None:
        return _error_line(error)
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            first = out.get("text", "").strip().splitlines()
            return "wrote to stderr (the grader scores that as a failure): " + (first[0] if first else "")
    return ""


def _checksum(cell) -> str | None:
    try:
        from nbgrader.utils import compute_checksum
    except ImportError:  # nbgrader is not installed: nothing to compare with
        return None
    try:
        return compute_checksum(cell)
    except Exception:  # malformed metadata (points missing...): report it as edited
        return ""


def _name(cell, index: int) -> str:
    grade_id = _meta(cell).get("grade_id")
    return f"cell {index + 1} ({grade_id})" if grade_id else f"cell {index + 1}"


def _restore_locked(nb, original_path: Path) -> tuple[list[str], list[str]]:
    """Overwrite the locked cells of ``nb`` with those of the original (by grade_id), as nbgrader does.

    A locked cell deleted from ``nb`` is put back, after the cell that precedes it in the original (the one
    before it that ``nb`` still has, or at the top), so that the run is the grader's.
    Returns the grade_ids restored (their source had changed, or the cell was deleted) and those deleted.
    """
    import nbformat

    try:
        original = nbformat.read(original_path, as_version=4)
    except Exception as exc:
        raise ValueError(f"{original_path} is not a valid Jupyter notebook: {exc}") from exc
    mine = {_meta(c).get("grade_id"): c for c in nb.cells if _meta(c).get("grade_id")}
    restored, missing = [], []
    previous = None  # the last cell of nb that matches a cell of the original met so far
    for cell in original.cells:
        grade_id = _meta(cell).get("grade_id")
        if grade_id and grade_id in mine:
            previous = mine[grade_id]
        if not grade_id or not _is_locked(cell):
            continue
        if grade_id not in mine:
            missing.append(grade_id)
            restored.append(grade_id)
            position = 0 if previous is None else next(i for i, c in enumerate(nb.cells) if c is previous) + 1
            nb.cells.insert(position, copy.deepcopy(cell))
            mine[grade_id] = previous = nb.cells[position]
            continue
        target = mine[grade_id]
        if target.source != cell.source or target.cell_type != cell.cell_type or _meta(target) != _meta(cell):
            restored.append(grade_id)
        target.source, target.cell_type = cell.source, cell.cell_type
        target.metadata["nbgrader"] = dict(_meta(cell))
    return restored, missing


def check_notebook(path: str | os.PathLike, timeout: int = 120, kernel_name: str = "python3",
                   original: str | os.PathLike | None = None) -> CheckReport:
    """Execute a copy of the notebook at ``path`` and return what every graded cell did.

    Args:
        path: the student's notebook.
        timeout: seconds allowed per cell.
        kernel_name: the Jupyter kernel to run it with.
        original: the notebook as released; its locked cells replace the student's before the run.

    Raises:
        ValueError: the file is not a readable Jupyter notebook, or it has no graded cells.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except FileNotFoundError:
        raise
    except Exception as exc:  # nbformat raises several types for bad JSON or schema
        raise ValueError(f"{path} is not a valid Jupyter notebook: {exc}") from exc
    if not any(_meta(c).get("grade") for c in nb.cells):
        raise ValueError(f"{path} has no graded test cells (is it an assignment notebook?)")

    report = CheckReport(results=[])
    edited_ids: set[str] = set()
    if original is not None:
        report.restored, report.deleted = _restore_locked(nb, Path(original))
        report.verified = True
    else:
        for index, cell in enumerate(nb.cells):
            stored = _meta(cell).get("checksum")
            if not _is_locked(cell) or not stored:
                continue
            actual = _checksum(cell)
            if actual is None:
                report.no_nbgrader = True
                continue
            report.verified = True
            if actual != stored:
                report.edited.append(_name(cell, index))
                edited_ids.add(_meta(cell).get("grade_id"))

    variables = ("NBGRADER_EXECUTION", "RNN_COURSE_CHECKS", "PYDEVD_DISABLE_FILE_VALIDATION")
    saved = {k: os.environ.get(k) for k in variables}
    os.environ["NBGRADER_EXECUTION"] = "check"  # run the short versions of long cells, as the grader does
    os.environ["RNN_COURSE_CHECKS"] = "assert"  # the checks judge in the kernel (see course_lib.checks)
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # a debugger warning the kernel would print
    # The kernel's own log (e.g. ipykernel's warning about TCP without encryption) goes to a file, not to the
    # terminal where it would land in the middle of the report; it is shown only if the kernel fails.
    kernel_log = tempfile.TemporaryFile(mode="w+")
    try:
        client = NotebookClient(
            nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
            resources={"metadata": {"path": str(path.parent.resolve())}},
        )
        try:
            client.execute(stderr=kernel_log, stdout=kernel_log)
        except Exception as exc:
            kernel_log.seek(0)
            log = kernel_log.read().strip()
            raise RuntimeError(f"{exc}" + (f"\nthe kernel said:\n{log[-2000:]}" if log else "")) from exc
    finally:
        kernel_log.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    first_error: str | None = None  # the first error in a cell that is not a test cell
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" and not _is_manual(cell):
            continue
        meta = _meta(cell)
        grade_id = meta.get("grade_id", f"cell {index + 1}")
        if _is_manual(cell):
            report.results.append(QuestionResult(grade_id, float(meta.get("points", 0)), False,
                                                 "graded by hand", manual=True))
            continue
        error = _first_error(cell.get("outputs", []))
        if not meta.get("grade"):
            if error is not None:
                line = f"{_name(cell, index)}: {_error_line(error)}"
                if meta.get("solution"):
                    report.answer_errors.append(line)
                if first_error is None:
                    first_error = line
            continue
        reason = _error_summary(cell.get("outputs", []))
        if grade_id in edited_ids:
            reason = "this locked test cell was edited: the grader runs the original, so its result here " \
                     "does not count (restore the cell, or pass --original)"
        elif reason and first_error is not None and error is not None and error.get("ename") == "NameError":
            reason += f" (probably because of an earlier error, in {first_error})"
        report.results.append(QuestionResult(grade_id, float(meta.get("points", 0)), not reason, reason))
    return report


def format_report(report: CheckReport | list[QuestionResult]) -> str:
    if isinstance(report, list):
        report = CheckReport(results=report)
    results = report.results
    width = max(len(r.grade_id) for r in results)
    lines = []
    for r in results:
        mark = "pending (graded by hand)" if r.manual else "passed" if r.passed else f"FAILED  {r.reason}"
        lines.append(f"{r.grade_id:<{width}}  {r.points:g} pt  {mark}")
    auto = [r for r in results if not r.manual]
    manual = [r for r in results if r.manual]
    earned = sum(r.points for r in auto if r.passed)
    total = sum(r.points for r in auto)
    summary = (f"visible tests: {sum(r.passed for r in auto)} of {len(auto)} questions pass "
               f"({earned:g}/{total:g} points, if the hidden tests pass too)")
    if manual:
        summary += f"; {sum(r.points for r in manual):g} more points are graded by hand"
    lines.append(summary)
    if report.answer_errors:
        lines.append("errors in your answer cells (fix the first one first):")
        lines += [f"  {line}" for line in report.answer_errors]
    if report.edited:
        lines.append("locked cells that were changed (the grader runs the released version of each): "
                     + ", ".join(report.edited))
    if report.restored:
        lines.append("locked cells restored from the original before the run: " + ", ".join(report.restored))
    if report.deleted:
        lines.append("locked cells deleted from the notebook (put back from the original, as the grader does): "
                     + ", ".join(report.deleted))
    if report.no_nbgrader and not report.verified:
        lines.append("(nbgrader is not installed here, so changes to the locked cells could not be detected: "
                     f"install the course with its notebooks extra, {INSTALL_HINT}, or pass --original "
                     "RELEASE.ipynb to run the released test cells)")
    elif not report.verified:
        lines.append("(this notebook holds no nbgrader checksums, so changes to its locked cells could not be "
                     "detected: pass --original RELEASE.ipynb to run the released test cells)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.check", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="the assignment notebook (.ipynb) to check")
    parser.add_argument("--original", metavar="RELEASE.ipynb",
                        help="the notebook as released: its locked cells are restored before the run")
    parser.add_argument("--timeout", type=int, default=120, help="seconds allowed per cell (default 120)")
    args = parser.parse_args(argv)
    try:
        report = check_notebook(args.notebook, timeout=args.timeout, original=args.original)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the kernel died or could not start, or course_lib came without its extra
        if isinstance(exc, ModuleNotFoundError) and exc.name in _NOTEBOOK_MODULES:
            print(f"error: {exc}: this command needs the course's notebooks extra; install it with "
                  f"{INSTALL_HINT}", file=sys.stderr)
            return 2
        print(f"error: could not run {args.notebook}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
