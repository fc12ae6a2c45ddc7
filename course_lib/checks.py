"""Graded test cells that compute in the student's kernel and are judged from plain data.

Every graded test cell of the assignments is written with :class:`Test`. The cell calls the student's function
on inputs the test chooses and hands each result to a check, with the reference it must match::

    t = Test("rnn_step_backward")                      # hidden=True for hidden tests
    x, dh = t.rng.standard_normal((4, 3)), t.rng.standard_normal((4, 5))
    cache = make_cache(x, ...)                          # built by the test, never by another student function
    dx, *_ = rnn_step_backward(dh, cache)
    t.close("dx", dx, lambda: ref.rnn_step_backward(dh, cache)[0], what="dx of one step",
            mistakes={"did you forget the derivative of tanh?": lambda: dh @ Wx.T})

What a check does depends on the mode the kernel runs in (``RNN_COURSE_CHECKS``):

``assert`` (default: Jupyter, ``nbgrader autograde``/``validate``, ``python -m course_lib.check``)
    the reference is computed here (a callable is called; it may use course_lib) and the check raises
    ``AssertionError`` with a message that points at the likely mistake without showing the expected values.
``record`` (the course's sandboxed grader, on a student's submission)
    nothing is compared and nothing is raised: the value is published as plain data (numbers, arrays, strings;
    JSON, no pickle) under the MIME type :data:`MIME`. The reference callables are never called (the
    reference implementations are not even installed in that sandbox).
``reference`` (the grader, on the assignment's *source* notebook, in a sandbox of its own)
    the solution's value is published together with the check's specification (kind, tolerance, what it
    checks) and the values of the listed mistakes.

The grader's trusted process, which never runs student code, then calls :func:`judge` on each pair of records:
to pass, the student's kernel must hand back the right values; controlling everything inside that kernel
buys nothing else. :func:`judge` is also what ``assert`` mode uses, so both modes say the same thing.

The plain data (:func:`encode`, :func:`decode`) and the judging (:func:`judge`, :func:`judge_cell`,
:func:`message`) are in :mod:`course_lib.judging`, re-exported here.

Hidden tests draw their inputs from :attr:`Test.rng`, seeded from an instructor secret when the grader sets
one (``RNN_COURSE_GRADING_KEY`` in the kernel, derived from ``RNN_COURSE_GRADING_SECRET``; see
:func:`grading_key`; the sandboxed grader passes only the key of the one notebook, :func:`scoped_key`), so the
published hidden tests reveal no expected value. Without a secret, fixed seeds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

# The plain data and the judging live in course_lib.judging (the trusted parent's side); these names are part of
# this module's interface, as before the split.
from .judging import (  # noqa: F401
    CALLS_REFERENCE,
    COMPLEX,
    MAX_RECORD_BYTES,
    MIME,
    RULES,
    CheckError,
    Opaque,
    decode,
    encode,
    judge,
    judge_cell,
    message,
    message_head,
    names,
    records_of,
    rel_error,
)

# what a stub of a reference module publishes when it is imported in the grader's sandbox (see blocked_import)
BLOCKED_MIME = "application/x-course-blocked+json"
BLOCKED_MESSAGE = "{module} is not available while your assignment is graded: answers must do their own work"
MODES = ("assert", "record", "reference")
def mode() -> str:
    value = os.environ.get("RNN_COURSE_CHECKS", "assert")
    return value if value in MODES else "assert"


def grading_key(secret: str | None = None, student: str | None = None) -> str:
    """The hex key that seeds hidden tests: HMAC-SHA256(secret, student or "") or "" without a secret.

    ``secret`` defaults to ``RNN_COURSE_GRADING_SECRET``, ``student`` to ``RNN_COURSE_GRADING_STUDENT``.
    The grader passes only this derived key into the sandbox, never the secret itself.
    """
    secret = os.environ.get("RNN_COURSE_GRADING_SECRET", "") if secret is None else secret
    if not secret:
        return ""
    student = os.environ.get("RNN_COURSE_GRADING_STUDENT", "") if student is None else student
    return hmac.new(secret.encode(), student.encode(), hashlib.sha256).hexdigest()


def scoped_key(key: str, scope: str) -> str:
    """HMAC-SHA256(key, scope), or "" without a key: the key one notebook's kernel gets from the grader.

    The grader hands a kernel only the key of that notebook (``scope`` = ``"<assignment>/<notebook>"``), never
    the secret nor the student's (or class's) key: a kernel can print what it holds, and this key reveals the
    hidden inputs of that one notebook, which its functions are called with anyway.
    """
    return hmac.new(key.encode(), scope.encode(), hashlib.sha256).hexdigest() if key else ""


def _kernel_key() -> str:
    return os.environ.get("RNN_COURSE_GRADING_KEY") or grading_key()


def blocked_import(module: str) -> str:
    """The message of a stubbed reference module's ImportError; in a kernel, also publish the attempt.

    The stubs of the grader's restricted course_lib call this as they raise, so an import of a reference
    module is reported (as data under :data:`BLOCKED_MIME`, which the grader reads from the cell's outputs)
    even when the answer builds the module's name at run time or catches the ImportError.
    """
    text = BLOCKED_MESSAGE.format(module=module)
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is not None and getattr(shell, "display_pub", None) is not None:
        try:
            shell.display_pub.publish({BLOCKED_MIME: {"module": str(module)[:200]}}, metadata={})
        except Exception:
            pass
    return text


# ---------------------------------------------------------------------------------------------------------
# the test-cell side


def _evaluate(expected):
    return expected() if callable(expected) else expected


class Test:
    """One graded test (a cell, or a part of one): its inputs' random generator and its checks.

    Args:
        name: unique within the assignment (it names the test in messages and seeds the hidden inputs).
        hidden: True for hidden tests: inputs are drawn from the instructor's secret when one is set.
        seed: the fixed seed of the inputs (visible tests, or hidden tests without a secret).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, name: str, hidden: bool = False, seed: int = 0):
        self.name, self.hidden, self.seed = str(name), bool(hidden), int(seed)
        key = _kernel_key() if hidden else ""
        if key:
            digest = hashlib.sha256(f"{key}\0{self.name}\0{self.seed}".encode()).digest()
            self.rng = np.random.default_rng(list(np.frombuffer(digest, dtype="<u4")))
        else:
            self.rng = np.random.default_rng(self.seed)
        self.mode = mode()
        self.keys: set[str] = set()
        self._own_work = 0  # own_work blocks so far (each is a check of its own)

    # -- checks ------------------------------------------------------------------------------------------
    def close(self, key: str, value: Any, expected: Any, *, tol: float = 1e-7, what: str | None = None,
              mistakes: dict[str, Any] | None = None) -> None:
        """``value`` must match ``expected`` within the course's relative error ``tol``.

        ``expected`` and the values of ``mistakes`` (message -> what that mistake returns) may be callables:
        they are only called where a reference is needed (never in a student's sandboxed kernel).
        """
        self._check(key, value, {"kind": "close", "tol": float(tol)}, expected, mistakes, what)

    def equal(self, key: str, value: Any, expected: Any, *, what: str | None = None,
              mistakes: dict[str, Any] | None = None) -> None:
        """``value`` must equal ``expected`` exactly (integers, strings, lists, integer arrays)."""
        self._check(key, value, {"kind": "equal"}, expected, mistakes, what)

    def rule(self, key: str, value: Any, rule: str, *, what: str | None = None, **params: Any) -> None:
        """``value`` must satisfy a named property (no reference value): one of :data:`RULES`.

        ``decreasing`` (``factor``: last < factor * first), ``between`` (``lo``, ``hi``), ``finite``,
        ``shape`` (``shape``).
        """
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; choose from {RULES}")
        self._check(key, value, {"kind": "rule", "rule": rule, "params": params}, None, None, what)

    @contextmanager
    def own_work(self, *modules: str) -> Iterator[None]:
        """A check that the block calls no code of ``modules`` (course_lib's references, torch).

        The calls the watcher (:func:`course_lib.testing.forbid_calls_into`) saw are handed to a check like any
        value, so every mode judges them the same way: ``assert`` raises, ``record`` publishes them for the
        grader's parent to judge (the reference run publishes none). The watcher runs in the student's kernel:
        it stops an answer that calls torch or a reference, not a submission that disables the watcher.
        """
        if not modules:
            yield
            return
        from .testing import forbid_calls_into

        self._own_work += 1
        with forbid_calls_into(*modules, fail=False) as called:
            yield
        self._check(f"own_work_{self._own_work}", sorted(set(called)), {"kind": "own_work"}, [], None,
                    f"the answer's own work (no calls into {', '.join(modules)})")

    # -- machinery -----------------------------------------------------------------------------------------
    def _check(self, key, value, spec, expected, mistakes, what) -> None:
        key = str(key)
        if key in self.keys:
            raise ValueError(f"test {self.name} checks {key!r} twice: give each check its own key")
        self.keys.add(key)
        spec = dict(spec, what=what or key, hidden=self.hidden)
        if self.mode == "record":
            self._publish({"test": self.name, "key": key, "value": encode(value)})
            return
        if self.mode == "reference":
            reference = {"test": self.name, "key": key, "spec": spec, "value": encode(value),
                         "mistakes": {m: encode(_evaluate(w)) for m, w in (mistakes or {}).items()}}
            if expected is not None:
                reference["expected"] = encode(_evaluate(expected))
            self._publish(reference)
            return
        reference = _evaluate(expected) if spec["kind"] != "rule" else None
        problem = judge(spec, decode(encode(value)), decode(encode(reference)),
                        {m: decode(encode(_evaluate(w))) for m, w in (mistakes or {}).items()})
        if problem:
            raise AssertionError(message(self.name, key, spec, problem))

    @staticmethod
    def _publish(record: dict) -> None:
        from IPython.display import publish_display_data

        text = json.dumps(record, allow_nan=False)
        if len(text) > MAX_RECORD_BYTES:
            text = json.dumps({"test": record["test"], "key": record["key"],
                               "value": {"t": "other", "type": "value too large to hand back"}})
        publish_display_data({MIME: json.loads(text)})


class _LazyModule:
    """A module imported on first use: references in test cells, never touched in a student's sandbox."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        import importlib

        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<reference {self._name} (imported on first use)>"


def reference(module: str) -> _LazyModule:
    """``ref = reference("course_lib.rnn")`` in a setup cell; ``lambda: ref.rnn_forward(...)`` in checks.

    The module is imported only when a reference is computed (``assert`` mode, or the grader's reference run),
    so setup cells stay runnable in the sandbox where course_lib's solutions are not installed.
    """
    return _LazyModule(module)
