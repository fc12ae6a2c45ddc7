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
* shows what a failed check says: the messages the test cells publish (``what=`` and the hints of
  ``mistakes=``, whole or in part) are no secrets even where a line of a hidden test spells them, and only
  the lines of an output that quote hidden test code are redacted, not the whole output (unless the quote
  spans lines);
* keeps a failed test cell from saying it passed: its printout ``"<name>: visible test passed"`` (which the
  kernel prints in record mode whatever its values, the verdict being decided outside it) becomes
  ``"<name>: failed ..."``; a passed cell keeps it;
* keeps only inert output types (plain text and PNG/JPEG/GIF images; HTML-only output becomes its source as
  plain text, so a ``<script>`` shows as text), and shows students' markdown and raw cells as their source
  text: nothing a student wrote reaches the feedback page as HTML or JavaScript.
"""

from __future__ import annotations

import ast
import re

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SAFE_MIME = ("text/plain", "image/png", "image/jpeg", "image/gif")
MIN_HIDDEN_CHARS = 12
REDACTED = "[output removed from the feedback: it contained hidden test code]\n"
PASSED_LINE = re.compile(r"^(?P<name>[^\n]{0,200}?): visible tests? passed[^\n]*$", re.MULTILINE)
FAILED_LINE = "{name}: failed (the checks that failed are listed below)"
CHECKS = ("close", "equal", "rule")


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


def _strings(node) -> list[str]:
    """The literal text of a message expression: a string, the constant parts of an f-string, concatenations."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    if isinstance(node, ast.BinOp):
        return _strings(node.left) + _strings(node.right)
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def _hint_keys(node, names: set[str]) -> list[str]:
    """The hints of a ``mistakes=`` value (a dict, a name bound to one, ``a if c else b``); names go to ``names``."""
    if isinstance(node, ast.Name):
        names.add(node.id)
    elif isinstance(node, ast.IfExp):
        return _hint_keys(node.body, names) + _hint_keys(node.orelse, names)
    elif isinstance(node, ast.Dict):
        found = [t for k in node.keys if k is not None for t in _strings(k)]
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # {**hints, ...}
                found += _hint_keys(value, names)
        return found
    return []


def check_messages(source: str) -> list[str]:
    """The texts a test cell's checks show when they fail: the ``what=`` descriptions and the hints (keys of
    ``mistakes=`` dicts, written in the call, bound to a name first, or added as ``hints[...] = ...``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CHECKS:
            for keyword in node.keywords:
                if keyword.arg == "what":
                    found += _strings(keyword.value)
                elif keyword.arg == "mistakes":
                    found += _hint_keys(keyword.value, names)
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name) and target.id in names and isinstance(node.value, ast.Dict):
                found += [t for k in node.value.keys if k is not None for t in _strings(k)]
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and \
                    target.value.id in names:
                found += _strings(target.slice)
    return found


def hidden_lines(nb) -> set[str]:
    """The lines of the notebook's hidden-test regions (letters and digits only) that were never published.

    A line that only spells (part of) a message a check shows when it fails is no secret: the message is
    there to be read.
    """
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
    messages = [_letters(text) for cell in nb.cells if cell.cell_type == "code" and utils.is_grade(cell)
                and not utils.is_solution(cell) for text in check_messages(cell.get("source", ""))]
    return {line for line in hidden - public if len(line) >= MIN_HIDDEN_CHARS
            and not any(line in text for text in messages)}


def _leaks(text, secrets: set[str]) -> bool:
    flat = _letters(ANSI.sub("", text if isinstance(text, str) else "".join(map(str, text))))
    return any(secret in flat for secret in secrets)


def _fence(text: str) -> str:
    """``text`` as a fenced code block that no backtick run inside it can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def redact_lines(text, secrets: set[str]) -> str:
    """``text`` with each line that quotes hidden test code replaced by :data:`REDACTED`; all of it replaced
    when what is left still quotes some (a quote spread over several lines), or when every line goes."""
    text = text if isinstance(text, str) else "".join(map(str, text))
    if not _leaks(text, secrets):
        return text
    kept, removed = [], False
    for line in text.splitlines(keepends=True):
        if _leaks(line, secrets):
            if not removed:
                kept.append(REDACTED)
            removed = True
        else:
            kept.append(line)
            removed = False
    if all(line is REDACTED for line in kept) or _leaks("".join(line for line in kept if line is not REDACTED),
                                                        secrets):
        return REDACTED
    return "".join(kept)


def inert_output(output, secrets: set[str]):
    """The output with only inert content, its lines that show hidden test code redacted."""
    kind = output.get("output_type")
    if kind == "stream":
        if _leaks(output.get("text", ""), secrets):
            output["text"] = redact_lines(output.get("text", ""), secrets)
    elif kind == "error":
        traceback = output.get("traceback", [])
        if _leaks(traceback, secrets):
            traceback = [redact_lines(entry, secrets) for entry in traceback]
            whole = _leaks(traceback, secrets) or all(entry == REDACTED for entry in traceback)
            output["traceback"] = [REDACTED.strip()] if whole else traceback
        for key in ("ename", "evalue"):
            if _leaks(output.get(key, ""), secrets):
                output[key] = "[removed]"
    elif kind in ("display_data", "execute_result"):
        data = output.get("data", {})
        if "text/plain" not in data and "text/html" in data:
            data["text/plain"] = data["text/html"]
        output["data"] = {key: value for key, value in data.items() if key in SAFE_MIME}
        plain = output["data"].get("text/plain")
        if plain is not None and _leaks(plain, secrets):
            redacted = redact_lines(plain, secrets)
            output["data"] = {"text/plain": redacted} if redacted == REDACTED else \
                dict(output["data"], **{"text/plain": redacted})
        output["metadata"] = {}
    return output


def failed(cell) -> bool:
    """Whether a graded cell lost its points (nbgrader's rule: an error output, or output on stderr)."""
    return any(o.get("output_type") == "error" or (o.get("output_type") == "stream" and o.get("name") == "stderr")
               for o in cell.get("outputs", []))


def truthful_printout(cell) -> None:
    """In a failed test cell, the line ``"<name>: visible test passed"`` becomes ``"<name>: failed ..."``.

    In record mode (the sandbox) every check only hands its value back, so the cell prints its last line
    whatever the values; the verdict, decided outside the kernel, is the error output below it.
    """
    if not failed(cell):
        return
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            text = output.get("text", "")
            text = text if isinstance(text, str) else "".join(map(str, text))
            output["text"] = PASSED_LINE.sub(lambda m: FAILED_LINE.format(name=m.group("name")), text)


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
            if cell.cell_type == "code":
                truthful_printout(cell)
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
