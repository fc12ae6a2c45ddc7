"""Valid notebook outputs from untrusted data: what a kernel sent becomes nbformat-valid, or is dropped.

A submission's code can send any message on its kernel's channels (``get_ipython().kernel.session.send``), with
any content: an ``execution_count`` of 60 MiB or a string, a stream named anything, a MIME bundle of numbers.
nbclient copies such fields into the notebook as they come. The runner (in the sandbox) passes nbclient only
the fields of a message it needs, rebuilt here and counted against the output budget; the trusted parent
rebuilds every output again from the runner's result before it writes ``autograded/`` (and can redact
strings there), so the notebook it writes is valid nbformat 4 and ``nbgrader generate_feedback`` reads it.

No imports beyond the standard library: the runner imports this module in the sandbox.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

MAX_EXECUTION_COUNT = 2**31 - 1
_JSON_MIME = re.compile(r"^.*/.*json$")  # nbformat's mimebundle: these may hold any JSON value
_LANGUAGE_INFO = ("name", "version", "mimetype", "file_extension", "pygments_lexer", "nbconvert_exporter")


def execution_count(value: Any) -> int | None:
    """``value`` if it is a plausible execution count (an int in [0, 2**31)), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_EXECUTION_COUNT:
        return value
    return None


def text(value: Any) -> str:
    """A multiline string (a str, or a list of str joined); anything else as its JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return json.dumps(value, default=str)


def _bundle(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    return {str(k): (v if _JSON_MIME.match(str(k)) else text(v)) for k, v in value.items()}


def _dict(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def message_content(msg_type: str, content: Any) -> dict[str, Any]:
    """The fields of an output message (stream, display_data, update_display_data, execute_result, error)
    that nbclient reads, rebuilt with valid types; nothing else is kept (no ``execution_count`` outside
    ``execute_result``, where a bad one becomes None)."""
    content = content if isinstance(content, dict) else {}
    if msg_type == "stream":
        name = content.get("name")
        return {"name": name if name in ("stdout", "stderr") else "stdout", "text": text(content.get("text", ""))}
    if msg_type == "error":
        traceback = content.get("traceback")
        return {"ename": text(content.get("ename", "")), "evalue": text(content.get("evalue", "")),
                "traceback": [text(t) for t in traceback] if isinstance(traceback, list) else [text(traceback)]}
    clean: dict[str, Any] = {"data": _bundle(content.get("data")), "metadata": _dict(content.get("metadata"))}
    transient = content.get("transient")
    if isinstance(transient, dict) and isinstance(transient.get("display_id"), str):
        clean["transient"] = {"display_id": transient["display_id"]}
    if msg_type == "execute_result":
        clean["execution_count"] = execution_count(content.get("execution_count"))
    return clean


def _redact(value: Any, pattern: re.Pattern | None) -> Any:
    if pattern is None:
        return value
    if isinstance(value, str):
        return pattern.sub("[redacted]", value)
    if isinstance(value, list):
        return [_redact(v, pattern) for v in value]
    if isinstance(value, dict):
        return {_redact(k, pattern): _redact(v, pattern) for k, v in value.items()}
    return value


def redactor(secrets: Iterable[str]) -> re.Pattern | None:
    """A pattern for :func:`clean_output` that finds any of ``secrets`` (8 characters or more; any case)."""
    words = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None


def clean_output(output: Any, redact: re.Pattern | None = None) -> dict[str, Any] | None:
    """A valid nbformat 4 output rebuilt from ``output`` (untrusted JSON), strings matching ``redact``
    replaced; None for what is not an output at all."""
    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")
    if kind not in ("stream", "display_data", "execute_result", "error"):
        return None
    clean = message_content(kind, output)
    clean.pop("transient", None)
    return {"output_type": kind, **_redact(clean, redact)}


def language_info(value: Any) -> dict[str, str] | None:
    """The kernel's language_info with its string fields only (nbformat requires a name), or None."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    info = {k: value[k] for k in _LANGUAGE_INFO if isinstance(value.get(k), str)}
    mode = value.get("codemirror_mode")
    if isinstance(mode, str) or (isinstance(mode, dict) and all(isinstance(k, str) for k in mode)):
        info["codemirror_mode"] = mode
    return info
