"""Executes one prepared notebook in a fresh kernel: the only part of grading that runs inside the sandbox.

``python -I -m course_lib.grading.runner`` reads a job (JSON) on stdin: the code cells to run, each marked
``student``, ``instructor`` or ``test``, the limits, and the kernel's check mode (``record`` for a submission,
``reference`` for the source notebook; see :mod:`course_lib.checks`). It writes the result (JSON) on stdout:
for each cell, its outputs, execution count, how its execution ended (``ok``, ``timeout``, ``dead``,
``output_limit``, ``not_run``), the check records it published (plain data) and the imports of stubbed
reference modules it reported (``blocked``; :func:`course_lib.checks.blocked_import`). The runner never sees the
gradebook, the reference values or a verdict: the trusted parent compares and scores.

Of the kernel's messages, only what a notebook holds reaches nbclient, rebuilt with valid types
(:mod:`.outputs`): output messages, counted against the output budget; an ``execute_input``'s execution
count if it is a small int (its code is dropped); status and clear_output. Comm (widget) messages and every
other type are dropped. Before each graded test cell, a silent request rebinds the names the instructor's
cells import from course_lib (the job's ``restore`` code) from freshly imported modules, so a test cell
calls course_lib's helpers, not a student's rebinding of their names.

The notebook (with its hidden tests) reaches this process through a pipe and never touches the sandbox's
disk; the runner makes itself non-dumpable, so the kernel (same uid) cannot read its memory or its stdout
through /proc; the kernel's own stdout and stderr go to /dev/null, and it starts with no file descriptor of
the runner's.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile

# jsonschema (via nbformat) imports rfc3987_syntax when installed, which builds a grammar for a whole second:
# per submission, that is a quarter of the grading overhead. The runner never validates IRIs: skip it.
sys.modules.setdefault("rfc3987_syntax", None)

from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellTimeoutError, DeadKernelError  # noqa: E402
from nbformat import NotebookNode  # noqa: E402
from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402

from course_lib.grading import outputs as clean  # noqa: E402  (standard library only)

# course_lib.checks.MIME, written out: importing course_lib.checks would import numpy into the runner (0.09 s
# per submission) for one string. A test checks that the two agree.
MIME = "application/x-course-check+json"
BLOCKED_MIME = "application/x-course-blocked+json"  # course_lib.checks.BLOCKED_MIME
OUTPUT_MESSAGES = ("stream", "display_data", "execute_result", "error", "update_display_data")

# the only variables a job may set for its kernel (the check mode and the derived key of hidden inputs)
KERNEL_ENV = ("RNN_COURSE_CHECKS", "RNN_COURSE_GRADING_KEY", "PYTHONPATH")

PR_SET_DUMPABLE = 4
ERROR_ON_TIMEOUT = {
    "ename": "CellTimeoutError",
    "evalue": "",
    "traceback": ["\x1b[0;31mCellTimeoutError\x1b[0m: No reply from kernel before timeout"],
}


def make_non_dumpable() -> None:
    """Forbid same-uid processes (the kernel) to ptrace this one or read its /proc/<pid>/mem and fd/."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass


