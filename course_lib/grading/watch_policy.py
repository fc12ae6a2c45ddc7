"""What the watcher (:mod:`.watch`) decides by: the instructor's policy, the fair queue, and its record.

The instructor's :class:`Policy` (a TOML file and/or options) says how many attempts are graded, which one
counts (``last``, or ``best``: a worse attempt is graded and shown, then the best one is graded again so that
the gradebook holds it), the cool-down between attempts, and whether hidden tests' results are shown before
the due date (``show``: their pass/fail and pointed message, as the course's feedback always shows them,
never their source, inputs or expected values; ``hide``: before the due date the feedback counts and shows the
visible checks only). A submission that the policy refuses is not graded; its feedback says why.

Fairness (:class:`FairQueue`): each student has at most one waiting job (a newer submission replaces a waiting
one, which is then not graded and not counted) and the next job goes to the student served least recently, so a
student who submits in a loop delays another by at most the jobs already running.

The record (:class:`State`): every submission seen, in ``.grading/watch/<assignment>.json``, written
atomically, so a restart neither loses nor regrades one.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, fields

import tomllib

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


__all__ = ["Entry", "FairQueue", "Policy", "State"]
