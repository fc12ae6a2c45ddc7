"""Grading past one host on Slurm: each submission's untrusted run is a task of a Slurm job array.

``python -m course_lib.grading autograde ASSIGNMENT --backend slurm [--slurm-partition P] [--slurm-args "..."]``
keeps every trusted step in the grading process (sanitising against the gradebook, the reference run, the
verdicts, the gradebook and ``autograded/``, exactly as with the local pool) and hands only the sandboxed run
of each prepared notebook to Slurm:

* **Parent** (:class:`SlurmBackend`, the pool's backend hook). A worker thread of the pool that would start the
  sandbox instead writes the job (the runner's JSON) and the working copy into a task folder of a *shared*
  folder (``--slurm-dir``, default ``<course>/.grading/slurm``; mode 0700: it holds the hidden tests) and waits.
  A dispatcher thread gathers the waiting tasks (one second with no new one, or 1,000) into one ``sbatch
  --array`` and polls: a task is done when its status file appears; ``squeue`` (every few seconds; ``sacct``
  for a task Slurm no longer lists, where accounting exists) says which tasks ended without one (failed,
  cancelled, out of memory, node failure, past Slurm's time limit): each gets a problem row with Slurm's state
  and the tail of its log. A class that Slurm has not finished within ``--slurm-timeout`` seconds is cancelled
  (``scancel``) and its remaining submissions are reported as timed out, so a run never hangs on the queue.
* **Node** (``python -I -m course_lib.grading.slurm task RUN BATCH``, the array task; trusted code from the
  same shared installation, with the grader's rights). It copies its task's working copy to a local temporary
  folder, builds the *same* sandbox command as the local pool (:func:`.sandbox.command`: the node's cgroups, a
  uid of its own, the restricted course_lib), feeds the job on stdin, applies the same wall-clock limit, caps
  the runner's output at :func:`result_cap`, and writes it (plain JSON, never executed) with a status file.
* **Untrusted data back.** The parent reads the result like a submitted file (no link, no FIFO, size cap),
  parses it as JSON and checks its shape (:func:`validate`) before the pool's verdicts see it; everything in
  it is then treated exactly as the local runner's output (outputs rebuilt, records judged in the parent).

Requirements: the course directory's shared folder and this Python environment at the same paths on every
node, bubblewrap and user namespaces on the nodes (a node without them fails its task with the reason), and
Slurm's ``sbatch``, ``squeue``, ``scancel`` and ``sinfo`` where the grader runs. The grader's environment is
not exported to the jobs (so ``RNN_COURSE_GRADING_SECRET`` never reaches a node); each job gets the key of
the one notebook it grades, as a local sandbox does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from . import sandbox
from .limits import Limits

TOOLS = ("sbatch", "squeue", "scancel", "sinfo")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
            "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"}
REFUSED_ARGS = ("--array", "-a", "--wrap", "--export", "--output", "-o", "--error", "-e", "--parsable")
STATUS_MAX = 64 * 1024  # bytes of a status file
LOG_MAX = 256 * 1024  # bytes of a task's log read for its last lines
SLOT_BASE, SLOTS = 100, 4000  # a node's sandbox uid: 61000 + 100 + (job id mod 4000), see task()


class SlurmError(RuntimeError):
    """Slurm cannot be used as asked (a missing command, an unknown partition, bad --slurm-args)."""


def result_cap(limits: Limits) -> int:
    """Most bytes a task's result may have: twice the output budget (outputs and their records) plus 8 MiB."""
    return 2 * int(limits.output * 1024 * 1024) + (8 << 20)


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


