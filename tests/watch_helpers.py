"""Helpers of the grading-on-submission test and benchmark: a course with an exchange, students who submit with
``nbgrader submit`` and fetch with ``nbgrader fetch_feedback``, and the watcher as a subprocess."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from grading_helpers import ASSIGNMENT, env, index_of, make_course, run, source_nb
from nbgrader.utils import notebook_hash

COURSE_ID = "rnn-course"
WRONG = ("softmax_loss", "def softmax_loss(s, y):\n    return 0.0, np.zeros_like(s)\n")


def feedback_page(exchange: Path, secret: str, notebook: str = ASSIGNMENT) -> str:
    """The released feedback page of the submission with ``secret``, as ``fetch_feedback`` finds it."""
    name = notebook_hash(secret=secret, notebook_id=notebook)
    return (exchange / COURSE_ID / "feedback" / f"{name}.html").read_text()


class WatchedCourse:
    """A course directory with its exchange (``<course>/exchange``), the assignment released."""

    def __init__(self, tmp: Path, assignment: str = ASSIGNMENT):
        self.tmp, self.assignment = tmp, assignment
        self.course = make_course(tmp / "course", assignment)
        run(self.course, "nbgrader", "release_assignment", assignment)
        self.exchange = self.course / "exchange"
        self.inbound = self.exchange / COURSE_ID / "inbound"
        self.log = tmp / "watch.log"
        self.process = None

    def start_watcher(self, *options: str, timeout: float = 600) -> subprocess.Popen:
        """``python -m course_lib.grading watch`` in the course directory; returns once it says it is ready."""
        out = open(self.log, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "course_lib.grading", "watch", self.assignment, "--interval", "0.5", *options],
            cwd=self.course, env=env(), stdout=out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout  # the first reference run of a fresh course takes a while
        while "ready" not in self.log.read_text():
            assert self.process.poll() is None, f"the watcher exited:\n{self.log.read_text()[-5000:]}"
            assert time.monotonic() < deadline, f"the watcher is not ready:\n{self.log.read_text()[-5000:]}"
            time.sleep(0.2)
        return self.process

    def stop_watcher(self, timeout: float = 120) -> tuple[int, str]:
        """SIGTERM, then (exit status, the watcher's output)."""
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.process.returncode, self.log.read_text()

    def notebook(self, mark: str, wrong: bool = False):
        """The solution (or one wrong function), with ``mark`` (a comment) at the top of an answer cell."""
        nb = source_nb()
        if wrong:
            nb.cells[index_of(nb, WRONG[0])].source = WRONG[1]
        cell = nb.cells[index_of(nb, "affine_forward")]
        cell.source = f"{mark}\n{cell.source}"
        return nb

    def submit(self, student: str, mark: str, wrong: bool = False, raw: bytes | None = None) -> tuple[str, float]:
        """``nbgrader submit`` as ``student`` (from a folder of theirs, their own cache); returns the inbound
        name and the time the command returned."""
        folder = self.tmp / "students" / student / self.assignment
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.assignment}.ipynb"
        if raw is not None:
            path.write_bytes(raw)
        else:
            nbformat.write(self.notebook(mark, wrong), path)
        before = set(os.listdir(self.inbound))
        self.student_command(student, "submit")
        since = time.time()
        (name,) = [n for n in set(os.listdir(self.inbound)) - before if n.startswith(f"{student}+")]
        return name, since

    def submit_at_once(self, notebooks: dict[str, tuple[str, bool]]) -> dict[str, tuple[str, float]]:
        """``submit`` for several students at the same time (student -> (mark, wrong))."""
        with ThreadPoolExecutor(len(notebooks)) as pool:
            futures = {s: pool.submit(self.submit, s, mark, wrong) for s, (mark, wrong) in notebooks.items()}
            return {s: f.result() for s, f in futures.items()}

    def student_command(self, student: str, command: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "nbgrader", command, self.assignment, "--course", COURSE_ID, "--student", student,
             f"--Exchange.root={self.exchange}", f"--Exchange.cache={self.tmp / 'cache' / student}"],
            cwd=self.tmp / "students" / student, env=env(), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"nbgrader {command} as {student}:\n{result.stdout}\n{result.stderr}"

    def forge(self, student: str, owner: int, stamp: str | None = None) -> str:
        """A submission in ``student``'s name made by hand (owned by uid ``owner``), claiming time ``stamp``."""
        stamp = stamp or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z")
        name = f"{student}+{self.assignment}+{stamp}+forged"
        folder = self.inbound / name
        folder.mkdir()
        nbformat.write(self.notebook("# forged"), folder / f"{self.assignment}.ipynb")
        (folder / "timestamp.txt").write_text(stamp)
        (folder / "submission_secret.txt").write_text("f" * 128)
        for path in (folder, *folder.iterdir()):
            os.chown(path, owner, owner)
        return name

    def secret_of(self, name: str) -> str:
        return (self.inbound / name / "submission_secret.txt").read_text()

    def wait_for_feedback(self, student: str, name: str, since: float, timeout: float = 300) -> float:
        """Seconds from ``since`` until the feedback of inbound submission ``name`` is released."""
        target = (self.exchange / COURSE_ID / "feedback" /
                  f"{notebook_hash(secret=self.secret_of(name), notebook_id=self.assignment)}.html")
        while not target.exists():
            assert self.process.poll() is None, f"the watcher exited:\n{self.log.read_text()[-5000:]}"
            assert time.time() - since < timeout, \
                f"no feedback for {student} after {timeout} s:\n{self.log.read_text()[-5000:]}"
            time.sleep(0.1)
        return time.time() - since

    def fetch_feedback(self, student: str) -> dict[str, str]:
        """``nbgrader fetch_feedback`` as ``student``: feedback folder -> the page's text."""
        shutil.rmtree(self.tmp / "students" / student / self.assignment / "feedback", ignore_errors=True)
        self.student_command(student, "fetch_feedback")
        found = (self.tmp / "students" / student / self.assignment / "feedback").glob(f"*/{self.assignment}.html")
        return {p.parent.name: p.read_text() for p in found}

    def record(self) -> dict[str, dict]:
        return json.loads((self.course / ".grading" / "watch" / f"{self.assignment}.json").read_text())["submissions"]

    def submitted_at(self, student: str) -> datetime.datetime:
        """The gradebook's submission time (UTC) of ``student``."""
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            return gb.find_submission(self.assignment, student).timestamp

    def gradebook(self) -> dict[str, float]:
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            return {s.student.id: float(s.score) for s in gb.find_assignment(self.assignment).submissions}

    @property
    def max_score(self) -> float:
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            return float(gb.find_assignment(self.assignment).max_score)
