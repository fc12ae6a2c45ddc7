"""The trusted verdict of each graded test cell, from the runner's result and the harness's signed records.

A test cell passes only if the cell ran to its end in the sandbox (``ok``) and published exactly one record,
signed with this run's key, for this run, this cell, the expected position in the sequence of instructor
cells, and the SHA-256 of the test source the parent sent, with status ``pass``. Everything else -- an
exception, a timeout, a dead kernel, an output flood, a missing, duplicated, replayed or forged record, or a
tampered test environment -- is a failure with a reason.

:func:`apply` then makes the executed notebook say the same thing, so that nbgrader's own scoring
(``utils.determine_grade``: full points unless an error or stderr output) gives exactly the verdict's score: a
failed test without an error output gets one, and a graded cell's ``execute_result`` (nbgrader's partial
credit) is replaced by the value the harness signed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from nbformat import NotebookNode, from_dict

from .feedback import frames_of_cell
from .harness import sign


@dataclass
class Verdict:
    passed: bool
    reason: str  # "" when passed
    ename: str | None = None
    result: str | None = None
    problems: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    tampered: bool = False  # the harness or the test's environment was interfered with


def check(cell_result: dict | None, key: bytes, run_id: str, seq: int, index: int, source: str) -> Verdict:
    if cell_result is None:
        return Verdict(False, "not executed")
    status = cell_result.get("status")
    if status != "ok":
        return Verdict(False, cell_result.get("reason") or status or "not executed")
    sha = hashlib.sha256(source.encode()).hexdigest()
    valid = []
    for record in cell_result.get("records", []):
        try:
            payload, mac = dict(record["payload"]), str(record["mac"])
            expected = sign(key, payload)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if hmac.compare_digest(mac, expected) and payload["run"] == run_id:
            valid.append(payload)
    if len(valid) != 1:
        return Verdict(False, "no verdict from the grading harness (it was bypassed or replaced)" if not valid
                       else "several verdicts for one test (the harness was called from the submission)",
                       tampered=True)
    payload = valid[0]
    if payload["cell"] != index or payload["seq"] != seq or payload["sha256"] != sha:
        return Verdict(False, "the verdict belongs to another cell or another test source", tampered=True)
    problems, restored = tuple(payload.get("problems") or ()), tuple(payload.get("restored") or ())
    if payload["status"] == "pass":
        return Verdict(True, "", result=payload.get("result"), restored=restored)
    if payload["status"] == "tampered":
        return Verdict(False, "the test's environment was tampered with: " + "; ".join(problems),
                       problems=problems, restored=restored, tampered=True)
    ename = payload.get("ename")
    return Verdict(False, f"the test raised {ename}", ename=ename, problems=problems, restored=restored)


def apply(nb: NotebookNode, results: dict, verdicts: dict[int, Verdict]) -> None:
    """Copy the executed outputs into ``nb`` and make graded cells' outputs agree with their verdicts."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        result = results.get(str(index))
        cell.outputs = [from_dict(o) for o in (result or {}).get("outputs", [])]
        cell.execution_count = (result or {}).get("execution_count")
        verdict = verdicts.get(index)
        if verdict is None:
            continue
        cell.outputs = [o for o in cell.outputs if o.output_type != "execute_result"]
        for output in cell.outputs:  # the wrapper's own frame says nothing useful
            if output.output_type == "error":
                output.traceback = frames_of_cell(output.traceback, None)
        if verdict.passed:
            if verdict.result is not None:
                cell.outputs.append(from_dict({"output_type": "execute_result", "execution_count":
                                               cell.execution_count, "metadata": {},
                                               "data": {"text/plain": verdict.result}}))
        elif not any(o.output_type == "error" for o in cell.outputs):
            cell.outputs.append(from_dict({"output_type": "error", "ename": "GradingError",
                                           "evalue": verdict.reason, "traceback": [f"GradingError: {verdict.reason}"]}))
