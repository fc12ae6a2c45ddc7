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

Hidden tests draw their inputs from :attr:`Test.rng`, seeded from an instructor secret when the grader sets
one (``RNN_COURSE_GRADING_KEY`` in the kernel, derived from ``RNN_COURSE_GRADING_SECRET``; see
:func:`grading_key`; the sandboxed grader passes only the key of the one notebook, :func:`scoped_key`), so the
published hidden tests reveal no expected value. Without a secret, fixed seeds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np

MIME = "application/x-course-check+json"
# what a stub of a reference module publishes when it is imported in the grader's sandbox (see blocked_import)
BLOCKED_MIME = "application/x-course-blocked+json"
BLOCKED_MESSAGE = "{module} is not available while your assignment is graded: answers must do their own work"
MODES = ("assert", "record", "reference")
MAX_RECORD_BYTES = 16 * 1024 * 1024
_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
           "float32", "float64", "complex64", "complex128"}
RULES = ("decreasing", "between", "finite", "shape")


class CheckError(ValueError):
    """A record that is not valid plain data (the grader scores the check as failed)."""


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
# plain data: encode in the kernel, decode in the trusted process


def encode(value: Any, _depth: int = 0) -> Any:
    """JSON-able plain data for ``value`` (arrays, tensors, numbers, strings, None, lists, tuples, dicts)."""
    if _depth > 8:
        return {"t": "other", "type": "nested too deeply"}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and type(value) in (int, float):
        return {"t": "num", "v": repr(value)}
    module = type(value).__module__ or ""
    if module.startswith("torch"):
        try:
            value = value.detach().cpu().numpy()
        except Exception:  # not a tensor (a module, a dtype...)
            return {"t": "other", "type": type(value).__qualname__}
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.dtype.name not in _DTYPES:
            return {"t": "other", "type": f"ndarray of {value.dtype}"}
        data = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
        return {"t": "nd", "dtype": value.dtype.name, "shape": list(value.shape),
                "b64": base64.b64encode(data).decode()}
    if isinstance(value, (list, tuple)):
        return {"t": type(value).__name__ if type(value) in (list, tuple) else "list",
                "items": [encode(v, _depth + 1) for v in value[:10000]]}
    if isinstance(value, dict):
        return {"t": "dict", "items": [[str(k), encode(v, _depth + 1)] for k, v in list(value.items())[:10000]]}
    return {"t": "other", "type": type(value).__qualname__}


def decode(data: Any, _depth: int = 0) -> Any:
    """The value :func:`encode` described; never executes anything. Raises :class:`CheckError` on bad data."""
    if _depth > 10:
        raise CheckError("nested too deeply")
    if data is None or isinstance(data, (bool, str)):
        return data
    if not isinstance(data, dict):
        raise CheckError(f"unexpected {type(data).__name__}")
    kind = data.get("t")
    if kind == "num":
        text = str(data.get("v"))
        try:
            return int(text)
        except ValueError:
            return float(text)  # float('nan') and float('inf') parse; nothing else is evaluated
    if kind == "nd":
        dtype, shape = str(data.get("dtype")), data.get("shape")
        if dtype not in _DTYPES or not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0
                                                                           for n in shape):
            raise CheckError("malformed array")
        raw = base64.b64decode(str(data.get("b64", "")), validate=True)
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if len(raw) != expected or len(raw) > MAX_RECORD_BYTES:
            raise CheckError("array data does not match its shape")
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)
    if kind in ("list", "tuple"):
        items = [decode(v, _depth + 1) for v in data.get("items", [])]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {str(k): decode(v, _depth + 1) for k, v in data.get("items", [])}
    if kind == "other":
        return Opaque(str(data.get("type", "?"))[:100])
    raise CheckError(f"unknown kind {kind!r}")


