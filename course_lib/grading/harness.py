"""The kernel side of the grader: runs each graded test cell and reports its verdict on a signed channel.

This module is imported inside the student's kernel (in the sandbox) by the very first cell the runner
executes, before any student code. :func:`install` reads a one-time HMAC key from a file that it then deletes,
and puts one function, ``__course_grading__``, in the user namespace. The runner sends every instructor cell
as ``__course_grading__(<kind>, <index>, <source>)`` instead of its source, so that:

* a graded test cell's verdict is its own ``try``/``except`` around the test code, not what IPython, the
  traceback machinery, ``sys.excepthook``, ``sys.stderr`` or the kernel's ``execute_reply`` say (all of which
  student code can patch): the wrapper publishes ``{"cell", "status", "ename", "result"}`` signed with the key,
  and the trusted parent accepts a pass only with a valid signature for that cell of that run;
* names that instructor cells bind to modules, functions and classes (``np``, ``rel_error``...) are put back
  before each test, so a solution cell that rebinds them cannot weaken the tests;
* the test's environment is checked after each test: builtins, ``sys.modules`` entries and the callables of
  the assertion modules (``numpy.testing``, ``torch.testing``, ``course_lib.testing``) must be the objects seen
  before any student code ran, and no trace or profile function may be left installed; otherwise the verdict
  is ``tampered``.

Limits (see the package docstring): the tests call student code in this same process, so code written to
attack this harness (finding the key's HMAC object through introspection, skipping lines with a trace function
that removes itself) can still forge a verdict; the sandbox confines such code, but only tests that compare
results in another process would make the verdict fully independent of it.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import hmac
import linecache
import os
import sys

MIME = "application/x-course-grading+json"
# modules whose callables the tests rely on to fail; imported before student code runs when available
WATCHED = ("numpy.testing", "torch.testing", "course_lib.testing", "unittest")
_KINDS = ("test", "instructor")
# builtins that IPython/ipykernel rebind on every request (stdin forwarding, last results)
REBOUND_BY_KERNEL = frozenset({"input", "raw_input", "_", "__", "___"})


FIELDS = ("run", "seq", "cell", "sha256", "status", "ename", "result", "problems", "restored")


def message(payload: dict, _str=str, _join="\x1f".join, _sub="\x1e".join) -> bytes:
    """The bytes that are signed: the payload's fields in a fixed order (no json, whose encoder is patchable)."""
    parts = []
    for field in FIELDS:
        value = payload[field]
        parts.append(_sub(value) if field in ("problems", "restored") else ("" if value is None else _str(value)))
    return _join(parts).encode()


def sign(key: bytes, payload: dict) -> str:
    """Hex HMAC-SHA256 of a verdict payload, as the parent computes it to check the harness's signature."""
    return hmac.new(key, message(payload), hashlib.sha256).hexdigest()


def _snapshot_module(name: str):
    module = sys.modules.get(name)
    if module is None:
        return None
    return module, {k: v for k, v in vars(module).items() if callable(v)}


