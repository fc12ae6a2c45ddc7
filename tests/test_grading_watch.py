"""Grading on submission (course_lib/grading/watch.py, watch_policy.py, watch_feedback.py, watch_exchange.py): the
policy, the fair queue, the feedback's additions and the record, fast; then the watcher itself on one machine,
as a subprocess beside an nbgrader exchange (slow).

The hub test (tests/test_hub.py) runs the watcher as the instructor with students submitting from their
JupyterLab terminals."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_lib.grading.watch_exchange import STUDENT_ID
from course_lib.grading.watch_feedback import SubmissionNotes
from course_lib.grading.watch_policy import FairQueue, Policy, State

# --- the policy ---------------------------------------------------------------------------------------------


def test_attempts_are_limited():
    policy = Policy(attempts=2)
    assert policy.refusal([], 0) is None
    assert policy.refusal([10.0], 20) is None
    why = policy.refusal([10.0, 20.0], 30)
    assert why and "all 2 graded attempts" in why
    assert Policy().refusal([float(i) for i in range(100)], 1000) is None  # 0: no limit


def test_cooldown_counts_from_the_last_graded_attempt():
    policy = Policy(cooldown=600)
    assert policy.refusal([], 0) is None
    why = policy.refusal([1000.0, 0.0], 1599)
    assert why and "10 minutes" in why and "1970-01-01 00:26:40 UTC" in why  # 1000 + 600 s
    assert policy.refusal([1000.0, 0.0], 1600) is None


@pytest.mark.parametrize("counts, scores, index", [
    ("last", [5, 9, 3], 2), ("best", [5, 9, 3], 1), ("best", [9, 5, 9], 2), ("best", [], None),
    ("last", [], None)])
def test_which_attempt_counts(counts, scores, index):
    assert Policy(counts=counts).counting(scores) == index


def test_policy_file(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('attempts = 3\ncounts = "best"\ncooldown_minutes = 1.5\nhidden_before_deadline = "hide"\n')
    assert Policy.load(str(path)) == Policy(attempts=3, counts="best", cooldown=90.0, hidden_before_deadline="hide")
    path.write_text("attempt = 3\n")  # a typo is an error, never a silent default
    with pytest.raises(ValueError, match="unknown settings \\['attempt'\\]"):
        Policy.load(str(path))
    path.write_text('counts = "first"\n')
    with pytest.raises(ValueError, match="'last' or 'best'"):
        Policy.load(str(path))
    path.write_text("attempts = -1\n")
    with pytest.raises(ValueError, match="attempts"):
        Policy.load(str(path))
    path.write_text("attempts = [\n")
    with pytest.raises(ValueError, match="cannot read the policy file"):
        Policy.load(str(path))
    with pytest.raises(ValueError, match="cannot read the policy file"):
        Policy.load(str(tmp_path / "missing.toml"))


@pytest.mark.parametrize("name, ok", [
    ("ana", True), ("rnnhub-ben", True), ("a.b@uni", True), ("s_1", True), ("..", False), (".hidden", False),
    ("-rf", False), ("a*", False), ("a/b", False), ("a b", False), ("é", False), ("a\n", False), ("", False),
    ("x" * 65, False)])
def test_student_ids(name, ok):
    assert bool(STUDENT_ID.match(name)) == ok


# --- the fair queue -----------------------------------------------------------------------------------------


def test_a_newer_submission_replaces_a_waiting_one():
    queue = FairQueue()
    assert queue.put("ana", "a1") is None
    assert queue.put("ana", "a2") == "a1"  # a1 is then not graded
    assert queue.get(0) == ("ana", "a2")
    assert queue.get(0) is None  # ana is being graded, nothing else waits


def test_one_running_job_per_student():
    queue = FairQueue()
    queue.put("ana", "a1")
    assert queue.get(0) == ("ana", "a1")
    queue.put("ana", "a2")
    assert queue.get(0) is None  # ana's next waits until her running job is done
    queue.done("ana")
    assert queue.get(0) == ("ana", "a2")


def test_the_student_served_least_recently_goes_first():
    """ana is being graded and submits again before ben does: ben still goes next (by arrival alone, ana's
    second job would, and ben would wait two gradings)."""
    queue = FairQueue()
    queue.put("ana", "a1")
    assert queue.get(0) == ("ana", "a1")
    queue.put("ana", "a2")
    queue.put("ben", "b1")
    queue.done("ana")
    assert queue.get(0) == ("ben", "b1")
    assert queue.get(0) == ("ana", "a2")


def simulate(workers: int, arrivals: list[tuple[float, str]], slot: float = 1.0) -> dict[str, list[float]]:
    """A discrete simulation: jobs take ``slot`` each; returns student -> waits (start - arrival) of graded jobs."""
    queue, clock, free = FairQueue(), 0.0, [0.0] * workers
    running: list[tuple[float, str]] = []
    waits: dict[str, list[float]] = {}
    pending = sorted(arrivals)
    while pending or running or queue.waiting("ana") or queue.waiting("ben"):
        events = [t for t, _ in pending[:1]] + [end for end, _ in running]
        clock = max(clock, min(events)) if events else clock
        for end, student in [r for r in running if r[0] <= clock]:
            running.remove((end, student))
            queue.done(student)
            free.append(end)
        while pending and pending[0][0] <= clock:
            t, student = pending.pop(0)
            queue.put(student, t)
        while free and (item := queue.get(0)) is not None:
            free.pop()
            student, arrived = item
            waits.setdefault(student, []).append(clock - arrived)
            running.append((clock + slot, student))
        if not pending and not running:
            break
    return waits


@pytest.mark.parametrize("workers", [1, 2])
def test_a_looping_submitter_delays_another_by_at_most_one_slot(workers):
    # ana submits ten times a slot, from the start; ben submits once, and then again, in the middle of it
    loop = [(i / 10, "ana") for i in range(300)]
    waits = simulate(workers, [*loop, (5.05, "ben"), (12.33, "ben")])
    assert len(waits["ben"]) == 2, waits
    assert max(waits["ben"]) <= 1.0, f"ben waited {waits['ben']} slots with {workers} worker(s)"
    assert len(waits["ana"]) >= 20  # the control: ana's loop kept the workers busy all along


def test_without_fairness_the_same_loop_starves_the_other():
    """The control for the test above: a plain first-in-first-out queue (no replacing, no turns) makes ben wait
    behind every one of ana's earlier submissions."""
    import collections

    fifo, clock, ben_wait = collections.deque(), 0.0, None
    arrivals = sorted([*[(i / 10, "ana") for i in range(300)], (5.05, "ben")])
    while arrivals or fifo:
        while arrivals and arrivals[0][0] <= clock:
            fifo.append(arrivals.pop(0))
        if fifo:
            t, student = fifo.popleft()
            if student == "ben":
                ben_wait = clock - t
                break
        clock += 1.0
    assert ben_wait is not None and ben_wait > 10