def _printable(text: str, limit: int = 300) -> str:
    """Untrusted text (a log) for a problem row: printable characters only, shortened."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text[:limit]


def _write_atomic(path: str, data: bytes) -> None:
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass
class _Task:
    seq: int
    done: threading.Event = field(default_factory=threading.Event)
    result: dict | None = None
    failure: str | None = None
    gone_since: float | None = None  # when Slurm first showed it ended (or stopped listing it) with no status

    def finish(self, result: dict | None, failure: str | None) -> None:
        if not self.done.is_set():
            self.result, self.failure = result, failure
            self.done.set()


@dataclass
class _Batch:
    name: str
    tasks: list[_Task]
    job_id: str = ""
    submitted: float = 0.0
    seen: bool = False  # squeue has listed it at least once


class SlurmBackend:
    """Runs prepared notebooks as Slurm array tasks; the pool's ``backend`` (see :mod:`.pool`).

    Args:
        folder: a folder on storage shared with the nodes (at the same path there); a private run folder is
            made inside it and removed by :meth:`close`.
        partition: Slurm partition (default: the cluster's default).
        extra_args: more ``sbatch`` options, a shell-like string or a list (e.g. ``"--qos=teaching"``); the
            options this backend sets itself (``--array``, ``--output``, ``--export``...) are refused.
        timeout: seconds Slurm may take (queue and run) for one array before what is left is cancelled.
        poll: seconds between looks for finished tasks; ``squeue_every``: between ``squeue`` calls.
        gather: seconds without a new task before the waiting ones are submitted as one array.
        grace: seconds a task that Slurm shows as ended may take to show its status file (shared storage lag).
        keep: keep the run folder (for debugging).
    """

    default_workers = 256  # submissions in Slurm at once (pool threads that wait on their task)

    def __init__(self, folder: str | os.PathLike, partition: str | None = None,
                 extra_args: str | list[str] | None = None, timeout: float = 3600.0, poll: float = 0.25,
                 squeue_every: float = 2.0, gather: float = 1.0, grace: float = 20.0, max_array: int = 1000,
                 keep: bool = False, python: str | None = None):
        self.tools = {t: shutil.which(t) for t in TOOLS}
        missing = [t for t, path in self.tools.items() if path is None]
        if missing:
            raise SlurmError(f"Slurm's {', '.join(missing)} not found on PATH: --backend slurm must run where "
                             "jobs can be submitted (a login or submit node of the cluster)")
        self.sacct = shutil.which("sacct")
        if isinstance(extra_args, str):
            try:
                extra_args = shlex.split(extra_args)
            except ValueError as error:
                raise SlurmError(f"--slurm-args {extra_args!r}: {error}") from None
        self.extra = list(extra_args or [])
        for arg in self.extra:
            name = arg.split("=", 1)[0]
            if name in REFUSED_ARGS:
                raise SlurmError(f"--slurm-args may not set {name}: the grader sets it itself")
        if timeout <= 0:
            raise SlurmError("--slurm-timeout must be positive")
        self.partition, self.timeout, self.poll, self.squeue_every = partition, timeout, poll, squeue_every
        self.gather, self.grace, self.max_array, self.keep = gather, grace, max_array, keep
        self.python = python or sys.executable
        self._check_partition()
        os.makedirs(folder, mode=0o700, exist_ok=True)
        self.run_dir = tempfile.mkdtemp(prefix="run-", dir=os.path.abspath(folder))  # mode 0700
        for sub in ("tasks", "batches", "done", "logs", "lib"):
            os.mkdir(os.path.join(self.run_dir, sub))
        self.script = os.path.join(self.run_dir, "task.sh")
        with open(self.script, "w") as f:
            f.write(f"#!/bin/sh\nexec {shlex.quote(self.python)} -I -m course_lib.grading.slurm task "
                    f"{shlex.quote(self.run_dir)} \"$1\"\n")
        os.chmod(self.script, 0o700)
        self.cond = threading.Condition()
        self.pending: list[_Task] = []
        self.batches: list[_Batch] = []
        self.libs: dict[str, str] = {}
        self.seq = 0
        self.last_arrival = 0.0
        self.closed = False
        self.limits: Limits | None = None
        self.dispatcher = threading.Thread(target=self._dispatch, name="slurm-dispatcher", daemon=True)
        self.dispatcher.start()

    # --- set-up checks ---------------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        """What sbatch (and so the job) gets of the grader's environment: no secret, only what Slurm needs."""
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/")}
        env.update({k: v for k, v in os.environ.items() if k in ("SLURM_CONF", "SLURM_CLUSTERS")})
        return env

    def _slurm(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), capture_output=True, text=True, env=self._env(), timeout=timeout)

    def _check_partition(self) -> None:
        try:
            out = self._slurm(self.tools["sinfo"], "-h", "-o", "%P")
        except (OSError, subprocess.SubprocessError) as error:
            raise SlurmError(f"sinfo failed: {error}") from None
        if out.returncode != 0:
            raise SlurmError(f"sinfo cannot reach Slurm: {out.stderr.strip()[:300]}")
        names = [p.rstrip("*") for p in out.stdout.split()]
        if self.partition is not None and self.partition not in names:
            raise SlurmError(f"no Slurm partition {self.partition!r} (sinfo lists: {', '.join(names) or 'none'})")

    # --- the pool's side -------------------------------------------------------------------------------------

    def run(self, job: dict, workdir: str, limits: Limits, course_lib_dir: str) -> tuple[dict | None, str | None]:
        """Run ``job`` on ``workdir`` as a Slurm array task; (result, None) or (None, why it failed)."""
        with self.cond:
            if self.closed:
                return None, "not run: the grader was stopped before this submission reached Slurm"
            self.seq += 1
            task = _Task(self.seq)
            lib = self.libs.get(course_lib_dir)
            if lib is None:  # the restricted course_lib of a notebook, once per run, where the nodes see it
                lib = os.path.join(self.run_dir, "lib", str(len(self.libs)), "course_lib")
                shutil.copytree(course_lib_dir, lib, symlinks=True)
                self.libs[course_lib_dir] = lib
            self.limits = limits
        folder = os.path.join(self.run_dir, "tasks", str(task.seq))
        os.mkdir(folder)
        shutil.copytree(workdir, os.path.join(folder, "workdir"), symlinks=True)
        meta = {"limits": dataclasses.asdict(limits), "course_lib": lib}
        with open(os.path.join(folder, "meta.json"), "w") as f:
            json.dump(meta, f)
        with open(os.path.join(folder, "job.json"), "w") as f:
            json.dump(dict(job, workdir=sandbox.WORKDIR), f)
        with self.cond:
            self.pending.append(task)
            self.last_arrival = time.monotonic()
            self.cond.notify_all()
        while not task.done.wait(1.0):
            pass
        try:
            if task.failure is None:
                task.result, task.failure = self._read_result(folder, limits)
        finally:
            if not self.keep:
                shutil.rmtree(folder, ignore_errors=True)
        return (None, task.failure) if task.failure else (task.result, None)

    def _read_result(self, folder: str, limits: Limits) -> tuple[dict | None, str | None]:
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

    def cancel(self, why: str = "cancelled by the grader (interrupted)") -> None:
        """Cancel every array in Slurm and release every waiting submission with ``why``."""
        with self.cond:
            self.closed = True
            batches, pending, self.pending = list(self.batches), list(self.pending), []
            self.cond.notify_all()
        ids = [b.job_id for b in batches if b.job_id and not all(t.done.is_set() for t in b.tasks)]
        if ids:
            try:
                self._slurm(self.tools["scancel"], *ids, timeout=30)
            except (OSError, subprocess.SubprocessError):
                pass
        for task in pending + [t for b in batches for t in b.tasks]:
            task.finish(None, why)

    def close(self) -> None:
        """Cancel what is left, stop the dispatcher, remove the run folder (unless ``keep``)."""
        self.cancel("not run: the grader closed its Slurm backend")
        self.dispatcher.join(timeout=10)
        if not self.keep:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> SlurmBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the dispatcher --------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        last_squeue = 0.0
        try:
            while True:
                with self.cond:
                    if self.closed:
                        return
                    ready = []
                    quiet = time.monotonic() - self.last_arrival >= self.gather
                    if self.pending and (quiet or len(self.pending) >= self.max_array):
                        ready, self.pending = self.pending[:self.max_array], self.pending[self.max_array:]
                if ready:
                    self._submit(_Batch(str(len(self.batches)), ready))
                now = time.monotonic()
                use_squeue = now - last_squeue >= self.squeue_every
                if use_squeue:
                    last_squeue = now
                self._collect(use_squeue)
                with self.cond:
                    self.cond.wait(self.poll)
        except Exception as error:  # never leave a submission waiting: fail everything that is left
            self.cancel(f"the Slurm dispatcher failed: {type(error).__name__}: {error}"[:300])

    def _submit(self, batch: _Batch) -> None:
        limits = self.limits or Limits()
        with open(os.path.join(self.run_dir, "batches", f"{batch.name}.json"), "w") as f:
            json.dump([t.seq for t in batch.tasks], f)
        minutes = max(1, math.ceil((limits.wall + 120) / 60))  # the node's own wall-clock limit comes first
        args = [self.tools["sbatch"], "--parsable", f"--job-name=grading-{batch.name}",
                f"--array=0-{len(batch.tasks) - 1}", f"--output={self.run_dir}/logs/{batch.name}_%a.log",
                f"--time={minutes}", f"--cpus-per-task={max(1, math.ceil(limits.cores))}",
                f"--mem={limits.ram + 512}M", f"--chdir={self.run_dir}"]
        if self.partition:
            args.append(f"--partition={self.partition}")
        args += self.extra + [self.script, batch.name]
        batch.submitted = time.monotonic()
        with self.cond:
            self.batches.append(batch)
        try:
            out = self._slurm(*args)
            job_id = out.stdout.strip().split(";")[0]
            if out.returncode != 0 or not job_id.isdigit():
                why = (out.stderr.strip() or out.stdout.strip()).splitlines()
                raise SlurmError(f"sbatch refused the job array: {_printable(' | '.join(why[-2:]))}")
        except (OSError, subprocess.SubprocessError, SlurmError) as error:
            for task in batch.tasks:
                task.finish(None, str(error) if isinstance(error, SlurmError) else f"sbatch failed: {error}")
            return
        batch.job_id = job_id

    def _collect(self, use_squeue: bool) -> None:
        with self.cond:
            live = [b for b in self.batches if b.job_id and not all(t.done.is_set() for t in b.tasks)]
        if not live:
            return
        done = set(os.listdir(os.path.join(self.run_dir, "done")))
        now = time.monotonic()
        for batch in live:
            for task in batch.tasks:
                if not task.done.is_set() and f"{task.seq}.json" in done:
                    task.finish(*self._status(task))
            if all(t.done.is_set() for t in batch.tasks):
                continue
            if now - batch.submitted > self.timeout:
                self._slurm(self.tools["scancel"], batch.job_id, timeout=30)
                states = self._states(batch)
                for index, task in enumerate(batch.tasks):
                    state = (states or {}).get(index, ("not listed", ""))[0]
                    task.finish(None, f"Slurm did not finish it within the --slurm-timeout wall-clock allowance of "
                                      f"{self.timeout:g} s (it was {state}); its job was cancelled")
                continue
            if use_squeue:
                self._check_ended(batch, now)

    def _status(self, task: _Task) -> tuple[dict | None, str | None]:
        """What the node's status file says: (None, None) when the result is ready to read."""
        from .prepare import read_regular

        try:
            status = json.loads(read_regular(os.path.join(self.run_dir, "done", f"{task.seq}.json"), STATUS_MAX))
        except (OSError, ValueError) as error:
            return None, f"the Slurm task's status was refused: {error}"[:300]
        if not isinstance(status, dict) or not isinstance(status.get("failure"), (str, type(None))):
            return None, "the Slurm task's status was refused: not the node's format"
        return (None, _printable(status["failure"], 500)) if status["failure"] else (None, None)

    def _states(self, batch: _Batch) -> dict[int, tuple[str, str]] | None:
        """array index -> (state, reason) from squeue (None if squeue failed; {} once Slurm forgot the job)."""
        try:
            out = self._slurm(self.tools["squeue"], "-h", "-r", "--states=all", "-j", batch.job_id,
                              "-o", "%K|%T|%r", timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode != 0:
            return {} if "Invalid job id" in out.stderr else None
        states = {}
        for line in out.stdout.splitlines():
            index, _, rest = line.partition("|")
            state, _, reason = rest.partition("|")
            if index.strip().isdigit():
                states[int(index)] = (state.strip(), reason.strip())
        return states

    def _sacct(self, job: str) -> tuple[str, str] | None:
        if self.sacct is None:
            return None
        try:
            out = self._slurm(self.sacct, "-n", "-P", "-X", "-j", job, "-o", "State,ExitCode", timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        lines = out.stdout.strip().splitlines()
        if out.returncode != 0 or not lines:
            return None
        state, _, code = lines[0].partition("|")
        return state.split()[0] if state else "UNKNOWN", code

    def _check_ended(self, batch: _Batch, now: float) -> None:
        """Fail the tasks Slurm shows as ended (or no longer knows) that wrote no status within ``grace``."""
        states = self._states(batch)
        if states is None:
            return  # squeue failed this time: try again later (the timeout still bounds the wait)
        batch.seen = batch.seen or bool(states)
        for index, task in enumerate(batch.tasks):
            if task.done.is_set():
                continue
            state, reason = states.get(index, ("", ""))
            ended = state in TERMINAL or (not state and (batch.seen or now - batch.submitted > self.grace))
            if not ended:
                task.gone_since = None
                continue
            task.gone_since = task.gone_since or now
            if now - task.gone_since < self.grace:
                continue  # its status file may still be on its way over shared storage
            job = f"{batch.job_id}_{index}"
            code = ""
            if not state:
                state, code = self._sacct(job) or ("no longer known to Slurm", "")
            task.finish(None, self._ended_reason(job, state, reason, code, batch.name, index))

    def _ended_reason(self, job: str, state: str, reason: str, code: str, batch: str, index: int) -> str:
        limits = self.limits or Limits()
        if state == "TIMEOUT":
            why = (f"the Slurm job {job} ran past its time limit (the wall-clock limit of {limits.wall:g} s "
                   "plus two minutes)")
        elif state == "CANCELLED":
            why = f"the Slurm job {job} was cancelled outside the grader (scancel, preemption or an administrator)"
        elif state == "OUT_OF_MEMORY":
            why = f"the Slurm job {job} ran out of memory (--mem={limits.ram + 512}M)"
        else:
            detail = ", ".join(x for x in (reason if reason not in ("None", "") else "",
                                           f"exit code {code}" if code else "") if x)
            why = f"the Slurm job {job} ended {state}{f' ({detail})' if detail else ''}"
        return f"{why} without a result{self._log_tail(batch, index)}"

    def _log_tail(self, batch: str, index: int) -> str:
        from .prepare import read_regular

        try:
            data = read_regular(os.path.join(self.run_dir, "logs", f"{batch}_{index}.log"), LOG_MAX)
        except (OSError, ValueError):
            return ""
        lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()][-2:]
        return f"; its log ends: {_printable(' | '.join(lines))}" if lines else ""


# --- the node's side ---------------------------------------------------------------------------------------

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
    if len(sys.argv) != 4 or sys.argv[1] != "task":
        sys.exit("usage: python -I -m course_lib.grading.slurm task RUN_DIR BATCH (run by Slurm, not by hand)")
    sys.exit(task(sys.argv[2], sys.argv[3]))
