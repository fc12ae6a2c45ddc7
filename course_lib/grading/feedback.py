"""Feedback without hidden tests: a preprocessor for ``nbgrader generate_feedback`` (see nbgrader_config.py).

nbgrader 0.9.6 renders feedback from the autograded notebook, which holds the hidden tests: by default a
student's feedback shows every hidden test's source, and IPython's tracebacks quote the test lines around a
failure. :class:`HideHiddenTests` removes the ``### BEGIN HIDDEN TESTS`` regions from graded cells and, in
their error outputs, the traceback frames that point into the test cell itself (the exception's type and
message, and the frames in the student's own code, remain).
"""

from __future__ import annotations

import re

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def frames_of_cell(traceback: list[str], execution_count: int | None) -> list[str]:
    """Drop the traceback entries of frames in the graded cell itself (and of the grader's wrapper).

    The grader compiles a test as ``<graded cell N>``; a notebook graded by plain ``nbgrader autograde`` shows
    its frames as ``Cell In[execution_count]``.
    """
    kept = []
    for entry in traceback:
        plain = ANSI.sub("", entry).lstrip()
        if execution_count is not None and plain.startswith(f"Cell In[{execution_count}]"):
            continue
        if "<graded cell " in plain or "__course_grading__(" in plain or plain.startswith("[... skipping hidden"):
            continue
        kept.append(entry)
    return kept


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden tests, and traceback lines quoting them, from graded cells."""

    def preprocess_cell(self, cell, resources, cell_index):
        if not utils.is_grade(cell) or utils.is_solution(cell):
            return cell, resources
        clear = ClearHiddenTests(enforce_metadata=False)
        try:
            clear._remove_hidden_test_region(cell)
        except RuntimeError:  # unbalanced markers: show nothing of the cell
            cell.source = "# (test source hidden)"
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = frames_of_cell(output.get("traceback", []), cell.get("execution_count"))
        return cell, resources