class GradingClient(NotebookClient):
    """nbclient with an output budget: a flood of output kills the kernel instead of filling memory."""

    def __init__(self, *args, output_limit: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.output_limit = output_limit
        self.output_bytes = 0
        self.flooded = False

    def process_message(self, msg, cell, cell_index):
        """nbclient's, on a rebuilt message: only the fields a notebook holds, valid, and within the budget."""
        msg_type, content = msg.get("msg_type"), msg.get("content")
        content = content if isinstance(content, dict) else {}
        if msg_type in OUTPUT_MESSAGES:
            self.output_bytes += len(json.dumps(content, default=str))
            if self.output_bytes > self.output_limit:
                if not self.flooded:
                    self.flooded = True
                    process = getattr(getattr(self.km, "provisioner", None), "process", None)
                    if process is not None:
                        process.kill()
                return None
            content = clean.message_content(msg_type, content)
        elif msg_type == "execute_input":  # the code is ours (not kept); the count must be a small int
            count = clean.execution_count(content.get("execution_count"))
            content = {} if count is None else {"execution_count": count}
        elif msg_type == "status":
            content = {"execution_state": str(content.get("execution_state"))}
        elif msg_type == "clear_output":
            content = {"wait": bool(content.get("wait"))}
        else:  # comm (widgets), debug events, anything else: nothing of a graded notebook
            return None
        return super().process_message({**msg, "content": content}, cell, cell_index)

    def on_cell_executed_hook(self, cell, execute_reply) -> None:
        """nbgrader's Execute.on_cell_executed: an error reply with no error output gets one (cosmetic here)."""
        if execute_reply and execute_reply["content"]["status"] == "error":
            content = execute_reply["content"]
            if not any(o.get("output_type") == "error" and o.get("ename") == content.get("ename")
                       for o in cell.outputs):
                cell.outputs.append(NotebookNode(output_type="error", ename=content.get("ename", ""),
                                                 evalue=content.get("evalue", ""),
                                                 traceback=content.get("traceback") or ["ERROR"]))


# What `python -m ipykernel_launcher` runs, without ipykernel's debugger: importing debugpy costs about 0.13 s
# of CPU per submission, and nobody attaches a debugger to a grading sandbox. The current folder stays first on
# sys.path, as with -m (where it is the absolute path; with -c it would be '').
KERNEL_LAUNCH = ("import os, sys; sys.path[0] = os.getcwd(); sys.modules['debugpy'] = None; "
                 "from ipykernel import kernelapp; kernelapp.launch_new_instance()")


def kernel_spec_dir(root: str, name: str) -> str:
    """A private kernelspec named like the notebook's, running this interpreter (the sandbox's venv)."""
    folder = os.path.join(root, "kernels", name)
    os.makedirs(folder)
    spec = {"argv": [sys.executable, "-c", KERNEL_LAUNCH, "-f", "{connection_file}"],
            "display_name": name, "language": "python"}
    with open(os.path.join(folder, "kernel.json"), "w") as f:
        json.dump(spec, f)
    return root


async def probe(client: GradingClient, timeout: float) -> bool:
    """True if the kernel answers a trivial request within ``timeout`` seconds (after an interrupt)."""
    msg_id = client.kc.execute("", silent=True, store_history=False)
    try:
        while True:
            reply = await asyncio.wait_for(client.kc.shell_channel.get_msg(timeout=timeout), timeout + 1)
            if reply["parent_header"].get("msg_id") == msg_id:
                return True
    except Exception:
        return False


async def run_silent(client: GradingClient, code: str, timeout: float) -> bool:
    """Run ``code`` silently (no history, no pre/post-run hooks, no outputs kept); True if it succeeded."""
    msg_id = client.kc.execute(code, silent=True, store_history=False)
    try:
        while True:
            reply = await asyncio.wait_for(client.kc.shell_channel.get_msg(timeout=timeout), timeout + 1)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"].get("status") == "ok"
    except Exception:
        return False


async def run_job(job: dict) -> dict:
    private = tempfile.mkdtemp(prefix="grading-")
    try:
        return await _run_job(job, private)
    finally:
        shutil.rmtree(private, ignore_errors=True)


async def _run_job(job: dict, private: str) -> dict:
    os.environ["JUPYTER_PATH"] = kernel_spec_dir(os.path.join(private, "jupyter"), job["kernel_name"])
    for name, value in (job.get("env") or {}).items():
        if name in KERNEL_ENV:
            os.environ[name] = str(value)

    results: dict[int, dict] = {}
    # numpy (and torch where installed) before any student code, so the first cell's limit is its own work
    setup = new_code_cell("import numpy, course_lib.checks", metadata={})
    nb = new_notebook(cells=[setup] + [new_code_cell(c["source"]) for c in job["cells"]])
    client = GradingClient(
        nb, output_limit=job["output_limit"], kernel_name=job["kernel_name"], timeout=job["cell_timeout"],
        startup_timeout=job["startup_timeout"], interrupt_on_timeout=True, error_on_timeout=ERROR_ON_TIMEOUT,
        allow_errors=True, iopub_timeout=30, raise_on_iopub_timeout=False, record_timing=False,
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
    )
    client.shutdown_kernel = "immediate"  # nothing to save: the sandbox is thrown away
    client.km = client.create_kernel_manager()
    stop_reason, language_info = None, None
    try:
        await client.async_start_new_kernel(cwd=job["workdir"], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await client.async_start_new_kernel_client()
        info = await client.async_wait_for_reply(client.kc.kernel_info())
        language_info = (info or {}).get("content", {}).get("language_info")
        client.timeout = int(job["startup_timeout"])  # imports (numpy, torch) before any student code
        await client.async_execute_cell(setup, 0, store_history=False)
        client.timeout = job["cell_timeout"]
        if any(o.get("output_type") == "error" for o in setup.outputs):
            stop_reason = "the kernel could not start its setup: " + "; ".join(
                f"{o['ename']}: {o['evalue']}" for o in setup.outputs if o.get("output_type") == "error")
        for position, spec in enumerate(job["cells"], start=1):
            cell = nb.cells[position]
            if stop_reason is not None:
                results[spec["index"]] = {"status": "not_run", "reason": stop_reason, "outputs": [], "records": []}
                continue
            status, reason = "ok", None
            try:
                if spec["kind"] == "test" and job.get("restore"):
                    await run_silent(client, job["restore"], job["cell_timeout"])
                reply_holder = {}

                async def on_executed(cell, cell_index, execute_reply, _holder=reply_holder):
                    _holder["reply"] = execute_reply

                client.on_cell_executed = on_executed
                await client.async_execute_cell(cell, position)
                client.on_cell_executed_hook(cell, reply_holder.get("reply"))
                timed_out = any(o.get("ename") == "CellTimeoutError" for o in cell.outputs
                                if o.get("output_type") == "error")
                if timed_out:
                    status, reason = "timeout", f"cell {spec['index']} ran past {job['cell_timeout']} s"
                    if not await probe(client, 10):
                        stop_reason = (f"the kernel ignored the interrupt after cell {spec['index']} timed out "
                                       "and was killed")
            except (DeadKernelError, CellTimeoutError, asyncio.CancelledError, RuntimeError) as error:
                if client.flooded:
                    status, reason = "output_limit", f"output exceeded {job['output_limit']} bytes"
                elif isinstance(error, CellTimeoutError):
                    status, reason = "timeout", f"cell {spec['index']}: {error}"
                else:
                    status, reason = "dead", f"the kernel died in cell {spec['index']}"
                stop_reason = reason
            if client.flooded and status == "ok":
                status, reason = "output_limit", f"output exceeded {job['output_limit']} bytes"
                stop_reason = reason
            records = [o["data"][MIME] for o in cell.outputs
                       if o.get("output_type") == "display_data" and MIME in o.get("data", {})]
            blocked = [o["data"][BLOCKED_MIME] for o in cell.outputs
                       if o.get("output_type") == "display_data" and BLOCKED_MIME in o.get("data", {})]
            outputs = [o for o in cell.outputs if not (o.get("output_type") == "display_data"
                                                        and {MIME, BLOCKED_MIME} & set(o.get("data", {})))]
            results[spec["index"]] = {"status": status, "reason": reason, "outputs": outputs, "records": records,
                                      "blocked": blocked,
                                      "execution_count": clean.execution_count(cell.get("execution_count"))}
    except Exception as error:  # the kernel did not start, or died between cells
        stop_reason = stop_reason or f"{type(error).__name__}: {error}"
        for spec in job["cells"]:
            results.setdefault(spec["index"], {"status": "not_run", "reason": stop_reason, "outputs": [],
                                               "records": []})
    finally:
        try:
            await client._async_cleanup_kernel()
        except Exception:
            pass
    return {"cells": {str(k): v for k, v in results.items()}, "stop_reason": stop_reason,
            "output_bytes": client.output_bytes, "language_info": language_info}


def main() -> int:
    make_non_dumpable()
    job = json.loads(sys.stdin.buffer.read())
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    result = asyncio.run(run_job(job))
    out = sys.stdout.buffer
    out.write(json.dumps(result, default=str).encode())
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
