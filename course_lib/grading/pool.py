"""Grades every submission of an assignment with a pool of sandboxed workers; only this process writes grades.

For each submission: :func:`~course_lib.grading.prepare.prepare` (parent, gradebook lock held), the runner in
the sandbox (no lock: this is the part that runs in parallel), then the verdicts and
:func:`~course_lib.grading.scoring.save` (parent, lock held). Workers are threads of this process that wait on
their sandbox's pipe, so the gradebook has one writer and no grade is lost, with SQLite or PostgreSQL.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory
from tqdm.auto import tqdm
from traitlets.config.loader import PyFileConfigLoader

from course_lib.checks import grading_key, scoped_key

from . import outputs, reference, sandbox, scoring
from .limits import Limits
from .misconceptions import catalogue, verdict_record
from .prepare import MAX_FILE_BYTES, Prepared, SourceInfo, copy_files, load_source_info, prepare, read_regular
from .verdict import Verdict, apply, decide


class GradingError(RuntimeError):
    """A problem with the course or the command line (not with a submission)."""


@dataclass
class Outcome:
    """What happened to one submission."""

    student: str
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)  # grade_id -> (score, max)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, reason)
    notes: list[str] = field(default_factory=list)
    tests: dict[str, str] = field(default_factory=dict)  # grade_id -> "" (passed) or the failure reason
    # for the class report (.misconceptions): grade_id -> the verdict as data, and the checks it was judged by
    verdicts: dict[str, dict] = field(default_factory=dict)
    checks: dict[str, list[dict]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(s for s, _ in self.scores.values())


def default_workers() -> int:
    """One sandbox more than the cores: each submission spends part of its time waiting (its kernel's start-up
    handshake, pipes, the gradebook lock), and the extra sandbox uses it. On 2 cores, 100 submissions of
    01_feedforward took 231 s with 2 sandboxes and 207 s with 3 (benchmarks/bench_grading.py)."""
    return (os.cpu_count() or 1) + 1


def load_course(root: str | os.PathLike, db_url: str | None = None):
    """(config, CourseDirectory) of the nbgrader course in ``root``, as nbgrader would load them."""
    root = os.path.abspath(root)
    if not os.path.exists(os.path.join(root, "nbgrader_config.py")):
        raise GradingError(f"{root} has no nbgrader_config.py: run this from the course directory")
    config = PyFileConfigLoader("nbgrader_config.py", path=root).load_config()
    if db_url:
        config.CourseDirectory.db_url = db_url
    coursedir = CourseDirectory(config=config)
    if not config.CourseDirectory.get("root"):
        coursedir.root = root
    return config, coursedir


def submissions(coursedir, assignment: str, students: list[str] | None,
                unusable: list[str] | None = None) -> list[str]:
    """Student ids with a submission; folder names that cannot be a gradebook id go to ``unusable``."""
    folder = Path(coursedir.root) / coursedir.submitted_directory
    found, bad = [], []
    for name in sorted(p.parent.name for p in folder.glob(f"*/{assignment}") if p.is_dir()):
        try:
            name.encode("utf-8")  # a non-UTF-8 folder name (surrogate-escaped bytes) cannot be stored
            found.append(name)
        except UnicodeEncodeError:
            bad.append(name)
    if students:
        missing = sorted(set(students) - set(found) - set(bad))
        if missing:
            raise GradingError(f"no submission of {assignment} for: {', '.join(missing)}")
        found, bad = [s for s in found if s in students], [s for s in bad if s in students]
    if unusable is not None:
        unusable.extend(bad)
    return found


def classify(cell_results: dict, verdicts: dict[str, Verdict], limits: Limits,
             stop_reason: str | None = None) -> list[tuple[str, str]]:
    """Problems of a run: timeouts, crashes, limits."""
    problems = []
    for result in cell_results.values():
        status, reason = result.get("status"), result.get("reason")
        if status == "timeout":
            problems.append(("timed out", reason))
        elif status == "output_limit":
            problems.append(("exceeded a limit", reason))
        elif status == "dead":
            problems.append(("crashed", f"{reason} (it exited, was killed, or hit cpu={limits.cpu} s, "
                                        f"mem={limits.mem} MiB, nproc={limits.nproc} or fsize={limits.fsize} MiB)"))
    for grade_id, verdict in verdicts.items():
        if verdict.ename == "MemoryError":
            problems.append(("exceeded a limit", f"{grade_id}: MemoryError (mem={limits.mem} MiB)"))
    if stop_reason and not any(kind in ("timed out", "crashed", "exceeded a limit") for kind, _ in problems):
        problems.append(("crashed", stop_reason))
    return list(dict.fromkeys(problems))


class Grader:
    """Grades submissions of one assignment; see :func:`autograde`."""

    def __init__(self, root, assignment: str, db_url: str | None = None, limits: Limits | None = None,
                 use_sandbox: bool = True, workers: int | None = None, secret: str | None = None,
                 per_student: bool = False, backend=None):
        self.config, self.coursedir = load_course(root, db_url)
        self.secret = os.environ.get("RNN_COURSE_GRADING_SECRET", "") if secret is None else secret
        self.per_student = bool(per_student and self.secret)
        self.references: dict[tuple[str, str], dict[str, list[dict]]] = {}
        self.reference_lock = threading.Lock()
        self.restricted: dict[str, str] = {}
        self.assignment = assignment
        self.db_url = self.coursedir.db_url
        timeout = self.config.get("Execute", {}).get("timeout")
        base = Limits(cell=float(timeout)) if timeout else Limits()
        self.limits = limits or base
        self.use_sandbox = use_sandbox
        self.backend = backend  # None: this host's sandboxes; else e.g. a slurm.SlurmBackend (runs submissions only)
        self.workers = max(1, workers or default_workers())
        self.lock = threading.Lock()
        self.slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.workers):
            self.slots.put(slot)
        self.keep = list(self.config.get("Autograde", {}).get("exclude_overwriting", {}).get(assignment, []))
        try:
            self.infos: dict[str, SourceInfo] = load_source_info(self.db_url, assignment)
        except MissingEntry:
            raise GradingError(f"assignment {assignment!r} is not in the gradebook: run "
                               f"`nbgrader generate_assignment {assignment}` first") from None
        # the restricted course_lib of each notebook; removed by close() (a `with Grader(...)` block)
        self.private = tempfile.mkdtemp(prefix="grading-course-lib-")

    def key_for(self, student: str) -> str:
        """The derived key of the hidden inputs (per class, or per student); "" without a secret."""
        return grading_key(self.secret, student if self.per_student else "") if self.secret else ""

    def kernel_key(self, key: str, name: str) -> str:
        """What a kernel grading notebook ``name`` gets of ``key``: a key for that notebook only."""
        return scoped_key(key, f"{self.assignment}/{name}")

    def close(self) -> None:
        """Remove this grader's temporary files (the restricted course_lib copies)."""
        shutil.rmtree(self.private, ignore_errors=True)

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def source_path(self, name: str) -> Path:
        return Path(self.coursedir.format_path(self.coursedir.source_directory, ".", self.assignment)) / \
            f"{name}.ipynb"

    def restricted_for(self, name: str) -> str:
        """The restricted course_lib folder (its parent, for PYTHONPATH) of notebook ``name``."""
        with self.reference_lock:
            if name not in self.restricted:
                allowed = reference.sandbox_modules(nbformat.read(self.source_path(name), as_version=4))
                folder = os.path.join(self.private, name)
                reference.restricted_course_lib(allowed, folder)
                self.restricted[name] = folder
            return self.restricted[name]

    def reference_records(self, name: str, key: str, slot: int) -> dict[str, list[dict]]:
        """grade_id -> reference records of notebook ``name`` for inputs ``key`` (cached on disk)."""
        with self.reference_lock:
            if (name, key) in self.references:
                return self.references[(name, key)]
            info = self.infos[name]
            source_nb = nbformat.read(self.source_path(name), as_version=4)
            tests = {g: info.sources[g]["source"] for g in info.graded if g in info.sources}
            cells = reference.source_cells(source_nb, tests)
            digest = reference.cache_key(self.source_path(name), cells, self.kernel_key(key, name))
            cache = Path(self.coursedir.root) / ".grading" / "reference" / self.assignment
            records = reference.load_cached(cache, digest)
            if records is None:
                job = self.job(source_nb, cells, "reference", self.kernel_key(key, name))
                workdir = self.workdir(slot, None)
                try:
                    result, failure = self.run_sandboxed(job, workdir, slot)
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                if failure or result is None:
                    raise GradingError(f"the reference run of {name}.ipynb failed: {failure}")
                try:
                    records = reference.records_by_grade_id(result, cells)
                except reference.ReferenceError_ as error:
                    raise GradingError(str(error)) from None
                reference.save_cached(cache, digest, records)
            self.references[(name, key)] = records
            return records

    def job(self, nb, cells: list[dict], mode: str, key: str, restricted: str | None = None,
            restore: str = "") -> dict:
        env = {"RNN_COURSE_CHECKS": mode, "RNN_COURSE_GRADING_KEY": key}
        if restricted and not self.use_sandbox:
            env["PYTHONPATH"] = restricted  # no sandbox to bind it over the real course_lib: shadow it
        return {"cells": [{k: c[k] for k in ("index", "kind", "source")} for c in cells], "env": env,
                "restore": restore,
                "kernel_name": (nb.metadata.get("kernelspec") or {}).get("name", "python3"),
                "cell_timeout": self.limits.cell, "startup_timeout": self.limits.startup,
                "output_limit": int(self.limits.output * 1024 * 1024)}

    def workdir(self, slot: int, student: str | None) -> str:
        """A fresh working copy: the assignment's files, then the files the instructor lets students provide."""
        workdir = tempfile.mkdtemp(prefix=f"grading-{slot}-")
        source = self.coursedir.format_path(self.coursedir.source_directory, ".", self.assignment)
        copy_files(source, source, workdir, list(self.coursedir.ignore), [])
        if student is not None:
            submitted = self.coursedir.format_path(self.coursedir.submitted_directory, student, self.assignment)
            for relative in self.keep:  # read like every submitted file: no links, no FIFOs, size caps
                try:
                    data = read_regular(os.path.join(submitted, relative), MAX_FILE_BYTES)
                except (OSError, ValueError):
                    continue
                os.makedirs(os.path.dirname(os.path.join(workdir, relative)), exist_ok=True)
                with open(os.path.join(workdir, relative), "wb") as f:
                    f.write(data)
        sandbox.prepare_workdir(workdir, slot)
        return workdir

    def run_sandboxed(self, job: dict, workdir: str, slot: int,
                      course_lib_dir: str | None = None) -> tuple[dict | None, str | None]:
        """Run the runner on ``job``; (result, None) or (None, why it failed)."""
        job = dict(job, workdir=sandbox.WORKDIR if self.use_sandbox else workdir)
        cmd, env = sandbox.command(workdir, self.limits, slot=slot, sandbox=self.use_sandbox,
                                   course_lib_dir=course_lib_dir if self.use_sandbox else None)
        with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, start_new_session=True) as proc:
            try:
                out, err = proc.communicate(json.dumps(job).encode(), timeout=self.limits.wall)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                return None, f"ran past the wall-clock limit of {self.limits.wall:g} s"
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            return None, f"the grading process exited with {proc.returncode}: {' | '.join(tail)[:400]}"
        try:
            return json.loads(out), None
        except ValueError:
            return None, "the grading process returned no readable result"

    def grade_notebook(self, prepared: Prepared, name: str, slot: int, outcome: Outcome) -> None:
        nb, cells = prepared.notebooks[name], prepared.jobs[name]
        key = self.key_for(prepared.student)
        expected = self.reference_records(name, key, slot)
        restricted = self.restricted_for(name)
        allowed = reference.sandbox_modules(nbformat.read(self.source_path(name), as_version=4))
        kernel_key = self.kernel_key(key, name)
        # nothing secret is written back: the secret, the student's (or class's) key, the notebook's key
        redact = outputs.redactor([self.secret, key, kernel_key] if self.secret else [])
        restore = reference.restore_code([c["source"] for c in cells if c["kind"] == "instructor"], allowed,
                                         set(self.infos[name].student_names))
        used = reference.forbidden_uses([c["source"] for c in cells if c["kind"] == "student"], allowed,
                                        [c["source"] for c in cells if c["kind"] != "student"])
        if used:
            outcome.problems.append(("used the reference", "the answers name " + ", ".join(used) +
                                     ", which the grader does not provide (answers must do their own work)"))
        workdir = self.workdir(slot, prepared.student)
        try:
            job = self.job(nb, cells, "record", kernel_key, restricted, restore)
            if self.backend is not None:  # elsewhere (a Slurm array task), in the same sandbox, same limits
                result, failure = self.backend.run(job, workdir, self.limits, os.path.join(restricted, "course_lib"))
            else:
                result, failure = self.run_sandboxed(job, workdir, slot, os.path.join(restricted, "course_lib"))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        cell_results = (result or {}).get("cells", {})
        if failure:
            outcome.problems.append(("timed out" if "wall-clock" in failure else "crashed", failure))
        marker = reference.STUB_MESSAGE.split("{module}")[1]
        blocked = {str(o.get("evalue", "")).split(" ")[0] for r in cell_results.values()
                   for o in r.get("outputs", []) if isinstance(o, dict) and o.get("output_type") == "error"
                   and marker in str(o.get("evalue", ""))}
        # what the stubs published as they were imported (even under a run-time name, even if caught)
        blocked |= {str(b.get("module"))[:100] for r in cell_results.values() for b in r.get("blocked") or []
                    if isinstance(b, dict) and str(b.get("module")).startswith("course_lib.")}
        blocked = sorted(blocked)
        if blocked and not used:
            outcome.problems.append(("used the reference", "the answers imported " + ", ".join(blocked)[:300] +
                                     ", which the grader does not provide (answers must do their own work)"))
        verdicts: dict[int, Verdict] = {}
        by_id: dict[str, Verdict] = {}
        for spec in cells:
            if spec["kind"] != "test":
                continue
            grade_id = nb.cells[spec["index"]].metadata["nbgrader"]["grade_id"]
            verdict = decide(cell_results.get(str(spec["index"])), expected.get(grade_id, []))
            verdicts[spec["index"]] = verdict
            by_id[grade_id] = verdict
            outcome.tests[grade_id] = verdict.reason
            cell_result = cell_results.get(str(spec["index"]))
            outcome.verdicts[grade_id] = verdict_record(verdict.passed, verdict.failed_checks, verdict.ename,
                                                        cell_result.get("status") if cell_result else "not executed")
        outcome.checks.update(catalogue(expected))
        outcome.problems.extend(classify(cell_results, by_id, self.limits, (result or {}).get("stop_reason")))
        apply(nb, cell_results, verdicts, redact)
        language_info = outputs.language_info((result or {}).get("language_info"))
        if language_info:
            nb.metadata["language_info"] = language_info
        dest = self.coursedir.format_path(self.coursedir.autograded_directory, prepared.student, self.assignment)
        with self.lock:
            scoring.save(nb, self.config, self.db_url, self.assignment, prepared.student, name, dest)

    def grade(self, student: str) -> Outcome:
        start = time.perf_counter()
        outcome = Outcome(student)
        slot = self.slots.get()
        try:
            with self.lock:
                prepared = prepare(self.coursedir, self.config, self.assignment, student, self.infos, self.keep)
            outcome.problems.extend(prepared.problems)
            outcome.problems.extend(("file left out", f"{path}: {why}") for path, why in prepared.left_out)
            outcome.notes.extend(prepared.notes)
            for name in prepared.notebooks:
                self.grade_notebook(prepared, name, slot, outcome)
            dest = self.coursedir.format_path(self.coursedir.autograded_directory, student, self.assignment)
            scoring.set_permissions(dest)
            with self.lock:
                outcome.scores = scoring.scores(self.db_url, self.assignment, student)
        except Exception as error:  # one submission's failure never stops the class
            outcome.problems.append(("crashed", f"grading failed: {type(error).__name__}: {error}"[:500]))
        finally:
            self.slots.put(slot)
        outcome.seconds = time.perf_counter() - start
        return outcome

    def grade_all(self, students: list[str], progress: bool = True) -> list[Outcome]:
        outcomes = []
        if students and not self.per_student:  # the class's reference data first: a broken source fails here
            for name in self.infos:
                self.reference_records(name, self.key_for(""), 0)
        # nbgrader 0.9.6's Gradebook triggers harmless SQLAlchemy 2 autoflush warnings (nbgrader autograde too)
        warnings.filterwarnings("ignore", message=".*not in session.*")
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(self.grade, s) for s in students]
            try:
                for future in tqdm(as_completed(futures), total=len(futures), desc=f"grading {self.assignment}",
                                   unit="submission", disable=not progress):
                    outcomes.append(future.result())
            except BaseException:  # Ctrl-C: finish the submissions being graded, start no other
                for future in futures:
                    future.cancel()
                if self.backend is not None:  # release the submissions waiting on a remote run
                    self.backend.cancel()
                raise
        return sorted(outcomes, key=lambda o: o.student)


