"""The trusted verdict of each graded test cell: the submission's data against the reference run's.

Nothing here runs student code, and nothing the student's kernel says is believed except as data to compare.
A graded test cell passes only if

* it ran to its end in the sandbox (``ok``: not timed out, not killed, within the output budget),
* it raised no error and wrote nothing to stderr (nbgrader's rule, so that the modes agree), and
* for every check the *source* notebook's test cell published in the reference run, the submission's same
  cell handed back exactly one value, and :func:`course_lib.checks.judge_cell` accepts it under the
  reference run's specification (its tolerance, rule and hints; the student's copy of the spec is ignored).

So a submission that patches IPython, the traceback machinery, ``sys.stderr``, the assertion libraries or the
check functions themselves gains nothing: to score, the values must be right.

:func:`apply` then makes the executed notebook say the same thing, so that nbgrader's own scoring
(``utils.determine_grade``: full points unless an error or stderr output) gives exactly the verdict's score:
a failed test gets a ``GradingError`` output that says which checks failed and why (never the expected
values; for stderr, the first line written), and its printout's "visible test passed" line is rewritten to
say it failed; a passed test keeps no error output, and no graded cell keeps an ``execute_result``
(nbgrader's partial credit), which student code could otherwise publish. Every output and execution count
is rebuilt as valid nbformat (:mod:`.outputs`), whatever the kernel sent, with the strings given to
:func:`apply` (the grading keys) redacted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nbformat import NotebookNode, from_dict

from course_lib.checks import judge_cell

from . import outputs
from .feedback import frames_of_cell, truthful_printout


@dataclass
class Verdict:
    passed: bool
    reason: str  # "" when passed
    ename: str | None = None
    failed_checks: list[str] = field(default_factory=list)


def decide(cell_result: dict | None, reference: list[dict]) -> Verdict:
    """The verdict of one test cell from the runner's result for it and the reference run's records."""
    if not reference:
        return Verdict(False, "the grader has no reference data for this test")
    if cell_result is None:
        return Verdict(False, "not executed")
    status = cell_result.get("status")
    if status != "ok":
        return Verdict(False, cell_result.get("reason") or status or "not executed")
    failed = judge_cell(reference, cell_result.get("records") or [])
    found = cell_result.get("outputs")
    found = [o for o in (found if isinstance(found, list) else []) if isinstance(o, dict)]
    errors = [o for o in found if o.get("output_type") == "error"]
    ename = str(errors[0].get("ename", "Error"))[:100] if errors else None
    stderr = _stderr_line(found)
    if stderr is not None:  # nbgrader's rule (utils.determine_grade): output on stderr fails a graded cell
        failed = failed + [f"the cell wrote to stderr, which fails a test cell as it does under nbgrader "
                           f"(a warning, or a print to sys.stderr?): {stderr}"]
    if failed:
        reason = (f"the test raised {ename}; " if ename else "") + f"{len(failed)} check(s) failed"
        return Verdict(False, reason, ename=ename, failed_checks=failed)
    if ename:
        return Verdict(False, f"the test raised {ename}", ename=ename)
    return Verdict(True, "")


def _stderr_line(found: list[dict]) -> str | None:
    """The first non-blank line the cell wrote to stderr (at most 200 characters), or None if it wrote none."""
    texts = [o.get("text", "") for o in found if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    if not texts:
        return None
    text = "".join(t if isinstance(t, str) else "".join(map(str, t)) if isinstance(t, list) else "" for t in texts)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return repr(lines[0][:200]) if lines else "(blank lines)"


def apply(nb: NotebookNode, results: dict, verdicts: dict[int, Verdict], redact: re.Pattern | None = None) -> None:
    """Copy the executed outputs into ``nb`` (valid nbformat, ``redact`` matches replaced) and make graded
    cells' outputs agree with their verdicts."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        result = results.get(str(index))
        result = result if isinstance(result, dict) else {}
        found = result.get("outputs")
        cleaned = [outputs.clean_output(o, redact) for o in (found if isinstance(found, list) else [])]
        cell.outputs = [from_dict(o) for o in cleaned if o is not None]
        cell.execution_count = outputs.execution_count(result.get("execution_count"))
        verdict = verdicts.get(index)
        if verdict is None:
            continue
        kept = []
        for output in cell.outputs:
            if output.output_type == "execute_result":
                continue
            if output.output_type == "error":
                output.traceback = frames_of_cell(output.traceback, None)
            kept.append(output)
        cell.outputs = kept
        if not verdict.passed:
            lines = verdict.failed_checks or [verdict.reason]
            text = "\n".join(f"- {line}" for line in lines)
            text = redact.sub("[redacted]", text) if redact is not None else text
            cell.outputs.append(from_dict({"output_type": "error", "ename": "GradingError",
                                           "evalue": verdict.reason,
                                           "traceback": [f"GradingError: {verdict.reason}\n{text}"]}))
            truthful_printout(cell)  # its "visible test passed" line, printed whatever the values, says otherwise
