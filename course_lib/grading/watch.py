"""Grading on submission: ``python -m course_lib.grading watch ASSIGNMENT``, run in the course directory.

A process beside the hub (the instructor starts it, in a terminal left open or as a service) that watches
nbgrader's exchange: each new submission of ``ASSIGNMENT`` in ``<exchange>/<course>/inbound`` is copied to
``submitted/<student>/<assignment>/``, graded in the sandbox (:class:`~course_lib.grading.pool.Grader`, as
``autograde --student`` does), and its feedback written (``generate_feedback --student --force``) and released
(``release_feedback --student``), so ``nbgrader fetch_feedback`` (or the Lab extension) shows it, filed under
that submission's time, usually within seconds.

The instructor's :class:`Policy` (a TOML file and/or options) says how many attempts are graded, which one
counts (``last``, or ``best``: a worse attempt is graded and shown, then the best one is graded again so that
the gradebook holds it), the cool-down between attempts, and whether hidden tests' results are shown before
the due date (``show``: their pass/fail and pointed message, as the course's feedback always shows them,
never their source, inputs or expected values; ``hide``: before the due date the feedback counts and shows the
visible checks only). A submission that the policy refuses is not graded; its feedback says why.

Fairness (:class:`FairQueue`): each student has at most one waiting job (a newer submission replaces a waiting
one, which is then not graded and not counted) and the next job goes to the student served least recently, so a
student who submits in a loop delays another by at most the jobs already running.

What the watcher trusts: only what it sees itself. A submission's time is when its folder in the inbound
folder last changed (its ctime, which no user can set back; a student can write any name or
``timestamp.txt`` there), and it is the ``timestamp.txt`` the gradebook gets; a submission is taken for
``<student>`` only if that Unix user owns its folder (or the watcher's own user does: a demo under one
account); ids with characters outside ``[A-Za-z0-9_.@-]`` (or a leading ``.``/``-``) are ignored; files are
copied without following links or opening FIFOs, with size caps. Attempts are recorded in
``.grading/watch/<assignment>.json`` (written atomically), so a restart neither loses nor regrades them.
"""

from __future__ import annotations

import copy
import datetime
import html
import json
import logging
import os
import pwd
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, fields, replace

import tomllib
from nbformat.v4 import new_markdown_cell
from nbgrader.preprocessors import ClearHiddenTests, GetGrades, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution, notebook_hash
from traitlets import Bool, Unicode

from .prepare import MAX_FILE_BYTES, read_regular
from .summary import printable

log = logging.getLogger("course_lib.grading.watch")

STUDENT_ID = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_.@-]{0,63}\Z")  # no glob, path or option characters
MAX_FILES, MAX_TOTAL_BYTES, MAX_SECRET_BYTES = 200, 64 * 1024 * 1024, 1024
SETTLE_SECONDS = 1.0  # a submission is taken once its submission_secret.txt (nbgrader writes it last) is this old
INCOMPLETE_SECONDS = 300  # a folder without submission_secret.txt this long is not an nbgrader submission
MAX_TRIES = 3  # grading failures on the grader's side (not the submission's) before giving up on a submission


