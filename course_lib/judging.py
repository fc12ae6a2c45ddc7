"""Judging the checks of graded test cells: plain data in, a verdict and a message out.

The other half of :mod:`course_lib.checks` (which re-exports these names): a check's value is :func:`encode`-d
as plain JSON data in the student's kernel and :func:`decode`-d in the grader's trusted process, which then
calls :func:`judge` (one check) or :func:`judge_cell` (a test cell's records against the reference run's).
``assert`` mode calls the same :func:`judge` in the kernel, so every mode says the same thing. Nothing here
runs student code or imports a reference.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import numpy as np

MIME = "application/x-course-check+json"
MAX_RECORD_BYTES = 16 * 1024 * 1024
_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
           "float32", "float64", "complex64", "complex128"}
RULES = ("decreasing", "between", "finite", "shape")
CALLS_REFERENCE = "this answer calls the course's reference implementation instead of doing the work itself: "


class CheckError(ValueError):
    """A record that is not valid plain data (the grader scores the check as failed)."""


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
    elif kind == "own_work":  # the calls into forbidden modules that the watcher saw (a list of names)
        calls = [str(c)[:200] for c in value[:20]] if isinstance(value, list) else ["(unreadable)"]
        problem = CALLS_REFERENCE + ", ".join(calls) if calls else None
    else:
        raise CheckError(f"unknown check kind {kind!r}")
    return problem


def names(problem: str, key: str) -> bool:
    """Whether the diagnosis ``problem`` opens with ``key`` as its subject ("db is...", "the loss is...",
    "h[:, t] holds..."; not "dbx is..." nor "is o * c")."""
    return bool(key) and re.match(rf"(?:the |this |these |its )?{re.escape(key)}(?![\w(])", problem) is not None


def message_head(test: str, key: str, spec: dict) -> str:
    """What a failed check's message starts with: the test, and what the check looked at (unless that is the
    key itself, said next)."""
    what = spec.get("what") or key
    where = "hidden test" if spec.get("hidden") else "test"
    return f"{where} {test}: " if what == key else f"{where} {test}, {what}: "


def message(test: str, key: str, spec: dict, problem: str) -> str:
    """The sentence a failed check shows: what was checked, and the diagnosis (never the expected value).

    ``"test rnn_step_backward, dWh of one step: dWh differs ..."``; the key is said once: not twice where the
    description is the key itself, and not before a diagnosis (a catalogue's hint) that says it already
    ("dWh is the transpose ...", "the loss is N times too large").
    """
    subject = "" if names(problem, key) or spec.get("kind") == "own_work" else f"{key} "
    return f"{message_head(test, key, spec)}{subject}{problem}"


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