def install(key_file: str, run_id: str, student_names: list[str]) -> None:
    """Install ``__course_grading__`` in the IPython user namespace (call once, before any student code)."""
    import _hashlib  # the C implementation: its HMAC type cannot be monkeypatched
    import importlib

    from IPython import get_ipython
    from IPython.core.inputtransformer2 import TransformerManager
    from IPython.display import publish_display_data

    with open(key_file, "rb") as f:
        mac = _hashlib.hmac_new(f.read(), digestmod="sha256")
    os.unlink(key_file)
    shell = get_ipython()
    ns = shell.user_ns
    protected: dict[str, object] = {}
    student = frozenset(student_names)
    for name in WATCHED:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    builtins_snapshot = dict(vars(builtins))
    modules = {name: snap for name in WATCHED if (snap := _snapshot_module(name)) is not None}
    parents = {name: sys.modules.get(name.rpartition(".")[0]) for name in modules}
    # private references, taken before any student code can replace the originals
    _exec, _eval, _compile, _isinstance, _type, _callable = exec, eval, compile, isinstance, type, callable
    _gettrace, _getprofile, _settrace, _setprofile = sys.gettrace, sys.getprofile, sys.settrace, sys.setprofile
    _sha256, _repr, _sorted, _publish, _ast_flag = hashlib.sha256, repr, sorted, publish_display_data, ast.PyCF_ONLY_AST
    _vars, _getattr, _modules, _message = vars, getattr, sys.modules, message
    _linecache = linecache.cache
    _transform = TransformerManager().transform_cell  # not the shell's, whose transformers students can extend
    state = {"seq": 0, "running": False}

    def tampering() -> list[str]:
        found = []
        now = _vars(builtins)
        if sys.modules is not _modules:
            found.append("sys.modules replaced")
        for k, v in builtins_snapshot.items():
            if now.get(k, None) is not v and k not in REBOUND_BY_KERNEL:
                found.append(f"builtins.{k} replaced")
        for name, (module, funcs) in modules.items():
            if _modules.get(name) is not module:
                found.append(f"sys.modules[{name!r}] replaced")
            parent = parents[name]
            if parent is not None and _getattr(parent, name.rpartition(".")[2], None) is not module:
                found.append(f"{name} rebound on its package")
            current = _vars(module)
            for k, v in funcs.items():
                if current.get(k, None) is not v:
                    found.append(f"{name}.{k} replaced")
        if _gettrace() is not None:
            found.append("a trace function was left installed (sys.settrace)")
        if _getprofile() is not None:
            found.append("a profile function was left installed (sys.setprofile)")
        return found

    def protect(before: dict[str, int]) -> None:
        for k, v in list(ns.items()):
            if k in student or k.startswith("_") or before.get(k) == id(v):
                continue
            if _isinstance(v, _type(sys)) or _isinstance(v, _type) or _callable(v):
                protected[k] = v

    def __course_grading__(kind: str, index: int, source: str):
        __tracebackhide__ = True  # noqa: F841 (IPython hides this frame in tracebacks)
        if kind not in _KINDS or state["running"]:
            raise RuntimeError("__course_grading__ is the grader's; it cannot be called from a submission")
        state["running"] = True
        state["seq"] += 1
        seq = state["seq"]
        restored = []
        for k, v in protected.items():
            if ns.get(k, None) is not v:
                ns[k] = v
                restored.append(k)
        if kind == "test":
            _settrace(None)
            _setprofile(None)
        before = {k: id(v) for k, v in ns.items()}
        status, ename, result = "pass", None, None
        try:
            try:
                code = source
                tree = _compile(code, "<test>", "exec", _ast_flag)
            except SyntaxError:  # IPython syntax (magics): transform it like IPython would
                code = _transform(source)
                tree = _compile(code, "<test>", "exec", _ast_flag)
            filename = f"<graded cell {index}>"  # how feedback recognizes (and hides) the test's own frames
            _linecache[filename] = (len(code), None, code.splitlines(True), filename)
            last = tree.body.pop() if tree.body and _isinstance(tree.body[-1], ast.Expr) else None
            _exec(_compile(tree, filename, "exec"), ns)
            if last is not None:
                result = _eval(_compile(ast.Expression(last.value), filename, "eval"), ns)
        except BaseException as error:
            status, ename = "fail", _type(error).__name__
            raise
        finally:
            state["running"] = False
            if kind == "test":
                problems = tampering()
                if problems and status == "pass":
                    status = "tampered"
                payload = {"run": run_id, "seq": seq, "cell": index, "sha256": _sha256(source.encode()).hexdigest(),
                           "status": status, "ename": ename, "result": None if result is None else _repr(result),
                           "problems": problems[:20], "restored": _sorted(restored)}
                signer = mac.copy()
                signer.update(_message(payload))
                _publish({MIME: {"payload": payload, "mac": signer.hexdigest()}})
            protect(before)
        return result

    ns["__course_grading__"] = __course_grading__