# --- the policy -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    """What the instructor allows. ``attempts`` 0: no limit; ``cooldown`` in seconds."""

    attempts: int = 0
    counts: str = "last"
    cooldown: float = 0.0
    hidden_before_deadline: str = "show"

    def __post_init__(self):
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool) or self.attempts < 0:
            raise ValueError(f"attempts must be a whole number >= 0 (0: no limit), not {self.attempts!r}")
        if self.counts not in ("last", "best"):
            raise ValueError(f"counts must be 'last' or 'best', not {self.counts!r}")
        if not isinstance(self.cooldown, (int, float)) or isinstance(self.cooldown, bool) or self.cooldown < 0:
            raise ValueError(f"the cool-down must be a number of minutes >= 0, not {self.cooldown!r}")
        if self.hidden_before_deadline not in ("show", "hide"):
            raise ValueError(f"hidden_before_deadline must be 'show' or 'hide', not {self.hidden_before_deadline!r}")

    @classmethod
    def load(cls, path: str) -> Policy:
        """A policy from a TOML file: ``attempts``, ``counts``, ``cooldown_minutes``, ``hidden_before_deadline``."""
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ValueError(f"cannot read the policy file {path}: {error}") from None
        known = {"attempts", "counts", "cooldown_minutes", "hidden_before_deadline"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"the policy file {path} has unknown settings {unknown} (known: {sorted(known)})")
        minutes = data.pop("cooldown_minutes", 0)
        if not isinstance(minutes, (int, float)) or isinstance(minutes, bool):
            raise ValueError(f"cooldown_minutes must be a number, not {minutes!r}")
        return cls(**data, cooldown=float(minutes) * 60)

    def refusal(self, counted: list[float], now: float) -> str | None:
        """Why a submission seen at ``now`` is not graded, given when the student's counted attempts were seen."""
        if self.attempts and len(counted) >= self.attempts:
            return (f"you have used all {self.attempts} graded attempts of this assignment, so this submission "
                    "was not graded (the attempt that counts is unchanged)")
        if self.cooldown and counted and now - max(counted) < self.cooldown:
            ready = datetime.datetime.fromtimestamp(max(counted) + self.cooldown, datetime.timezone.utc)
            return (f"it came less than {self.cooldown / 60:g} minutes after your last graded attempt, so it was "
                    f"not graded and does not count; submit again after {ready:%Y-%m-%d %H:%M:%S} UTC")
        return None

    def counting(self, scores: list[float]) -> int | None:
        """The index of the attempt that counts among graded attempts' ``scores`` (oldest first)."""
        if not scores:
            return None
        if self.counts == "last":
            return len(scores) - 1
        return max(range(len(scores)), key=lambda i: (scores[i], i))  # ties: the later attempt


# --- fairness ---------------------------------------------------------------------------------------------

class FairQueue:
    """Jobs for students: at most one waiting per student, one running per student, least recently served first.

    :meth:`put` replaces the student's waiting job (and returns the one replaced); :meth:`get` hands out the
    job of the student who was served least recently (never: first), arrival breaking ties; :meth:`done` frees
    the student. So with ``w`` workers a student waits at most for the ``w`` jobs already running, however
    often another submits."""

    def __init__(self):
        self._waiting: dict[str, tuple[int, object]] = {}  # student -> (arrival, job)
        self._served: dict[str, int] = {}  # student -> when last handed out (a counter)
        self._busy: set[str] = set()
        self._counter = 0
        self._closed = False
        self._cond = threading.Condition()

    def put(self, student: str, job) -> object | None:
        with self._cond:
            self._counter += 1
            old = self._waiting.get(student)
            self._waiting[student] = (self._counter, job)
            self._cond.notify_all()
            return old[1] if old else None

    def get(self, timeout: float | None = None):
        """(student, job), or None after ``timeout`` or when closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                ready = [s for s in self._waiting if s not in self._busy]
                if ready:
                    student = min(ready, key=lambda s: (self._served.get(s, 0), self._waiting[s][0]))
                    _, job = self._waiting.pop(student)
                    self._counter += 1
                    self._served[student] = self._counter
                    self._busy.add(student)
                    return student, job
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return None

    def done(self, student: str) -> None:
        with self._cond:
            self._busy.discard(student)
            self._cond.notify_all()

    def waiting(self, student: str):
        with self._cond:
            entry = self._waiting.get(student)
            return entry[1] if entry else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


# --- the feedback's additions -------------------------------------------------------------------------------

class SubmissionNotes(NbGraderPreprocessor):
    """For ``generate_feedback`` (after GetGrades, before HideHiddenTests): a note at the top (attempt, policy)
    and, with ``withhold_hidden``, hidden checks' results left out of messages and scores (visible checks only)."""

    banner = Unicode("").tag(config=True)
    withhold_hidden = Bool(False).tag(config=True)
    HIDDEN_NOTE = "- hidden tests: their results are shown after the due date"

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        if self.banner:
            nb.cells.insert(0, new_markdown_cell(self.banner, metadata={"nbgrader": {"locked": True}}))
        return nb, resources

    def preprocess_cell(self, cell, resources, cell_index):
        if not (self.withhold_hidden and cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)
                and ClearHiddenTests().begin_test_delimeter in cell.source):
            return cell, resources
        for i, output in enumerate(list(cell.get("outputs", []))):
            if output.get("output_type") != "error" or output.get("ename") != "GradingError":
                continue
            reason = str(output.get("evalue", ""))
            lines = "\n".join(output.get("traceback", [])).split("\n")[1:]
            visible = [ln for ln in lines if not ln.startswith("- hidden test ")]
            if re.fullmatch(r"\d+ check\(s\) failed", reason) and not visible:  # only hidden checks failed
                cell.outputs.pop(i)
                old = float(cell.metadata.nbgrader.get("score") or 0)
                cell.metadata.nbgrader["score"] = cell.metadata.nbgrader.get("points", old)
                resources["nbgrader"]["score"] = resources["nbgrader"].get("score", 0) + \
                    cell.metadata.nbgrader["score"] - old
            else:
                if re.fullmatch(r"\d+ check\(s\) failed", reason):
                    reason = f"{len(visible)} visible check(s) failed"
                text = "\n".join([*visible, self.HIDDEN_NOTE])
                output["evalue"] = reason
                output["traceback"] = [f"GradingError: {reason}\n{text}"]
            break
        return cell, resources