class Opaque:
    """A value the kernel could not hand back as plain data (only its type name travels)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


# ---------------------------------------------------------------------------------------------------------
# judging: the same code in assert mode (in the kernel) and in the grader's trusted process


def rel_error(a, b) -> float:
    """max |a - b| / max(1e-8, max(|a| + |b|)), the course's relative error (complex if either is complex)."""
    a, b = np.asarray(a), np.asarray(b)
    dtype = np.complex128 if "c" in (a.dtype.kind, b.dtype.kind) else np.float64
    a, b = a.astype(dtype), b.astype(dtype)
    return float(np.max(np.abs(a - b), initial=0.0) / max(1e-8, float(np.max(np.abs(a) + np.abs(b), initial=0.0))))


def _as_array(value):
    if isinstance(value, (list, tuple)):
        try:
            if _is_complex(value):  # float64 would drop the imaginary parts
                return np.asarray(value, dtype=np.complex128)
            return np.asarray(value, dtype=np.float64)
        except (ValueError, TypeError):
            return None
    if isinstance(value, (bool, int, float, np.ndarray, np.generic)):
        return np.asarray(value)
    return None


def _is_complex(value) -> bool:
    """Whether ``value`` (decoded plain data) holds complex numbers anywhere."""
    if isinstance(value, (complex, np.complexfloating)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "c"
    if isinstance(value, (list, tuple)):
        return any(_is_complex(v) for v in value)
    if isinstance(value, dict):
        return any(_is_complex(v) for v in value.values())
    return False


COMPLEX = "has complex values where real numbers are expected (a complex number or dtype somewhere, e.g. " \
          "np.emath, np.fft or a literal like 1j?)"


def _type_name(value) -> str:
    if isinstance(value, Opaque):
        return value.type_name
    return type(value).__name__


def _diagnose_array(a: np.ndarray, e: np.ndarray, tol: float, hints: dict[str, Any]) -> str:
    if a.shape != e.shape:
        if a.shape == e.shape[::-1] and a.ndim >= 2:
            return f"has shape {a.shape} where {e.shape} is expected: transposed?"
        if a.size == e.size:
            return f"has shape {a.shape} where {e.shape} is expected (the right number of entries, arranged " \
                   "differently: check which axis is which)"
        return f"has shape {a.shape} where {e.shape} is expected"
    if e.dtype.kind == "f" and a.dtype.kind in "biu":
        return f"has dtype {a.dtype} where floating point values are expected"
    if a.dtype.kind not in "biufc":
        return f"is not numeric ({a.dtype})"
    if a.dtype.kind == "c" and e.dtype.kind != "c":
        return COMPLEX
    cplx = e.dtype.kind == "c"
    af, ef = (a.astype(np.complex128), e.astype(np.complex128)) if cplx else (a.astype(np.float64),
                                                                             e.astype(np.float64))
    if not np.all(np.isfinite(af)) and np.all(np.isfinite(ef)):
        return "contains nan or inf where the expected values are all finite (an overflow, e.g. exp of " \
               "large numbers, or a division by zero?)"
    for message, wrong in hints.items():
        wrong = _as_array(wrong)
        if wrong is not None and wrong.shape == a.shape and rel_error(af, wrong) <= tol \
                and rel_error(wrong, ef) > tol:
            return message
    if not np.any(af) and np.any(ef):
        return "is all zeros"
    denominator = 0.0 if cplx else float(np.sum(ef * ef))
    if denominator > 0 and a.size > 1 and np.all(np.isfinite(af)):  # one number is always a multiple of another
        c = float(np.sum(af * ef)) / denominator
        if abs(c) > 1e-12 and rel_error(af, c * ef) <= max(tol, 1e-9) and abs(c - 1) > 1e-6:
            if abs(c + 1) < 1e-6:
                return "has the right magnitude but the opposite sign"
            return f"is {c:.4g} times the expected value everywhere: a missing or extra factor " \
                   "(a mean instead of a sum, a scale forgotten or applied twice?)"
    wrong = ~np.isclose(af, ef, rtol=max(tol, 1e-12), atol=max(tol, 1e-12) * float(np.max(np.abs(ef), initial=1)))
    share = float(np.mean(wrong)) if wrong.size else 0.0
    text = f"differs from the expected values (relative error {rel_error(af, ef):.1e}, allowed {tol:.0e}"
    if 0 < share < 1:
        text += f"; {share:.0%} of the entries are off"
        if a.ndim >= 2:
            rows = np.flatnonzero(wrong.reshape(a.shape[0], -1).any(axis=1))
            cols = np.flatnonzero(wrong.reshape(a.shape[0], a.shape[1], -1).any(axis=(0, 2)))
            if len(cols) < a.shape[1]:
                text += f", along axis 1 at positions {_few(cols)}"
            elif len(rows) < a.shape[0]:
                text += f", in rows {_few(rows)}"
    return text + ")"


def _few(indices) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:6])
    return shown + (", ..." if len(indices) > 6 else "")


