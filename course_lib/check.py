"""Check your own assignment without an instructor: ``python -m course_lib.check NOTEBOOK.ipynb``.

Runs the notebook from top to bottom on a fresh kernel (as nbgrader does when it grades), then prints one
line per graded question: passed, or failed with the error it raised. Only the tests inside the notebook
run (the visible ones); the grader's hidden tests check more, so "passed" here is necessary, not sufficient.
The notebook file itself is never modified.

Exit status: 0 when every visible test passes, 1 when any fails, 2 when the notebook cannot be read or run.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class QuestionResult:
    """The outcome of one graded test cell."""

    grade_id: str
    points: float
    passed: bool
    reason: str = ""


def _error_summary(outputs: list) -> str:
    for out in outputs:
        if out.get("output_type") == "error":
            lines = [line.strip() for line in (out.get("evalue") or "").splitlines() if line.strip()]
            return f"{out.get('ename', 'Error')}: {lines[0] if lines else ''}".strip().rstrip(":")
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            first = out.get("text", "").strip().splitlines()
            return "wrote to stderr (the grader scores that as a failure): " + (first[0] if first else "")
    return ""


def check_notebook(path: str | os.PathLike, timeout: int = 120, kernel_name: str = "python3") -> list[QuestionResult]:
    """Execute a copy of the notebook at ``path`` and return the result of each graded test cell.

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
    graded = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    if not graded:
        raise ValueError(f"{path} has no graded test cells (is it an assignment notebook?)")
    env_backup = os.environ.get("NBGRADER_EXECUTION")
    os.environ["NBGRADER_EXECUTION"] = "check"  # run the short versions of long cells, as the grader does
    try:
        client = NotebookClient(
            nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
            resources={"metadata": {"path": str(path.parent.resolve())}},
        )
        client.execute()
    finally:
        if env_backup is None:
            os.environ.pop("NBGRADER_EXECUTION", None)
        else:
            os.environ["NBGRADER_EXECUTION"] = env_backup
    results = []
    for cell in graded:
        meta = cell.metadata.nbgrader
        reason = _error_summary(cell.get("outputs", []))
        results.append(QuestionResult(meta.get("grade_id", "?"), float(meta.get("points", 0)), not reason, reason))
    return results


def format_report(results: list[QuestionResult]) -> str:
    width = max(len(r.grade_id) for r in results)
    lines = []
    for r in results:
        mark = "passed" if r.passed else f"FAILED  {r.reason}"
        lines.append(f"{r.grade_id:<{width}}  {r.points:g} pt  {mark}")
    earned = sum(r.points for r in results if r.passed)
    total = sum(r.points for r in results)
    lines.append(f"visible tests: {sum(r.passed for r in results)} of {len(results)} questions pass "
                 f"({earned:g}/{total:g} points, if the hidden tests pass too)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.check", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="the assignment notebook (.ipynb) to check")
    parser.add_argument("--timeout", type=int, default=120, help="seconds allowed per cell (default 120)")
    args = parser.parse_args(argv)
    try:
        results = check_notebook(args.notebook, timeout=args.timeout)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the kernel died or could not start
        print(f"error: could not run {args.notebook}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(format_report(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
