"""What runs on a Slurm node: one array task of :class:`.slurm.SlurmBackend`, one submission's sandboxed run.

``python -I -m course_lib.grading.slurm_task RUN BATCH`` (the array task the backend's sbatch script runs;
trusted code from the same shared installation, with the grader's rights). It copies its task's working copy
to a local temporary folder, builds the *same* sandbox command as the local pool (:func:`.sandbox.command`:
the node's cgroups, a uid of its own, the restricted course_lib), feeds the job on stdin, applies the same
wall-clock limit, caps the runner's output at :func:`result_cap`, and writes it (plain JSON, never executed)
with a status file. A node without the sandbox fails its task with the reason; it never runs a submission
unsandboxed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from . import sandbox
from .limits import Limits

SLOT_BASE, SLOTS = 100, 4000  # a node's sandbox uid: 61000 + 100 + (job id mod 4000), see task()


def result_cap(limits: Limits) -> int:
    """Most bytes a task's result may have: twice the output budget (outputs and their records) plus 8 MiB."""
    return 2 * int(limits.output * 1024 * 1024) + (8 << 20)


def _write_atomic(path: str, data: bytes) -> None:
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _run_capped(cmd: list[str], env, stdin: bytes, out_path: str, timeout: float,
                cap: int) -> tuple[int | None, str]:
    """Run ``cmd`` with ``stdin``, its stdout into ``out_path``; (exit code or None on timeout, stderr tail)."""
    with open(out_path, "wb") as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env,
                                start_new_session=True)

        def feed():
            try:
                proc.stdin.write(stdin)
                proc.stdin.close()
            except OSError:
                pass

        threading.Thread(target=feed, daemon=True).start()
        deadline = time.monotonic() + timeout
        code = None
        while time.monotonic() < deadline:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if os.fstat(out.fileno()).st_size > cap:
                    break
        if code is None:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            proc.wait()
        err.seek(0)
        tail = err.read()[-4000:].decode(errors="replace").strip().splitlines()[-3:]
        return code, " | ".join(tail)[:400]


def task(run_dir: str, batch: str) -> int:
    """The array task: run one prepared notebook in this node's sandbox; write its result and status."""
    index = int(os.environ["SLURM_ARRAY_TASK_ID"])
    with open(os.path.join(run_dir, "batches", f"{os.path.basename(batch)}.json")) as f:
        seq = int(json.load(f)[index])
    folder = os.path.join(run_dir, "tasks", str(seq))
    failure = None
    start = time.monotonic()
    local = tempfile.mkdtemp(prefix="grading-slurm-")
    try:
        with open(os.path.join(folder, "meta.json")) as f:
            meta = json.load(f)
        with open(os.path.join(folder, "job.json"), "rb") as f:
            job = f.read()
        limits = Limits(**meta["limits"])
        ok, why = sandbox.available()
        if not ok:
            failure = f"no sandbox on node {socket.gethostname()}: {why}"
        else:
            # a uid of its own on this node (61000 + slot): array tasks side by side on one node never share it
            slot = SLOT_BASE + int(os.environ.get("SLURM_JOB_ID", "0")) % SLOTS
            workdir = os.path.join(local, "workdir")
            shutil.copytree(os.path.join(folder, "workdir"), workdir, symlinks=True)
            sandbox.prepare_workdir(workdir, slot)
            cmd, env = sandbox.command(workdir, limits, slot=slot, sandbox=True, course_lib_dir=meta["course_lib"])
            out_path = os.path.join(folder, ".result.part")
            code, tail = _run_capped(cmd, env, job, out_path, limits.wall, result_cap(limits))
            size = os.path.getsize(out_path)
            if size > result_cap(limits):
                failure = f"the grading process returned more than {result_cap(limits)} bytes"
            elif code is None:
                failure = f"ran past the wall-clock limit of {limits.wall:g} s"
            elif code != 0:
                failure = f"the grading process exited with {code}: {tail}"
            else:
                os.replace(out_path, os.path.join(folder, "result.json"))
    except Exception as error:  # reported as this submission's problem, never as a pass
        failure = f"the Slurm task failed on {socket.gethostname()}: {type(error).__name__}: {error}"[:500]
    finally:
        shutil.rmtree(local, ignore_errors=True)
    status = {"failure": failure, "seconds": round(time.monotonic() - start, 3), "node": socket.gethostname()}
    _write_atomic(os.path.join(run_dir, "done", f"{seq}.json"), json.dumps(status).encode())
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -I -m course_lib.grading.slurm_task RUN_DIR BATCH (run by Slurm, not by hand)")
    sys.exit(task(sys.argv[1], sys.argv[2]))
