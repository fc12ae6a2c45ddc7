"""Grading on submission: ``python -m course_lib.grading watch ASSIGNMENT``, run in the course directory.

A process beside the hub (the instructor starts it, in a terminal left open or as a service) that watches
nbgrader's exchange: each new submission of ``ASSIGNMENT`` in ``<exchange>/<course>/inbound`` is copied to
``submitted/<student>/<assignment>/``, graded in the sandbox (:class:`~course_lib.grading.pool.Grader`, as
``autograde --student`` does), and its feedback written (``generate_feedback --student --force``) and released
(``release_feedback --student``), so ``nbgrader fetch_feedback`` (or the Lab extension) shows it, filed under
that submission's time, usually within seconds.

What it grades, and in which order, follows :mod:`.watch_policy` (the instructor's :class:`.Policy`: attempts,
which attempt counts, the cool-down, hidden tests before the due date; the :class:`.FairQueue`; the record,
:class:`.State`); what it adds to the feedback, and the page a submission that is not graded gets, is
:mod:`.watch_feedback`.

What the watcher trusts: only what it sees itself. A submission's time is when its folder in the inbound
folder last changed (its ctime, which no user can set back; a student can write any name or
``timestamp.txt`` there), and it is the ``timestamp.txt`` the gradebook gets; who submitted it, and how it
is copied and answered, is :mod:`.watch_exchange`. Attempts are recorded in
``.grading/watch/<assignment>.json`` (written atomically), so a restart neither loses nor regrades them.
"""

from __future__ import annotations

import copy
import datetime
import logging
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, replace

from nbgrader.preprocessors import GetGrades

from .summary import printable
from .watch_exchange import copy_submission, read_secret, release_page, unusable
from .watch_feedback import SubmissionNotes, note_page
from .watch_policy import Entry, FairQueue, Policy, State

log = logging.getLogger("course_lib.grading.watch")

SETTLE_SECONDS = 1.0  # a submission is taken once its submission_secret.txt (nbgrader writes it last) is this old
INCOMPLETE_SECONDS = 300  # a folder without submission_secret.txt this long is not an nbgrader submission
MAX_TRIES = 3  # grading failures on the grader's side (not the submission's) before giving up on a submission


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
            why = unusable(item, student)
            if why is None:
                secret = read_secret(self.inbound, name)
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
        (see :func:`.watch_exchange.copy_submission`); returns what was left out."""
        source = os.path.join(self.inbound, name)
        dest = self.coursedir.format_path(self.coursedir.submitted_directory, student, self.assignment)
        return copy_submission(source, dest, self.assignment, when)

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

    def _note(self, name: str, title: str, lines: list[str], notebooks: set[str] | None = None) -> None:
        """Release a note as the feedback of inbound submission ``name`` (for ``notebooks``, default: each of
        the assignment's and the submission's)."""
        secret = read_secret(self.inbound, name)
        if secret is None:
            return
        try:
            if notebooks is None:
                notebooks = set(self.grader.infos)
                with os.scandir(os.path.join(self.inbound, name)) as entries:
                    notebooks |= {e.name[:-6] for e in entries if e.name.endswith(".ipynb")}
            release_page(self.outbound, secret, notebooks, note_page(title, lines))
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


__all__ = ["Job", "Watcher", "main"]
