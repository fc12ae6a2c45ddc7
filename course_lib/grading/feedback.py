"""Feedback without hidden tests and without students' active content: a preprocessor for ``generate_feedback``.

nbgrader 0.9.6 renders feedback from the autograded notebook, which holds the hidden tests: by default a
student's feedback shows every hidden test's source, IPython's tracebacks quote the test lines around a
failure, and a student's own output is rendered as HTML. :class:`HideHiddenTests` (see nbgrader_config.py):

* removes the ``### BEGIN HIDDEN TESTS`` regions from graded cells and, in their error outputs, the traceback
  frames that point into the test cell itself (the exception's type and message, and the frames in the
  student's own code, remain);
* redacts every output, of any cell, that contains a line of this notebook's hidden tests (compared on letters
  and digits only, so indentation, quotes and ``repr`` escapes do not hide it: printing ``linecache.cache`` or
  ``_ih`` shows nothing). Lines shorter than :data:`MIN_HIDDEN_CHARS` such characters, or that also appear
  outside the hidden regions (and so were published), are not secrets. Text that was encoded (base64,
  reversed...) before being printed is not recognised;
* keeps only inert output types (plain text and PNG/JPEG/GIF images; HTML-only output becomes its source as
  plain text, so a ``<script>`` shows as text), and shows students' markdown and raw cells as their source
  text: nothing a student wrote reaches the feedback page as HTML or JavaScript.
"""

from __future__ import annotations

import re

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SAFE_MIME = ("text/plain", "image/png", "image/jpeg", "image/gif")
MIN_HIDDEN_CHARS = 12
REDACTED = "[output removed from the feedback: it contained hidden test code]\n"


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


def _letters(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def hidden_lines(nb) -> set[str]:
    """The lines of the notebook's hidden-test regions (letters and digits only) that were never published."""
    clear = ClearHiddenTests(enforce_metadata=False)
    begin, end = clear.begin_test_delimeter, clear.end_test_delimeter
    hidden, public = set(), set()
    for cell in nb.cells:
        in_test = False
        for line in cell.get("source", "").split("\n"):
            if begin in line:
                in_test = True
            elif end in line:
                in_test = False
            elif in_test and utils.is_grade(cell) and not utils.is_solution(cell):
                hidden.add(_letters(line))
            else:
                public.add(_letters(line))
    return {line for line in hidden - public if len(line) >= MIN_HIDDEN_CHARS}


def _leaks(text, secrets: set[str]) -> bool:
    flat = _letters(ANSI.sub("", text if isinstance(text, str) else "".join(map(str, text))))
    return any(secret in flat for secret in secrets)


def _fence(text: str) -> str:
    """``text`` as a fenced code block that no backtick run inside it can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def inert_output(output, secrets: set[str]):
    """The output with only inert content, or a redaction notice if it shows hidden test code."""
    kind = output.get("output_type")
    if kind == "stream":
        if _leaks(output.get("text", ""), secrets):
            output["text"] = REDACTED
    elif kind == "error":
        if _leaks(output.get("traceback", []), secrets):
            output["traceback"] = [REDACTED.strip()]
        for key in ("ename", "evalue"):
            if _leaks(output.get(key, ""), secrets):
                output[key] = "[removed]"
    elif kind in ("display_data", "execute_result"):
        data = output.get("data", {})
        if "text/plain" not in data and "text/html" in data:
            data["text/plain"] = data["text/html"]
        output["data"] = {key: value for key, value in data.items() if key in SAFE_MIME}
        if any(_leaks(value, secrets) for key, value in output["data"].items() if key == "text/plain"):
            output["data"] = {"text/plain": REDACTED}
        output["metadata"] = {}
    return output


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden tests (and output that quotes them) and students' active content from the feedback."""

    def preprocess(self, nb, resources):
        self._secrets = hidden_lines(nb)
        nb.metadata.pop("widgets", None)  # widget state is embedded in a <script> element
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        secrets = getattr(self, "_secrets", set())
        if cell.cell_type in ("markdown", "raw") and not utils.is_locked(cell):
            cell.source = _fence(cell.source) if cell.source.strip() else cell.source
            cell.cell_type = "markdown"
            cell.pop("attachments", None)
            cell.metadata.pop("format", None)
            cell.metadata.pop("raw_mimetype", None)
            return cell, resources
        if utils.is_grade(cell) and not utils.is_solution(cell):
            clear = ClearHiddenTests(enforce_metadata=False)
            try:
                clear._remove_hidden_test_region(cell)
            except RuntimeError:  # unbalanced markers: show nothing of the cell
                cell.source = "# (test source hidden)"
            if cell.cell_type == "code":
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "error":
                        output["traceback"] = frames_of_cell(output.get("traceback", []),
                                                             cell.get("execution_count"))
        if cell.cell_type == "code":
            cell.outputs = [inert_output(output, secrets) for output in cell.get("outputs", [])]
        return cell, resources
