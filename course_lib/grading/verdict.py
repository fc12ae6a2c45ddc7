"""The trusted verdict of each graded test cell: the submission's data against the reference run's.

Nothing here runs student code, and nothing the student's kernel says is believed except as data to compare.
A graded test cell passes only if

* it ran to its end in the sandbox (``ok``: not timed out, not killed, within the output budget),
* it raised no error, and
* for every check the *source* notebook's test cell published in the reference run, the submission's same
  cell handed back exactly one value, and :func:`course_lib.checks.judge_cell` accepts it under the
  reference run's specification (its tolerance, rule and hints; the student's copy of the spec is ignored).

So a submission that patches IPython, the traceback machinery, ``sys.stderr``, the assertion libraries or the
check functions themselves gains nothing: to score, the values must be right.

:func:`apply` then makes the executed notebook say the same thing, so that nbgrader's own scoring
(``utils.determine_grade``: full points unless an error or stderr output) gives exactly the verdict's score:
a failed test gets a ``GradingError`` output that says which checks failed and why (never the expected
values), a passed test keeps no error or stderr output, and no graded cell keeps an ``execute_result``
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
from .feedback import frames_of_cell


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
    errors = [o for o in cell_result.get("outputs", []) if isinstance(o, dict) and o.get("output_type") == "error"]
    ename = str(errors[0].get("ename", "Error"))[:100] if errors else None
    if failed:
        reason = (f"the test raised {ename}; " if ename else "") + f"{len(failed)} check(s) failed"
        return Verdict(False, reason, ename=ename, failed_checks=failed)
    if ename:
        return Verdict(False, f"the test raised {ename}", ename=ename)
    return Verdict(True, "")


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
            if output.output_type == "stream" and output.get("name") == "stderr":
                if verdict.passed:  # a warning does not cost a correct answer its points
                    output.name = "stdout"
            if output.output_type == "error":
                output.traceback = frames_of_cell(output.traceback, None)
            kept.append(output)
        cell.outputs = kept
        if not verdict.passed:
            lines = verdict.failed_checks or [verdict.reason]
            text = "\n".join(f"- {line}" for line in lines)
            cell.outputs.append(from_dict({"output_type": "error", "ename": "GradingError",
                                           "evalue": verdict.reason,
                                           "traceback": [f"GradingError: {verdict.reason}\n{text}"]}))