def max_scores(db_url: str, assignment: str) -> dict[str, float]:
    with Gradebook(db_url) as gb:
        return {c.name: float(c.max_score) for nb in gb.find_assignment(assignment).notebooks
                for c in nb.grade_cells}


def autograde(root, assignment: str, students: list[str] | None = None, workers: int | None = None,
              db_url: str | None = None, limits: Limits | None = None, trust: bool = False,
              progress: bool = True, secret: str | None = None, per_student: bool = False,
              backend=None) -> list[Outcome]:
    """Grade the submissions of ``assignment`` in the course directory ``root`` into its gradebook.

    Args:
        root: the nbgrader course directory (holds nbgrader_config.py).
        assignment: assignment id (its notebooks must be in the gradebook: ``nbgrader generate_assignment``).
        students: only these students (default: every ``submitted/<student>/<assignment>``).
        workers: parallel sandboxes (default: :func:`default_workers`, the number of CPU cores plus one).
        db_url: gradebook URL (default: the course's, e.g. sqlite:///gradebook.db; or postgresql://...).
        limits: resource limits (default: :class:`Limits`, with the cell timeout from nbgrader's config).
        trust: run without a sandbox where none is available (the instructor trusts every submission).
        secret: the instructor's secret that seeds the hidden tests' inputs (default:
            ``RNN_COURSE_GRADING_SECRET``; empty: the fixed inputs of the published notebook).
        per_student: with a secret, different hidden inputs for every student (one reference run each).
        backend: where submissions run (default: this host's sandboxes); a :class:`.slurm.SlurmBackend` runs each
            as a Slurm array task (the reference run stays here; workers default to its ``default_workers``).

    Returns:
        one :class:`Outcome` per submission, sorted by student.
    """
    ok, why = sandbox.available()
    if backend is not None and (trust or not ok):  # the nodes always sandbox; the reference run needs one here
        raise GradingError("--backend slurm runs every submission in the sandbox and needs it here too (for the "
                           f"reference run): {why or 'it cannot be combined with --no-sandbox-i-trust-this-code'}")
    if not ok and not trust:
        raise GradingError(
            f"no sandbox available: {why}.\nRefusing to run students' code with your rights. Install "
            "bubblewrap (e.g. `apt-get install bubblewrap`) with user namespaces enabled, or, only if you trust "
            "every submission, pass --no-sandbox-i-trust-this-code.")
    unusable: list[str] = []
    if backend is not None:
        workers = workers or backend.default_workers
    with Grader(root, assignment, db_url=db_url, limits=limits, use_sandbox=ok and not trust, workers=workers,
                secret=secret, per_student=per_student,
                backend=backend) as grader:  # its temporary files go, whatever happens
        outcomes = grader.grade_all(submissions(grader.coursedir, assignment, students, unusable),
                                    progress=progress)
    outcomes += [Outcome(name, problems=[("malformed", "the folder name is not valid UTF-8, so it cannot be a "
                                                       "gradebook id: not graded (rename the folder)")])
                 for name in unusable]
    return sorted(outcomes, key=lambda o: o.student)
