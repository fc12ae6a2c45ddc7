"""Helpers for the graded assignments' tests.

The assignments ask students to write what course_lib already contains. :func:`forbid_calls_into` lets a
hidden test prove that an answer does its own work: it watches every Python call made while the answer runs
and fails if any of them executes code of a forbidden module (through an import, an alias, or a copy of the
function object rebound to other globals). :func:`python_steps` counts the Python steps of a call, so a test
can tell a loop over the examples of a batch from vectorised code, and :func:`stand_ins` lets a test replace
the other functions a student's answer calls with trusted ones while it runs (one bug, one question).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from typing import Any

from .judging import CALLS_REFERENCE

_OWN_FILES = frozenset({__file__, os.path.join(os.path.dirname(__file__), "checks.py")})


def _module_files(modules: tuple[str, ...]) -> tuple[str, ...]:
    files = []
    for name in modules:
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):  # a parent package that is not there (or a stub of it)
            continue
        if spec is None or spec.origin is None:
            continue
        origin = os.path.realpath(spec.origin)
        # a package forbids its whole folder, a module its file
        files.append(os.path.dirname(origin) + os.sep if origin.endswith("__init__.py") else origin)
    return tuple(files)


@contextmanager
def forbid_calls_into(*modules: str, fail: bool = True) -> Iterator[list[str]]:
    """Fail with ``AssertionError`` if code of any of ``modules`` runs inside the ``with`` block.

    Args:
        modules: dotted module or package names, e.g. ``"course_lib.feedforward"``.
        fail: False to only record the calls (``Test.own_work`` hands them to a check, judged like any other).

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
        if frame.f_code.co_filename in _OWN_FILES:
            return  # this watcher's own context-manager frames, and Test.own_work's that wraps it
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
    if called and fail:
        raise AssertionError(CALLS_REFERENCE + ", ".join(sorted(set(called))))


def python_steps(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """How many Python steps a call takes: lines run, Python calls and calls of builtins (numpy's included).

    A graded test compares the count at two batch sizes: vectorised code takes the same number of steps for
    any batch, while a Python loop over the examples (``for``, a comprehension, ``np.apply_along_axis``,
    ``np.vectorize``) takes at least one more per example. Exceptions of ``fn`` propagate; the tracing and
    profiling functions in place before the call are restored.

    Example::

        extra = (python_steps(f, x_big) - python_steps(f, x_small)) / (len(x_big) - len(x_small))
    """
    count = 0

    def trace(frame, event, arg):
        nonlocal count
        count += 1
        return trace

    def profile(frame, event, arg):
        nonlocal count
        if event == "c_call":
            count += 1

    previous_trace, previous_profile = sys.gettrace(), sys.getprofile()
    sys.settrace(trace)
    sys.setprofile(profile)
    try:
        fn(*args, **kwargs)
    finally:
        sys.setprofile(previous_profile)
        sys.settrace(previous_trace)
    return count


@contextmanager
def stand_ins(namespace: dict[str, Any], **functions: Callable[..., Any]) -> Iterator[None]:
    """Rebind names of ``namespace`` (a notebook's ``globals()``) for the duration of the block.

    A graded test checks one function: when the student's function calls another one the student wrote
    (``rnn_forward`` calling ``rnn_step_forward``), the test puts a trusted stand-in under that name while it
    runs, so a bug in the other function costs only that function's points. The old bindings are restored
    even when the block raises.
    """
    missing = object()
    saved = {name: namespace.get(name, missing) for name in functions}
    namespace.update(functions)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value


def steps_per_example(fn: Callable[..., Any], make_inputs: Callable[[int], tuple], small: int = 2,
                      large: int = 40) -> float:
    """Extra Python steps ``fn(*make_inputs(N))`` takes per extra example of the batch: 0 for vectorised code.

    ``make_inputs(N)`` returns the arguments for a batch of ``N`` examples. A Python loop over the examples
    costs at least one step per example, so a test can require a value well below 1 (say 0.5).
    """
    steps_small = python_steps(fn, *make_inputs(small))
    steps_large = python_steps(fn, *make_inputs(large))
    return (steps_large - steps_small) / (large - small)
