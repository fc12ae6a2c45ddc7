"""Helpers for the graded assignments' tests.

The assignments ask students to write what course_lib already contains. :func:`forbid_calls_into` lets a
hidden test prove that an answer does its own work: it watches every Python call made while the answer runs
and fails if any of them executes code of a forbidden module (through an import, an alias, or a copy of the
function object rebound to other globals).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec


def _module_files(modules: tuple[str, ...]) -> tuple[str, ...]:
    files = []
    for name in modules:
        spec = find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = os.path.realpath(spec.origin)
        # a package forbids its whole folder, a module its file
        files.append(os.path.dirname(origin) + os.sep if origin.endswith("__init__.py") else origin)
    return tuple(files)


@contextmanager
def forbid_calls_into(*modules: str) -> Iterator[list[str]]:
    """Fail with ``AssertionError`` if code of any of ``modules`` runs inside the ``with`` block.

    Args:
        modules: dotted module or package names, e.g. ``"course_lib.feedforward"``.

    Yields:
        the list of offending calls found so far (``module.function``), filled while the block runs.

    Example::

        with forbid_calls_into("course_lib.feedforward"):
            out, cache = affine_forward(x, W, b)   # the student's version
    """
    files = _module_files(modules)
    called: list[str] = []

    def watch(frame, event, arg):
        if event != "call":
            return
        name = frame.f_globals.get("__name__", "") or ""
        if frame.f_code.co_filename == __file__:
            return  # this watcher's own context-manager frames
        path = os.path.realpath(frame.f_code.co_filename)
        by_name = any(name == m or name.startswith(m + ".") for m in modules)
        by_file = any(path == f or (f.endswith(os.sep) and path.startswith(f)) for f in files)
        if by_name or by_file:
            called.append(f"{name}.{frame.f_code.co_qualname}")

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        yield called
    finally:
        sys.setprofile(previous)
    if called:
        unique = sorted(set(called))
        raise AssertionError(
            "this answer calls the course's reference implementation instead of doing the work itself: "
            + ", ".join(unique)
        )
