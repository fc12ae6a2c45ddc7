"""A late-submission penalty per day, as an nbgrader plugin (both graders apply it).

nbgrader's own plugin knows two penalties: none, or zero for any late submission. Most syllabi take a share
of the score per day (or part of a day) late, after a short grace period, which this plugin does. Due dates
and extensions are nbgrader's own: ``nbgrader db assignment add <id> --duedate=...`` and
``Gradebook.grant_extension`` (``deploy/RUNBOOK.md`` shows both); nbgrader then passes each notebook's lateness,
extension deducted, to the plugin. Enable it in ``nbgrader_config.py``::

    c.AssignLatePenalties.plugin_class = "course_lib.grading.late.PerDayPenalty"
    c.PerDayPenalty.percent_per_day = 10   # of the notebook's score, per started day late
    c.PerDayPenalty.grace_minutes = 15     # lateness forgiven (clock skew, a slow upload)
"""

from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float


class PerDayPenalty(LateSubmissionPlugin):
    """Deduct ``percent_per_day`` percent of a notebook's score for each started day late, never below 0."""

    percent_per_day = Float(10.0, help="Percent of the score deducted per started day late.").tag(config=True)
    grace_minutes = Float(0.0, help="Lateness (minutes) that costs nothing.").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        if total_seconds_late <= self.grace_minutes * 60:
            return None
        days = math.ceil(total_seconds_late / 86400)
        penalty = min(score, score * self.percent_per_day / 100 * days)
        self.log.info("%s: %d day(s) late, penalty %.2f of %.2f", student_id, days, penalty, score)
        return penalty
