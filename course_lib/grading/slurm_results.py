"""What comes back from a Slurm node (:mod:`.slurm_task`), read by :class:`.slurm.SlurmBackend` as untrusted data.

A task's result, its status file and its log are read like a submitted file (no link followed, no FIFO
opened, a size cap: :func:`.slurm_task.result_cap` for the result); the result is parsed as JSON and its shape
checked (:func:`validate`) before the pool's verdicts see it, and text for a problem row keeps printable
characters only, shortened.
"""

from __future__ import annotations

import json
import os

from .limits import Limits
from .slurm_task import result_cap

STATUS_MAX = 64 * 1024  # bytes of a status file
LOG_MAX = 256 * 1024  # bytes of a task's log read for its last lines


def validate(result) -> str | None:
    """None if ``result`` has the runner's shape (what the pool reads of it), else why not."""
    if not isinstance(result, dict):
        return "the result is not a JSON object"
    cells = result.get("cells")
    if not isinstance(cells, dict):
        return "the result has no cells"
    for key, cell in cells.items():
        if not (isinstance(key, str) and key.isdigit() and isinstance(cell, dict)):
            return "a cell of the result is not the runner's"
        if not isinstance(cell.get("status"), str) or not isinstance(cell.get("reason"), (str, type(None))):
            return "a cell of the result has no valid status"
        for name in ("outputs", "records", "blocked"):
            if not isinstance(cell.get(name, []), list):
                return f"a cell's {name} is not a list"
    if not isinstance(result.get("stop_reason"), (str, type(None))):
        return "the result's stop_reason is not text"
    if not isinstance(result.get("language_info"), (dict, type(None))):
        return "the result's language_info is not an object"
    return None


def printable_excerpt(text: str, limit: int = 300) -> str:
    """Untrusted text (a log) for a problem row: printable characters only, shortened."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text[:limit]


def read_result(folder: str, limits: Limits) -> tuple[dict | None, str | None]:
    """The result a node wrote in task ``folder``: (result, None), or (None, why it was refused)."""
    from .prepare import read_regular  # the parent's reader of untrusted files (nbgrader: parent only)

    try:
        data = read_regular(os.path.join(folder, "result.json"), result_cap(limits))
        result = json.loads(data)
    except FileNotFoundError:
        return None, "the Slurm task reported success but wrote no result"
    except ValueError as error:  # too large, a link, not JSON
        return None, f"the Slurm task's result was refused: {error}"[:300]
    why = validate(result)
    return (None, f"the Slurm task's result was refused: {why}") if why else (result, None)


def read_status(path: str) -> tuple[dict | None, str | None]:
    """What the node's status file says: (None, None) when the result is ready to read."""
    from .prepare import read_regular

    try:
        status = json.loads(read_regular(path, STATUS_MAX))
    except (OSError, ValueError) as error:
        return None, f"the Slurm task's status was refused: {error}"[:300]
    if not isinstance(status, dict) or not isinstance(status.get("failure"), (str, type(None))):
        return None, "the Slurm task's status was refused: not the node's format"
    return (None, printable_excerpt(status["failure"], 500)) if status["failure"] else (None, None)


def log_tail(path: str) -> str:
    """The last lines of a task's log at ``path``, for a problem row ('' if none or unreadable)."""
    from .prepare import read_regular

    try:
        data = read_regular(path, LOG_MAX)
    except (OSError, ValueError):
        return ""
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()][-2:]
    return f"; its log ends: {printable_excerpt(' | '.join(lines))}" if lines else ""


__all__ = ["log_tail", "printable_excerpt", "read_result", "read_status", "validate"]