def note_page(title: str, lines: list[str]) -> str:
    """A small feedback page (all text escaped) for a submission that was not graded."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><ul>{items}</ul></body></html>\n")


# --- the state file ---------------------------------------------------------------------------------------

@dataclass
class Entry:
    """One inbound submission as the watcher saw it."""

    student: str
    seen: float
    status: str = "queued"  # queued, graded, refused, superseded, failed, ignored
    reason: str = ""
    score: float | None = None
    max_score: float | None = None
    tries: int = 0
    feedback_seconds: float | None = None


class State:
    """``.grading/watch/<assignment>.json``: every submission seen, by inbound name, written atomically."""

    def __init__(self, path: str):
        self.path = path
        self.entries: dict[str, Entry] = {}
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
                names = {f.name for f in fields(Entry)}
                self.entries = {k: Entry(**{a: b for a, b in v.items() if a in names})
                                for k, v in data["submissions"].items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                raise ValueError(f"the watcher's record {path} is unreadable ({error}): move it away to start "
                                 "afresh (every submission in the inbound folder is then new)") from None

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        data = {"version": 1, "submissions": {k: vars(v) for k, v in self.entries.items()}}
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".state-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise

    def graded(self, student: str) -> list[tuple[str, Entry]]:
        return sorted(((k, e) for k, e in self.entries.items() if e.student == student and e.status == "graded"),
                      key=lambda item: item[1].seen)


@dataclass
class Job:
    name: str  # the inbound folder
    restore: bool = False  # re-grade the counting attempt (policy "best"), no feedback


# --- the watcher --------------------------------------------------------------------------------------------

class Watcher:
    """Watches one assignment's inbound submissions; see the module docstring."""

    def __init__(self, course: str, assignment: str, policy: Policy, workers: int = 1, interval: float = 2.0,
                 limits=None, trust: bool = False, secret: str | None = None, per_student: bool = False):
        from . import sandbox
        from .pool import Grader, GradingError

        ok, why = sandbox.available()
        if not ok and not trust:
            raise GradingError(f"no sandbox available: {why}; refusing to run students' code with your rights "
                               "(--no-sandbox-i-trust-this-code only if you trust every submission)")
        self.grader = Grader(course, assignment, limits=limits, use_sandbox=ok and not trust, workers=workers,
                             secret=secret, per_student=per_student)
        self.assignment, self.policy, self.interval = assignment, policy, interval
        self.coursedir, self.config = self.grader.coursedir, self.grader.config
        if not self.coursedir.course_id:
            raise GradingError("the course has no course id (c.CourseDirectory.course_id in nbgrader_config.py)")
        exchange = self.config.get("Exchange", {}).get("root") or "/usr/local/share/nbgrader/exchange"
        self.inbound = os.path.join(exchange, self.coursedir.course_id, "inbound")
        self.outbound = os.path.join(exchange, self.coursedir.course_id, "feedback")
        if not os.path.isdir(self.inbound):
            raise GradingError(f"no inbound folder {self.inbound}: release the assignment first (or set "
                               "NBGRADER_EXCHANGE to the exchange the students submit to)")
        self.state = State(os.path.join(self.coursedir.root, ".grading", "watch", f"{assignment}.json"))
        self.queue = FairQueue()
        self.lock = threading.Lock()  # the state and the queue's decisions
        self.running: dict[str, str] = {}  # student -> inbound name being graded (counts as an attempt)
        self.stop = threading.Event()
        self.workers = [threading.Thread(target=self.work, name=f"grader-{i}", daemon=True)
                        for i in range(max(1, workers))]

    # -- the main loop ------------------------------------------------------------------------------------
    def run(self) -> None:
        # nbgrader 0.9.6's Gradebook triggers harmless SQLAlchemy 2 autoflush warnings (as in pool.grade_all)
        warnings.filterwarnings("ignore", message=".*not in session.*")
        if not self.grader.per_student:  # the reference run first (cached): a broken source notebook fails here
            for name in self.grader.infos:
                self.grader.reference_records(name, self.grader.key_for(""), 0)
        with self.lock:  # submissions accepted before a restart are graded now
            for name, entry in sorted(self.state.entries.items(), key=lambda item: item[1].seen):
                if entry.status == "queued":
                    self._enqueue(entry.student, Job(name))
        for worker in self.workers:
            worker.start()
        log.info("watching %s for %s (policy: %s); stop with Ctrl-C or SIGTERM", self.inbound, self.assignment,
                 self.policy)
        print(f"watching {self.assignment}: ready", flush=True)
        while not self.stop.is_set():
            try:
                self.scan()
            except Exception:  # never stop the service
                log.exception("scanning the inbound folder failed; trying again")
            self.stop.wait(self.interval)
        log.info("stopping: finishing the submissions being graded")
        self.queue.close()
        for worker in self.workers:
            worker.join()
        self.grader.close()

    def scan(self) -> None:
        """Decide about every new, complete submission of the assignment in the inbound folder."""
        found = []
        with os.scandir(self.inbound) as entries:
            for item in entries:
                parts = item.name.rsplit("+", 3)
                if item.name.startswith(".") or len(parts) < 3 or parts[1] != self.assignment:
                    continue
                if item.name not in self.state.entries:
                    found.append((item, parts))
        now = time.time()
        for item, parts in sorted(found, key=lambda x: x[1][2]):
            student, name = parts[0], item.name
            why = self._unusable(item, student)
            if why is None:
                secret = self._secret(name)
                if secret is None:
                    age = now - item.stat(follow_symlinks=False).st_mtime
                    if age < INCOMPLETE_SECONDS:
                        continue  # being written (or not yet complete): look again at the next scan
                    why = "no submission_secret.txt: not made by nbgrader submit"
                else:
                    try:
                        written = os.stat(os.path.join(self.inbound, name, "submission_secret.txt")).st_mtime
                    except OSError:
                        continue
                    if now - written < SETTLE_SECONDS:
                        continue
            with self.lock:
                if why is not None:
                    self.state.entries[name] = Entry(student, now, "ignored", why)
                    log.warning("ignored %s: %s", printable(name), why)
                else:  # its time: when its folder last changed (ctime, which no user can set back)
                    self._accept(student, name, min(now, item.stat(follow_symlinks=False).st_ctime))
                self._save()

    def _unusable(self, item, student: str) -> str | None:
        """Why an inbound entry is not taken as ``student``'s submission (None: it is)."""
        if not STUDENT_ID.match(student):
            return "the student id has characters outside A-Z a-z 0-9 _ . @ - (or starts with . or -)"
        try:
            info = item.stat(follow_symlinks=False)
        except OSError as error:
            return f"cannot be read: {error}"
        if not item.is_dir(follow_symlinks=False):
            return "not a folder"
        try:
            owner = pwd.getpwnam(student).pw_uid
        except KeyError:
            owner = None
        if info.st_uid not in (owner, os.geteuid()):
            return f"owned by uid {info.st_uid}, not by the user {student}: taken for a forgery, not graded"
        return None

    def _accept(self, student: str, name: str, now: float) -> None:
        """A new submission made at ``now``: refused by the policy (feedback says why), or queued (replacing a
        waiting one)."""
        counted = [e.seen for _, e in self.state.graded(student)]
        if student in self.running:
            counted.append(self.state.entries[self.running[student]].seen)
        why = self.policy.refusal(counted, now)
        if why:
            self.state.entries[name] = Entry(student, now, "refused", why)
            log.info("%s: %s refused: %s", printable(student), printable(name), why)
            self._note(name, "This submission was not graded", [f"It was not graded: {why}."])
            return
        self.state.entries[name] = Entry(student, now)
        self._enqueue(student, Job(name))

    def _enqueue(self, student: str, job: Job) -> None:
        old = self.queue.put(student, job)
        if old is not None and not old.restore:
            entry = self.state.entries[old.name]
            entry.status, entry.reason = "superseded", "a newer submission arrived before this one was graded"
            self._note(old.name, "This submission was not graded",
                       ["A newer submission of yours arrived before this one was graded: the newer one is "
                        "graded instead, and this one does not count."])

    def _save(self) -> None:
        try:
            self.state.save()
        except OSError as error:  # e.g. a full disk: keep going, the record is written at the next change
            log.error("cannot write %s: %s", self.state.path, error)

    # -- the workers --------------------------------------------------------------------------------------
    def work(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            student, job = item
            try:
                self.restore(student, job) if job.restore else self.grade(student, job)
            except Exception as error:  # never stop the service: record, retry a few times, then give up
                log.exception("%s: grading %s failed", printable(student), printable(job.name))
                self._failed(student, job, f"{type(error).__name__}: {error}"[:300])
            finally:
                with self.lock:
                    self.running.pop(student, None)
                self.queue.done(student)

    def _failed(self, student: str, job: Job, why: str) -> None:
        with self.lock:
            entry = self.state.entries[job.name]
            if job.restore or entry.status != "queued":
                return
            entry.tries += 1
            if entry.tries < MAX_TRIES and not self.stop.is_set():
                if self.queue.waiting(student) is None:
                    timer = threading.Timer(10.0 * entry.tries, self._retry, (student, job.name))
                    timer.daemon = True
                    timer.start()
            elif entry.tries >= MAX_TRIES:
                entry.status, entry.reason = "failed", why
                self._note(job.name, "This submission could not be graded",
                           ["The grader had a problem of its own (not your notebook's) and could not grade it; "
                            "it does not count as an attempt. Your instructor has the details in the watcher's "
                            "log."])
            self._save()

    def _retry(self, student: str, name: str) -> None:
        with self.lock:
            if self.state.entries[name].status == "queued" and self.queue.waiting(student) is None:
                self.queue.put(student, Job(name))

    def grade(self, student: str, job: Job) -> None:
        with self.lock:
            if self.state.entries[job.name].status != "queued":
                return
            self.running[student] = job.name
        entry = self.state.entries[job.name]
        left_out = self.collect(student, job.name, entry.seen)
        outcome = self.grader.grade(student)
        broken = [r for k, r in outcome.problems if r.startswith("grading failed:")]
        if broken:
            raise RuntimeError(broken[0])
        score, max_score = self._total(student)
        with self.lock:
            previous = self.state.graded(student)
            entry.status, entry.score, entry.max_score = "graded", score, max_score
            scores = [e.score or 0.0 for _, e in previous] + [score]
            counting = self.policy.counting(scores)
            attempt = len(scores)
        withhold = self.policy.hidden_before_deadline == "hide" and self._before_due(student, entry.seen)
        lines = [f"Attempt {attempt}" + (f" of {self.policy.attempts}" if self.policy.attempts else "") +
                 f", graded {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC."]
        if self.policy.counts == "best" and not withhold:
            lines.append(f"Your best attempt counts: attempt {counting + 1} "
                         f"({scores[counting]:g} / {max_score:g}).")
        elif self.policy.counts == "best":
            lines.append("Your best attempt counts (best after the due date, when hidden tests are counted).")
        else:
            lines.append("Your last graded attempt counts.")
        if withhold:
            lines.append("Before the due date this feedback shows and counts the visible tests only; hidden "
                         "tests are graded and shown after the due date.")
        if self.policy.cooldown:
            lines.append(f"Next graded attempt: {self.policy.cooldown / 60:g} minutes after this submission.")
        if left_out:  # their names stay out of the page (they are the student's, and this note is markdown)
            lines.append(f"{len(left_out)} file(s) of your submission were left out (links, special files, "
                         "or too large or too many).")
        missing = self.feedback(student, " ".join(lines), withhold)
        if missing:  # e.g. a notebook that could not be read: nbgrader writes no feedback for it
            problems = [f"{kind}: {reason}" for kind, reason in outcome.problems] or ["no feedback could be written"]
            self._note(job.name, "Your submission was graded", [*lines, *problems], missing)
        with self.lock:
            entry.feedback_seconds = round(time.time() - entry.seen, 1)
            self._save()
        log.info("%s: %s attempt %d graded, %g / %g; feedback released %.1f s after it was submitted",
                 printable(student), printable(job.name), attempt, score, max_score, entry.feedback_seconds)
        if self.policy.counts == "best" and counting != len(scores) - 1:
            best = previous[counting][0]
            with self.lock:
                if self.queue.waiting(student) is None:
                    self.queue.put(student, Job(best, restore=True))

    def restore(self, student: str, job: Job) -> None:
        """Policy ``best``: grade the counting attempt again, so that the gradebook holds it."""
        self.collect(student, job.name, self.state.entries[job.name].seen)
        outcome = self.grader.grade(student)
        score, _ = self._total(student)
        log.info("%s: the best attempt %s graded again for the gradebook (%g)%s", printable(student),
                 printable(job.name), score, f"; problems: {outcome.problems}" if outcome.problems else "")

    def collect(self, student: str, name: str, when: float) -> list[str]:
        """``nbgrader collect`` of exactly this submission: copied into ``submitted/<student>/<assignment>``
        (regular files only, no links followed, size caps), with ``timestamp.txt`` saying ``when`` (the
        gradebook's submission time, hence the late penalty); returns what was left out."""
        source = os.path.join(self.inbound, name)
        dest = self.coursedir.format_path(self.coursedir.submitted_directory, student, self.assignment)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = tempfile.mkdtemp(dir=os.path.dirname(dest), prefix=f".{self.assignment}-")
        left_out, count, total = [], 0, 0
        try:
            for dirpath, dirnames, filenames, dir_fd in os.fwalk(source, follow_symlinks=False):
                relative_dir = os.path.relpath(dirpath, source)
                for sub in list(dirnames):
                    if os.path.islink(os.path.join(dirpath, sub)) or count >= MAX_FILES:
                        left_out.append(os.path.join(relative_dir, sub) + " (a link, or too many files)")
                        dirnames.remove(sub)
                        continue
                    os.makedirs(os.path.join(tmp, relative_dir, sub), exist_ok=True)
                    count += 1
                for filename in sorted(filenames):
                    relative = os.path.normpath(os.path.join(relative_dir, filename))
                    if count >= MAX_FILES or total >= MAX_TOTAL_BYTES:
                        left_out.append(f"{relative} (more than {MAX_FILES} files or "
                                        f"{MAX_TOTAL_BYTES >> 20} MiB)")
                        continue
                    if relative == "timestamp.txt":
                        continue  # written below, from the time the watcher trusts
                    try:
                        data = read_regular(filename, MAX_FILE_BYTES, dir_fd=dir_fd)
                    except (OSError, ValueError) as error:
                        left_out.append(f"{relative} ({error})")
                        continue
                    with open(os.path.join(tmp, relative), "xb") as f:
                        f.write(data)
                    count, total = count + 1, total + len(data)
            with open(os.path.join(tmp, "timestamp.txt"), "w", encoding="utf-8") as f:
                f.write(datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M:%S.%f UTC"))
            if os.path.lexists(dest):
                shutil.rmtree(dest) if os.path.isdir(dest) and not os.path.islink(dest) else os.remove(dest)
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return left_out

    def _total(self, student: str) -> tuple[float, float]:
        from nbgrader.api import Gradebook

        with self.grader.lock, Gradebook(self.grader.db_url) as gb:
            sub = gb.find_submission(self.assignment, student)
            return float(sub.score) - float(sub.late_submission_penalty or 0), float(sub.max_score)

    def _before_due(self, student: str, seen: float) -> bool:
        from nbgrader.api import Gradebook

        with self.grader.lock, Gradebook(self.grader.db_url) as gb:
            due = gb.find_submission(self.assignment, student).duedate  # with the student's extension
        return due is None or datetime.datetime.fromtimestamp(seen, datetime.timezone.utc).replace(tzinfo=None) < due

    def feedback(self, student: str, banner: str, withhold: bool) -> set[str]:
        """``generate_feedback --student --force`` then ``release_feedback --student``; the notebooks whose
        feedback was not released."""
        from nbgrader.apps import NbGraderAPI

        folder = self.coursedir.format_path(self.coursedir.feedback_directory, student, self.assignment)
        shutil.rmtree(folder, ignore_errors=True)  # never release an earlier attempt's page for this one

        config = copy.deepcopy(self.config)
        steps = list(config.get("GenerateFeedback", {}).get("preprocessors", [GetGrades]))
        at = steps.index(GetGrades) + 1 if GetGrades in steps else 0
        config.GenerateFeedback.preprocessors = [*steps[:at], SubmissionNotes, *steps[at:]]
        config.SubmissionNotes.banner = banner
        config.SubmissionNotes.withhold_hidden = withhold
        with self.grader.lock:  # one gradebook user at a time
            api = NbGraderAPI(coursedir=self.coursedir, config=config)
            api.log.setLevel(logging.WARNING)  # nbgrader's line per file copied would drown the watcher's log
            generated = api.generate_feedback(self.assignment, student, force=True)
            if not generated.get("success"):
                log.error("generate_feedback for %s failed:\n%s", printable(student),
                          generated.get("error") or generated.get("log"))
                return set(self.grader.infos)
            released = api.release_feedback(self.assignment, student)
        if not released.get("success"):
            log.error("release_feedback for %s failed:\n%s", printable(student),
                      released.get("error") or released.get("log"))
            return set(self.grader.infos)
        return {name for name in self.grader.infos if not os.path.exists(os.path.join(folder, f"{name}.html"))}

    def _secret(self, name: str) -> str | None:
        try:
            secret = read_regular(os.path.join(self.inbound, name, "submission_secret.txt"), MAX_SECRET_BYTES)
            return secret.decode("utf-8") or None
        except (OSError, ValueError):
            return None

    def _note(self, name: str, title: str, lines: list[str], notebooks: set[str] | None = None) -> None:
        """Release a note as the feedback of inbound submission ``name`` (for ``notebooks``, default: each of
        the assignment's and the submission's)."""
        secret = self._secret(name)
        if secret is None:
            return
        try:
            if notebooks is None:
                notebooks = set(self.grader.infos)
                with os.scandir(os.path.join(self.inbound, name)) as entries:
                    notebooks |= {e.name[:-6] for e in entries if e.name.endswith(".ipynb")}
            os.makedirs(self.outbound, exist_ok=True)
            os.chmod(self.outbound, 0o711)  # as release_feedback makes it: nobody lists it
            page = note_page(title, lines)
            for notebook in notebooks:
                target = os.path.join(self.outbound, notebook_hash(secret=secret, notebook_id=notebook) + ".html")
                fd, tmp = tempfile.mkstemp(dir=self.outbound, prefix=".note-")
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(page)
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
        except OSError as error:
            log.error("cannot release the note for %s: %s", printable(name), error)


def main(args) -> int:
    """The ``watch`` command (arguments parsed by :mod:`course_lib.grading.__main__`)."""
    from .limits import Limits
    from .pool import GradingError, load_course

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")  # nbgrader's own: warnings
    log.setLevel(logging.INFO)  # one line per submission
    try:
        policy = Policy.load(args.policy) if args.policy else Policy()
        changes = {"attempts": args.attempts, "counts": args.counts, "hidden_before_deadline": args.hidden,
                   "cooldown": None if args.cooldown is None else args.cooldown * 60}
        policy = replace(policy, **{k: v for k, v in changes.items() if v is not None})
        config, _ = load_course(args.course)
        timeout = config.get("Execute", {}).get("timeout")
        limits = Limits.parse(args.limits, Limits(cell=float(timeout)) if timeout else None)
        secret = None
        if args.secret_file:
            with open(args.secret_file, encoding="utf-8") as f:
                secret = f.read().strip()
            if not secret:
                raise ValueError(f"the secret file {args.secret_file} is empty")
        watcher = Watcher(args.course, args.assignment, policy, workers=args.workers, interval=args.interval,
                          limits=limits, trust=args.trust, secret=secret, per_student=args.per_student_inputs)
    except (GradingError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def stop(*_):  # finish the gradings under way; a second signal stops at once (those are graded at restart)
        watcher.stop.set()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    watcher.run()
    return 0


__all__ = ["FairQueue", "Policy", "State", "SubmissionNotes", "Watcher", "main"]