# --- the feedback's additions -------------------------------------------------------------------------------


def graded_cell(source: str, reason: str | None, lines: list[str], points: float = 3.0, score: float = 0.0):
    cell = new_code_cell(source, metadata={"nbgrader": {"grade": True, "solution": False, "locked": True,
                                                        "grade_id": "t", "points": points, "score": score}})
    if reason is not None:
        cell.outputs = [nbformat.from_dict({"output_type": "error", "ename": "GradingError", "evalue": reason,
                                            "traceback": ["GradingError: " + reason + "\n" + "\n".join(lines)]})]
    return cell


HIDDEN = "check(x)\n### BEGIN HIDDEN TESTS\ncheck(y)\n### END HIDDEN TESTS\n"


@pytest.mark.parametrize("withhold", [False, True])
def test_hidden_results_withheld_before_the_due_date(withhold):
    only_hidden = graded_cell(HIDDEN, "1 check(s) failed", ["- hidden test t2, the loss: loss is off by 2x"])
    both = graded_cell(HIDDEN, "2 check(s) failed", ["- test t1, dx: dx has the wrong sign",
                                                     "- hidden test t2, the loss: loss is off by 2x"])
    crashed = graded_cell(HIDDEN, "the test raised ValueError", ["- the test raised ValueError"])
    no_hidden = graded_cell("check(x)\n", "1 check(s) failed", ["- hidden test t3, odd: odd"])  # not withheld
    nb = new_notebook(cells=[only_hidden, both, crashed, no_hidden])
    resources = {"nbgrader": {"score": 0.0}}
    notes = SubmissionNotes(banner="Attempt 1 of 3.", withhold_hidden=withhold)
    nb, resources = notes.preprocess(nb, resources)
    assert nb.cells[0].source == "Attempt 1 of 3." and nb.cells[0].metadata.nbgrader.locked
    text = [json.dumps(c.get("outputs", [])) for c in nb.cells[1:]]
    if not withhold:
        assert all("hidden test t" in t for t in (text[0], text[1], text[3])), text
        assert resources["nbgrader"]["score"] == 0.0
        return
    assert nb.cells[1].outputs == [] and nb.cells[1].metadata.nbgrader.score == 3.0  # visible checks passed
    assert "loss is off" not in text[1] and "dx has the wrong sign" in text[1] and "1 visible check(s)" in text[1]
    assert "after the due date" in text[1] and "after the due date" in text[2]
    assert "hidden test t3" in text[3]  # a cell without a hidden region is left as it was
    assert resources["nbgrader"]["score"] == 3.0