def _judge_close(value, expected, tol: float, hints: dict[str, Any]) -> str | None:
    if isinstance(expected, (list, tuple)) and not isinstance(_as_array(expected), np.ndarray):
        if not isinstance(value, (list, tuple)) or len(value) != len(expected):
            return f"should be a sequence of {len(expected)} values, got {_type_name(value)}" + \
                (f" of length {len(value)}" if isinstance(value, (list, tuple)) else "")
        for i, (v, e) in enumerate(zip(value, expected, strict=True)):
            problem = _judge_close(v, e, tol, {})
            if problem:
                return f"item {i} {problem}"
        return None
    e = _as_array(expected)
    if value is None:
        return "is None: did the function forget to return its result?"
    a = _as_array(value)
    if a is None:
        return f"is a {_type_name(value)} where an array or number is expected"
    if e is None:
        return "cannot be compared (the reference is not numeric)"
    if a.dtype.kind == "c" and e.dtype.kind != "c":  # astype(float64) would drop the imaginary part
        return COMPLEX
    if a.shape == e.shape and a.dtype.kind in "biufc" and e.dtype.kind in "biufc":
        dtype = np.complex128 if e.dtype.kind == "c" else np.float64
        af, ef = a.astype(dtype), e.astype(dtype)
        finite_match = np.array_equal(np.isfinite(af), np.isfinite(ef))
        if finite_match and rel_error(np.nan_to_num(af), np.nan_to_num(ef)) <= tol and \
                not (e.dtype.kind == "f" and a.dtype.kind in "biu"):
            return None
    return _diagnose_array(a, e, tol, hints)


def _equal(value, expected) -> bool:
    if isinstance(expected, np.ndarray) or isinstance(value, np.ndarray):
        a, e = _as_array(value), _as_array(expected)
        return a is not None and e is not None and a.shape == e.shape and bool(np.array_equal(a, e))
    if isinstance(expected, (list, tuple)):
        return isinstance(value, (list, tuple)) and len(value) == len(expected) and \
            all(_equal(v, e) for v, e in zip(value, expected, strict=True))
    if isinstance(expected, dict):
        return isinstance(value, dict) and value.keys() == expected.keys() and \
            all(_equal(value[k], expected[k]) for k in expected)
    if isinstance(value, Opaque) or isinstance(expected, Opaque):
        return False
    return type(value) is type(expected) and value == expected or (
        isinstance(value, (int, float)) and isinstance(expected, (int, float)) and
        not isinstance(value, bool) and value == expected)


def _judge_rule(value, rule: str, params: dict) -> str | None:
    a = _as_array(value)
    if rule == "shape":
        shape = tuple(params["shape"])
        return None if a is not None and a.shape == shape else \
            f"has shape {None if a is None else a.shape} where {shape} is expected"
    if a is not None and a.dtype.kind == "c":
        return COMPLEX
    if a is None or a.dtype.kind not in "biuf":
        return f"is a {_type_name(value)} where numbers are expected"
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        return "contains nan or inf"
    if rule == "finite":
        return None
    if rule == "between":
        lo, hi = params.get("lo", -np.inf), params.get("hi", np.inf)
        return None if np.all((a >= lo) & (a <= hi)) else f"has values outside [{lo:g}, {hi:g}]"
    if rule == "decreasing":
        if a.ndim != 1 or len(a) < 2:
            return "should be a sequence of at least two numbers"
        factor = params.get("factor", 1.0)
        return None if a[-1] < factor * a[0] else \
            f"does not decrease enough: the last value is {a[-1] / a[0]:.3g} times the first " \
            f"(at most {factor:g} expected)"
    raise CheckError(f"unknown rule {rule!r}")


