"""What the watcher (:mod:`.watch`) adds to a submission's feedback.

:class:`SubmissionNotes`, a ``generate_feedback`` preprocessor: a note at the top of the page (the attempt,
which attempt counts, the cool-down) and, under the policy ``hidden_before_deadline = "hide"``, hidden checks'
results left out of messages and scores before the due date. :func:`note_page`: the page released instead
for a submission that was not graded (refused, replaced, or failed on the grader's side), saying why.
"""

from __future__ import annotations

import html
import re

from nbformat.v4 import new_markdown_cell
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from traitlets import Bool, Unicode


class SubmissionNotes(NbGraderPreprocessor):
    """For ``generate_feedback`` (after GetGrades, before HideHiddenTests): a note at the top (attempt, policy)
    and, with ``withhold_hidden``, hidden checks' results left out of messages and scores (visible checks only)."""

    banner = Unicode("").tag(config=True)
    withhold_hidden = Bool(False).tag(config=True)
    HIDDEN_NOTE = "- hidden tests: their results are shown after the due date"

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        if self.banner:
            nb.cells.insert(0, new_markdown_cell(self.banner, metadata={"nbgrader": {"locked": True}}))
        return nb, resources

    def preprocess_cell(self, cell, resources, cell_index):
        if not (self.withhold_hidden and cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)
                and ClearHiddenTests().begin_test_delimeter in cell.source):
            return cell, resources
        for i, output in enumerate(list(cell.get("outputs", []))):
            if output.get("output_type") != "error" or output.get("ename") != "GradingError":
                continue
            reason = str(output.get("evalue", ""))
            lines = "\n".join(output.get("traceback", [])).split("\n")[1:]
            visible = [ln for ln in lines if not ln.startswith("- hidden test ")]
            if re.fullmatch(r"\d+ check\(s\) failed", reason) and not visible:  # only hidden checks failed
                cell.outputs.pop(i)
                old = float(cell.metadata.nbgrader.get("score") or 0)
                cell.metadata.nbgrader["score"] = cell.metadata.nbgrader.get("points", old)
                resources["nbgrader"]["score"] = resources["nbgrader"].get("score", 0) + \
                    cell.metadata.nbgrader["score"] - old
            else:
                if re.fullmatch(r"\d+ check\(s\) failed", reason):
                    reason = f"{len(visible)} visible check(s) failed"
                text = "\n".join([*visible, self.HIDDEN_NOTE])
                output["evalue"] = reason
                output["traceback"] = [f"GradingError: {reason}\n{text}"]
            break
        return cell, resources


def note_page(title: str, lines: list[str]) -> str:
    """A small feedback page (all text escaped) for a submission that was not graded."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><ul>{items}</ul></body></html>\n")


__all__ = ["SubmissionNotes", "note_page"]