# --- the record ---------------------------------------------------------------------------------------------


def test_the_record_survives_a_restart_and_refuses_a_broken_file(tmp_path):
    from course_lib.grading.watch_policy import Entry

    path = tmp_path / ".grading" / "watch" / "a.json"
    state = State(str(path))
    state.entries["ana+a+t1+x"] = Entry("ana", 1.0, "graded", score=3.0, max_score=5.0)
    state.entries["ana+a+t2+x"] = Entry("ana", 2.0, "refused", "cool-down")
    state.entries["ben+a+t3+x"] = Entry("ben", 3.0)
    state.save()
    again = State(str(path))
    assert [k for k, _ in again.graded("ana")] == ["ana+a+t1+x"] and again.graded("ben") == []
    assert again.entries["ben+a+t3+x"].status == "queued"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".state-")]  # no temporary file left
    path.write_text('{"submissions": {"x": 3}')
    with pytest.raises(ValueError, match="unreadable"):
        State(str(path))
    assert path.read_text() == '{"submissions": {"x": 3}'  # nothing overwritten


# --- the watcher on one machine -----------------------------------------------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parent))
from watch_helpers import WatchedCourse, feedback_page  # noqa: E402


@pytest.mark.slow
def test_each_submission_gets_its_own_feedback(tmp_path):
    """Two students submit with ``nbgrader submit`` while the watcher runs (one attempt each allowed): each gets
    their own feedback through ``nbgrader fetch_feedback`` (their score, their code, nothing of the other's); a
    second attempt is refused with a note; a forged submission in another's name is ignored; SIGTERM stops it."""
    course = WatchedCourse(tmp_path)
    course.start_watcher("--attempts", "1")
    try:
        marks = {"ana": "# ana's own answer 4711", "ben": "# ben's own answer 4242"}
        submitted = course.submit_at_once({"ana": (marks["ana"], False), "ben": (marks["ben"], True)})
        forged = course.forge("ben", owner=54321)  # named after ben, owned by someone else
        waits = {s: course.wait_for_feedback(s, name, since) for s, (name, since) in submitted.items()}
        print(f"\nsubmission to released feedback ({course.assignment}, 1 sandbox, both at once): "
              + ", ".join(f"{s} {w:.1f} s" for s, w in waits.items())
              + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        again, since = course.submit("ana", "# a second try")
        course.wait_for_feedback("ana", again, since)

        pages = {s: course.fetch_feedback(s) for s in ("ana", "ben")}
        assert len(pages["ana"]) == 2 and len(pages["ben"]) == 1, {s: list(p) for s, p in pages.items()}
        ana_graded = next(p for p in pages["ana"].values() if "Attempt 1 of 1" in p)
        (ana_refused,) = [p for p in pages["ana"].values() if p is not ana_graded]
        (ben_graded,) = pages["ben"].values()
        top = course.max_score
        scores = {s: re.search(r"\(Score: ([\d.]+) / ([\d.]+)\)", p) for s, p in
                  (("ana", ana_graded), ("ben", ben_graded))}
        assert float(scores["ana"].group(1)) == top == float(scores["ana"].group(2)), "ana: full marks"
        assert 0 < float(scores["ben"].group(1)) < top, scores["ben"].group(0)
        assert marks["ana"] in ana_graded and marks["ben"] not in ana_graded
        assert marks["ben"] in ben_graded and marks["ana"] not in ben_graded
        assert "BEGIN HIDDEN" not in ana_graded + ben_graded
        assert "all 1 graded attempts" in ana_refused and "second try" not in ana_refused

        record = course.record()
        assert record[submitted["ana"][0]]["status"] == "graded"
        assert record[submitted["ben"][0]]["status"] == "graded"
        assert record[again]["status"] == "refused"
        assert record[forged]["status"] == "ignored" and "forgery" in record[forged]["reason"]
        rows = course.gradebook()
        assert rows == {"ana": top, "ben": float(scores["ben"].group(1))}, rows
    finally:
        status, out = course.stop_watcher()
    assert status == 0 and "stopping" in out, out[-3000:]


@pytest.mark.slow
def test_a_malformed_or_backdated_submission_stops_nothing(tmp_path):
    """A notebook that is not JSON is graded zero and its feedback says why; the next student is graded, and with
    ``--hidden hide`` (no due date: always before it) sees no hidden check's result; a submission that claims
    (by its name and timestamp.txt) to be from 2020 gets the time it really came."""
    import datetime

    course = WatchedCourse(tmp_path)
    course.start_watcher("--hidden", "hide")
    try:
        bad, since = course.submit("ana", "", raw=b"{ not a notebook")
        course.wait_for_feedback("ana", bad, since)
        page = feedback_page(course.exchange, course.secret_of(bad), course.assignment)
        assert "malformed" in page and "Attempt 1" in page, page[-2000:]
        good, since = course.submit("ben", "# ben", wrong=True)
        course.wait_for_feedback("ben", good, since)
        assert course.record()[good]["status"] == "graded"
        page = feedback_page(course.exchange, course.secret_of(good), course.assignment)
        assert "hidden tests: their results are shown after the due date" in page
        assert "- hidden test " not in page and "visible tests only" in page
        assert course.gradebook()["ana"] == 0

        start = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        old = course.forge("cai", owner=os.geteuid(), stamp="2020-01-01 00:00:00.000000 UTC")
        course.wait_for_feedback("cai", old, time.time())
        assert course.record()[old]["status"] == "graded"
        assert course.submitted_at("cai") >= start - datetime.timedelta(seconds=5), course.submitted_at("cai")
    finally:
        status, out = course.stop_watcher()
    assert status == 0, out[-3000:]


@pytest.mark.slow
def test_the_best_attempt_stays_in_the_gradebook(tmp_path):
    """``--counts best``: a worse second attempt is graded and shown, then the best one is graded again, so the
    gradebook (what ``nbgrader export`` reads) ends with the best score."""
    course = WatchedCourse(tmp_path)
    course.start_watcher("--counts", "best")
    try:
        first, since = course.submit("ana", "# first")
        course.wait_for_feedback("ana", first, since)
        top = course.max_score
        assert course.gradebook()["ana"] == top
        second, since = course.submit("ana", "# second", wrong=True)
        course.wait_for_feedback("ana", second, since)
        page = feedback_page(course.exchange, course.secret_of(second), course.assignment)
        assert f"Your best attempt counts: attempt 1 ({top:g} / {top:g})" in page, page[-3000:]
        worse = course.record()[second]["score"]
        assert worse < top
        deadline = time.time() + 300  # the best attempt's regrade follows (a guard against a hang)
        while "graded again" not in course.log.read_text():
            assert time.time() < deadline, course.log.read_text()[-3000:]
            time.sleep(0.5)
        assert course.gradebook()["ana"] == top
    finally:
        status, out = course.stop_watcher()
    assert status == 0, out[-3000:]