def judge(spec: dict, value: Any, expected: Any = None, mistakes: dict[str, Any] | None = None) -> str | None:
    """None if ``value`` passes the check described by ``spec``, else the message for the student.

    Args:
        spec: ``{"kind": "close"|"equal"|"rule", "tol", "rule", "params", "what", "hidden"}`` as written by
            :class:`Test` (in the grader: the *reference* run's spec, never the student's).
        value: the student's value (decoded plain data).
        expected: the reference value (``close``/``equal``).
        mistakes: message -> the value a known mistake produces, for ``close`` checks.
    """
    kind = spec.get("kind")
    if isinstance(value, Opaque):
        return f"is a {value.type_name}, which the grader cannot read back as numbers or text"
    if kind == "close":
        problem = _judge_close(value, expected, float(spec.get("tol", 1e-7)), mistakes or {})
    elif kind == "equal" and _is_complex(value) and not _is_complex(expected):
        problem = COMPLEX
    elif kind == "equal":
        problem = None if _equal(value, expected) else (
            f"is {value!r} where another value is expected" if not spec.get("hidden") and
            isinstance(value, (int, str, bool)) and len(repr(value)) < 60 else "is not the expected value")
        if problem and mistakes:
            problem = next((m for m, w in mistakes.items() if _equal(value, w)), problem)
    elif kind == "rule":
        problem = _judge_rule(value, spec.get("rule", ""), spec.get("params") or {})
    else:
        raise CheckError(f"unknown check kind {kind!r}")
    return problem


def message(test: str, key: str, spec: dict, problem: str) -> str:
    """The sentence a failed check shows: what was checked, and the diagnosis (never the expected value)."""
    what = spec.get("what") or key
    where = "hidden test" if spec.get("hidden") else "test"
    return f"{where} {test}, {what}: {key} {problem}"


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
        """In ``assert`` mode, fail if the block calls code of ``modules`` (course_lib's references).

        In the grader's sandbox those modules are not installed at all, so nothing needs watching there.
        """
        if self.mode != "assert" or not modules:
            with nullcontext():
                yield
            return
        from .testing import forbid_calls_into

        with forbid_calls_into(*modules):
            yield

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


def records_of(outputs: list[dict]) -> list[dict]:
    """The check records among a cell's outputs (display_data with :data:`MIME`), in order."""
    found = []
    for output in outputs:
        data = output.get("data") if isinstance(output, dict) else None
        if output.get("output_type") == "display_data" and isinstance(data, dict) and MIME in data:
            found.append(data[MIME])
    return found


def judge_cell(reference: list[dict], student: list[dict]) -> list[str]:
    """The problems of one test cell: every reference check must have exactly one passing student record.

    Args:
        reference: the records the source notebook published in this cell (``reference`` mode).
        student: the records the submission published in the same cell (``record`` mode).

    Returns:
        one message per failed check (empty: the cell passes). Never raises on malformed student data.
    """
    by_key: dict[tuple[str, str], list] = {}
    for record in student:
        if isinstance(record, dict):
            by_key.setdefault((str(record.get("test")), str(record.get("key"))), []).append(record.get("value"))
    problems = []
    for ref in reference:
        test, key, spec = ref["test"], ref["key"], ref["spec"]
        values = by_key.get((test, key), [])
        if not values:
            problems.append(message(test, key, spec, "was never checked: the test stopped before it "
                                                     "(an error above, or the cell did not run to its end)"))
            continue
        if len(values) > 1:
            problems.append(message(test, key, spec, "was handed back more than once"))
            continue
        try:
            value = decode(values[0])
            expected = decode(ref.get("value")) if spec["kind"] != "rule" else None
            mistakes = {m: decode(w) for m, w in (ref.get("mistakes") or {}).items()}
            problem = judge(spec, value, expected, mistakes)
        except (CheckError, ValueError, TypeError, KeyError, OverflowError) as error:
            problem = f"could not be read back ({type(error).__name__})"
        if problem:
            problems.append(message(test, key, spec, problem))
    return problems

