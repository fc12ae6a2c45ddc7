"""Claims: the sentences of the book that describe a run, checked by the run itself.

A number in a chapter's prose is inserted by the run (myst-nb ``glue``). A qualitative sentence about a run
("the LSTM learns lag 40 with every seed") cannot be inserted, so the cell that produces the run states it
with :func:`claim` beside the data that backs it. When a change in the code, the data or a library makes the
run stop supporting the sentence, the cell raises :class:`ClaimError` and the book build fails, naming the
sentence and the evidence, instead of publishing a page whose prose contradicts its own output.

Example (in a hidden cell, ``tags: [remove-cell]``, right after the experiment)::

    claim(acc["lstm"].min() > 0.9, "the LSTM learns lag 40 with every seed", accuracies=acc["lstm"])

:func:`glue` is myst-nb's ``glue`` with display off, so that ``{glue:text}`name:.1f``` in the prose shows
the run's value; :func:`claims_made` lists what a page claimed (the build's tests count them).
"""

from __future__ import annotations

from typing import Any

_MADE: list[str] = []


class ClaimError(AssertionError):
    """The run no longer supports a sentence of the book."""


def _describe(value: Any) -> str:
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            return np.array2string(value, precision=4, threshold=20)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    text = repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def claim(condition: Any, sentence: str, **evidence: Any) -> None:
    """Fail the build with :class:`ClaimError` unless ``condition`` holds.

    Args:
        condition: the check, computed from the run's results (anything with a truth value; a numpy bool).
        sentence: the sentence of the prose that the check backs, as the reader sees it.
        evidence: the values the check looked at, shown in the error when it fails.
    """
    if not sentence or not isinstance(sentence, str):
        raise TypeError("claim() needs the sentence it backs")
    if not bool(condition):
        shown = "; ".join(f"{k} = {_describe(v)}" for k, v in evidence.items()) or "no evidence given"
        raise ClaimError(f"the run no longer supports the sentence {sentence!r} ({shown})")
    _MADE.append(sentence)


def claims_made() -> list[str]:
    """The sentences checked so far in this process (one page's kernel)."""
    return list(_MADE)


def glue(name: str, value: Any) -> None:
    """Make ``value`` available to the prose as ``{glue:text}`name``` (myst-nb), without displaying it.

    A numpy scalar is glued as the Python number it holds: myst-nb formats ``{glue:text}`name:.2f``` from the
    value's text, and numpy 2 writes ``np.float64(0.5)``, which no format spec reads (the build would warn).
    Returns nothing, so that a ``glue(...)`` on the last line of a cell shows nothing either.
    """
    from myst_nb import glue as _glue

    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()  # numpy scalar or 0-d array -> float, int or bool
    _glue(name, value, display=False)


def markdown_table(header: list[str], rows: list[list[Any]], fmt: str = ".2f") -> str:
    """A Markdown table of a run's results, for ``display(Markdown(...))`` in the cell that computed them.

    Args:
        header: the column titles.
        rows: one list per row, as long as ``header``; floats are formatted with ``fmt``, anything else
            with ``str``.
        fmt: the format of the floats (a :func:`format` spec).
    """
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row needs {len(header)} cells, one per column of {header}")

    def cell(value: Any) -> str:
        try:
            import numpy as np

            is_float = isinstance(value, (float, np.floating))
        except ImportError:  # pragma: no cover - numpy is a dependency
            is_float = isinstance(value, float)
        return format(value, fmt) if is_float else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
