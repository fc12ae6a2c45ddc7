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
* **Node** (:mod:`.slurm_task`, ``python -I -m course_lib.grading.slurm_task RUN BATCH``, the array task): the
  same sandbox as the local pool on the node's local disk, its output capped at
  :func:`.slurm_task.result_cap`, written back as plain JSON with a status file.
* **Untrusted data back** (:mod:`.slurm_results`). The parent reads the result like a submitted file (no
  link, no FIFO, size cap), parses it as JSON and checks its shape before the pool's verdicts see it;
  everything in it is then treated exactly as the local runner's output (outputs rebuilt, records judged in
  the parent).

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
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from . import sandbox
from .limits import Limits
from .slurm_results import log_tail, printable_excerpt, read_result, read_status

TOOLS = ("sbatch", "squeue", "scancel", "sinfo")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
            "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"}
REFUSED_ARGS = ("--array", "-a", "--wrap", "--export", "--output", "-o", "--error", "-e", "--parsable")


class SlurmError(RuntimeError):
    """Slurm cannot be used as asked (a missing command, an unknown partition, bad --slurm-args)."""


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
            f.write(f"#!/bin/sh\nexec {shlex.quote(self.python)} -I -m course_lib.grading.slurm_task "
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
                task.result, task.failure = read_result(folder, limits)
        finally:
            if not self.keep:
                shutil.rmtree(folder, ignore_errors=True)
        return (None, task.failure) if task.failure else (task.result, None)

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
                raise SlurmError(f"sbatch refused the job array: {printable_excerpt(' | '.join(why[-2:]))}")
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
                    task.finish(*read_status(os.path.join(self.run_dir, "done", f"{task.seq}.json")))
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
        tail = log_tail(os.path.join(self.run_dir, "logs", f"{batch}_{index}.log"))
        return f"{why} without a result{tail}"
