"""The per-day late penalty (course_lib/grading/late.py) and the extension command."""

from __future__ import annotations

import pytest

from course_lib.grading.late import PerDayPenalty


@pytest.mark.parametrize("seconds_late, penalty", [
    (0, None), (15 * 60, None),          # on time, or within the grace period
    (15 * 60 + 1, 1.0), (86400, 1.0),    # first started day: 10% of 10 points
    (86400 + 1, 2.0), (3 * 86400, 3.0),
    (30 * 86400, 10.0),                   # never more than the score
])
def test_per_day_penalty(seconds_late, penalty):
    plugin = PerDayPenalty(percent_per_day=10, grace_minutes=15)
    assert plugin.late_submission_penalty("ana", 10.0, seconds_late) == penalty


def test_per_day_penalty_of_a_zero_score_is_zero():
    assert PerDayPenalty().late_submission_penalty("ana", 0.0, 5 * 86400) == 0.0


@pytest.mark.slow
def test_extension_needs_a_graded_submission_and_moves_the_due_date(tmp_path):
    from grading_helpers import make_course, run

    course = make_course(tmp_path / "course")
    run(course, "nbgrader", "db", "assignment", "add", "01_feedforward", "--duedate=2027-02-01 17:00:00 UTC")
    missing = run(course, "course_lib.grading", "extension", "01_feedforward", "ana", "--days", "1", check=False)
    assert missing.returncode == 2 and "has no submission of 01_feedforward" in missing.stderr
    bad = run(course, "course_lib.grading", "extension", "01_feedforward", "ana", check=False)
    assert bad.returncode == 2 and "--days" in bad.stderr

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.add_student("ana")
        gb.add_submission("01_feedforward", "ana")
    done = run(course, "course_lib.grading", "extension", "01_feedforward", "ana", "--days", "1.5")
    assert "due 2027-02-03 05:00:00 UTC" in done.stdout
    removed = run(course, "course_lib.grading", "extension", "01_feedforward", "ana", "--remove")
    assert "due 2027-02-01 17:00:00 UTC" in removed.stdout
