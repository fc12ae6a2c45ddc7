"""What the class got wrong: for each question, the share of students who made each named mistake.

Every check of a graded test cell may list the mistakes it recognises (``mistakes={"did you average instead of
sum over the batch?": ...}`` in :mod:`course_lib.checks`), and the trusted grader judges each submission against
the reference run's list. This module turns those verdicts into a class report, per question:

* **passed**;
* **named mistakes**: the share of students whose failed checks include each mistake, by its message (a
  student who made two counts under both);
* **failed otherwise**: failed, but no named mistake matched (the messages then say what differed);
* **not answered** (the test met the release's ``NotImplementedError``), **timed out or crashed**, and
  **not submitted** (a student of the gradebook with no submission of the assignment);
* **visible vs hidden**: how many failed a check of the visible test (they could see it before submitting),
  and how many passed every visible check but failed a hidden one.

``python -m course_lib.grading autograde`` keeps every verdict in ``reports/<assignment>/verdicts.json``
(merged across runs, so a regrade of one student updates their row) and writes ``misconceptions.csv`` and
``misconceptions.html`` beside it; ``python -m course_lib.grading misconceptions [ASSIGNMENT ...]`` rebuilds
them from ``verdicts.json`` and the gradebook, and with several assignments (or none: every one graded so
far) also the course's ``reports/misconceptions.{csv,html}``. Student ids appear only with ``--names``.
The HTML page is self-contained (no script, no request), one bar chart per question with the same numbers
in a table, so that it reads in a screen reader too.
"""

from __future__ import annotations

import csv
import html
import json
import os
from dataclasses import dataclass, field

from course_lib.checks import message, message_head, names

STATUSES = ("passed", "mistake", "other", "unanswered", "timeout", "missing")
LABELS = {"passed": "passed", "mistake": "made a named mistake", "other": "failed otherwise",
          "unanswered": "not answered", "timeout": "timed out or crashed", "missing": "not submitted"}
COLOURS = {"passed": "#1a7f37", "mistake": "#b35900", "other": "#8250df", "unanswered": "#57606a",
           "timeout": "#cf222e", "missing": "#8c959f", "named": "#d4a72c"}


def catalogue(reference: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """grade_id -> its checks (test, key, spec, the messages of their named mistakes), from reference records."""
    return {grade_id: [{"test": r["test"], "key": r["key"], "spec": r["spec"],
                        "mistakes": list(r.get("mistakes") or {})} for r in records]
            for grade_id, records in reference.items()}


def verdict_record(passed: bool, failed: list[str], ename: str | None = None, status: str | None = None) -> dict:
    """One student's result on one question, as kept in ``verdicts.json``."""
    return {"passed": bool(passed), "failed": [str(m) for m in failed], "ename": ename, "status": status}


def classify(checks: list[dict], record: dict | None) -> tuple[str, set[str], bool, bool]:
    """(status, named mistakes, a visible check failed, a hidden check failed) of one student's question."""
    if record is None:
        return "missing", set(), False, False
    if record.get("passed"):
        return "passed", set(), False, False
    if record.get("status") not in (None, "ok"):
        return "timeout", set(), False, False
    if record.get("ename") == "NotImplementedError":
        return "unanswered", set(), False, False
    named, visible, hidden = set(), False, False
    for failure in record.get("failed") or []:
        for check in checks:
            hits = {m for m in check["mistakes"] if failure == message(check["test"], check["key"], check["spec"], m)}
            # the key is said once (checks.message): after the check's description, or in the diagnosis
            head = message_head(check["test"], check["key"], check["spec"])
            if hits or (failure.startswith(head) and names(failure[len(head):], check["key"])):
                named |= hits
                if check["spec"].get("hidden"):
                    hidden = True
                else:
                    visible = True
                break
    return ("mistake" if named else "other"), named, visible, hidden


@dataclass
class QuestionTally:
    """The class on one question."""

    assignment: str
    grade_id: str
    points: float
    students: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in STATUSES})
    mistakes: dict[str, list[str]] = field(default_factory=dict)  # message -> students (every listed one)
    visible_failed: list[str] = field(default_factory=list)
    hidden_only: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return sum(len(v) for v in self.students.values())

    def share(self, count: int) -> float:
        return count / self.n if self.n else 0.0


def tally(assignment: str, checks: dict[str, list[dict]], points: dict[str, float],
          results: dict[str, dict[str, dict]], roster: list[str] | None = None) -> list[QuestionTally]:
    """Per question (in ``checks``' order) the class's counts; ``roster`` adds students with no submission."""
    students = sorted(set(results) | set(roster or []))
    tallies = []
    for grade_id, question_checks in checks.items():
        q = QuestionTally(assignment, grade_id, float(points.get(grade_id, 0)))
        q.mistakes = {m: [] for c in question_checks for m in c["mistakes"]}
        for student in students:
            record = results[student].get(grade_id) if student in results else None
            status, named, visible, hidden = classify(question_checks, record)
            q.students[status].append(student)
            for m in named:
                q.mistakes[m].append(student)
            if visible:
                q.visible_failed.append(student)
            elif hidden:
                q.hidden_only.append(student)
        tallies.append(q)
    return tallies


# -- files ---------------------------------------------------------------------------------------------------
def load_verdicts(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} cannot be read ({error}): grade the assignment again to rebuild it") from None
    if not isinstance(data, dict) or not isinstance(data.get("students"), dict):
        raise ValueError(f"{path} is not a verdicts file of course_lib.grading")
    return data


def save_verdicts(path: str, assignment: str, checks: dict[str, list[dict]], points: dict[str, float],
                  results: dict[str, dict[str, dict]]) -> dict:
    """Merge this run's results into ``verdicts.json`` (a regrade replaces only the students it graded)."""
    data = load_verdicts(path)
    students = dict(data.get("students") or {})
    students.update(results)
    data = {"assignment": assignment, "checks": checks, "points": points, "students": students}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return data


def tallies_of(data: dict, roster: list[str] | None = None) -> list[QuestionTally]:
    return tally(data["assignment"], data["checks"], data["points"], data["students"], roster)


def write_csv(tallies: list[QuestionTally], path: str, names: bool = False) -> None:
    """One row per question and category (and per named mistake): count, share, the students if asked."""
    from .summary import csv_cell

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["assignment", "question", "points", "category", "mistake", "students", "of", "share"]
                        + (["student_ids"] if names else []))
        for q in tallies:
            rows = [(LABELS[s], "", q.students[s]) for s in STATUSES]
            rows += [("named mistake", m, who) for m, who in q.mistakes.items()]
            rows += [("failed a visible check", "", q.visible_failed),
                     ("passed the visible checks, failed a hidden one", "", q.hidden_only)]
            for category, mistake, who in rows:
                writer.writerow([csv_cell(q.assignment), csv_cell(q.grade_id), q.points, category,
                                 csv_cell(mistake), len(who), q.n, f"{q.share(len(who)):.3f}"]
                                + ([csv_cell(" ".join(who))] if names else []))


def _bars(q: QuestionTally) -> list[tuple[str, str, list[str]]]:
    """(label, colour, students) of the bars of one question's chart, in reading order."""
    bars = [(LABELS["passed"], COLOURS["passed"], q.students["passed"])]
    bars += [(f"mistake: {m}", COLOURS["named"], who) for m, who in
             sorted(q.mistakes.items(), key=lambda item: -len(item[1])) if who]
    bars += [(LABELS[s], COLOURS[s], q.students[s]) for s in ("other", "unanswered", "timeout", "missing")]
    return bars


def _wrap(text: str, width: int = 62, lines: int = 3) -> list[str]:
    import textwrap

    wrapped = textwrap.wrap(text, width) or [""]
    return wrapped[:lines - 1] + [textwrap.shorten(" ".join(wrapped[lines - 1:]), width, placeholder="...")] \
        if len(wrapped) > lines else wrapped


def _chart(q: QuestionTally, chart_id: str) -> str:
    bars = [(label, colour, who, _wrap(label)) for label, colour, who in _bars(q)]
    width, label_w, bar_w, line = 880, 450, 330, 16
    heights = [max(26, 10 + line * len(lines)) for *_, lines in bars]
    height = sum(heights) + 8
    parts = [f'<svg role="img" aria-labelledby="{chart_id}-t" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<title id="{chart_id}-t">{html.escape(q.grade_id)}: '
             + html.escape("; ".join(f"{label} {q.share(len(who)):.0%}" for label, _, who, _ in bars)) + "</title>"]
    y = 4
    for (_, colour, who, lines), row in zip(bars, heights, strict=True):
        share = q.share(len(who))
        top = y + row / 2 - line * (len(lines) - 1) / 2 + 4.5
        spans = "".join(f'<tspan x="{label_w - 8}" y="{top + i * line:.1f}">{html.escape(text)}</tspan>'
                        for i, text in enumerate(lines))
        parts.append(f'<text text-anchor="end" font-size="13" fill="#1f2328">{spans}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + row / 2 - 9:.1f}" width="{bar_w * share:.1f}" height="18" '
                     f'fill="{colour}"/>')
        parts.append(f'<text x="{label_w + bar_w * share + 6:.1f}" y="{y + row / 2 + 4.5:.1f}" font-size="13" '
                     f'fill="#1f2328">{len(who)} ({share:.0%})</text>')
        y += row
    parts.append("</svg>")
    return "\n".join(parts)


def _table(q: QuestionTally, names: bool) -> str:
    rows = [(label, who) for label, _, who in _bars(q)]
    rows += [("failed a visible check", q.visible_failed),
             ("passed the visible checks, failed a hidden one", q.hidden_only)]
    head = "<tr><th scope=\"col\">outcome</th><th scope=\"col\">students</th><th scope=\"col\">share</th>" + \
           ("<th scope=\"col\">who</th>" if names else "") + "</tr>"
    body = "".join(f"<tr><th scope=\"row\">{html.escape(label)}</th><td>{len(who)}</td>"
                   f"<td>{q.share(len(who)):.0%}</td>" + (f"<td>{html.escape(' '.join(who))}</td>" if names else "")
                   + "</tr>" for label, who in rows)
    return f"<table><caption>{html.escape(q.grade_id)}: the numbers of the chart</caption>{head}{body}</table>"


def write_html(tallies: list[QuestionTally], path: str, title: str, names: bool = False) -> None:
    """A page an instructor reads in a minute: per question, a bar chart and its table."""
    sections, current = [], None
    for i, q in enumerate(tallies):
        if q.assignment != current:
            current = q.assignment
            sections.append(f"<h2>{html.escape(q.assignment)}</h2>")
        worst = max(q.mistakes.items(), key=lambda item: len(item[1]), default=(None, []))
        lead = (f"Most common named mistake: <q>{html.escape(worst[0])}</q> ({len(worst[1])} of {q.n})."
                if worst[1] else "No named mistake was made.")
        sections.append(
            f'<section aria-labelledby="q{i}"><h3 id="q{i}">{html.escape(q.grade_id)} ({q.points:g} points): '
            f"{q.share(len(q.students['passed'])):.0%} passed</h3><p>{lead} "
            f"{len(q.hidden_only)} passed the visible test but failed a hidden check.</p>"
            f"<figure>{_chart(q, f'c{i}')}</figure><details><summary>Table</summary>{_table(q, names)}"
            "</details></section>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, sans-serif; color: #1f2328; background: #fff; max-width: 920px; margin: 2em auto;
       padding: 0 1em; line-height: 1.45; }}
h3 {{ margin-bottom: 0.2em; }} figure {{ margin: 0.5em 0; overflow-x: auto; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }} th, td {{ border: 1px solid #d0d7de; padding: 2px 8px;
       text-align: left; font-weight: normal; }} caption {{ text-align: left; color: #57606a; }}
</style></head>
<body><main>
<h1>{html.escape(title)}</h1>
<p>Per question: the share of the class that passed, that made each mistake the tests name (a student may
make several), that failed otherwise, did not answer, timed out or did not submit. Student ids are
{"listed in the tables" if names else "left out (add --names to list them)"}.</p>
{"".join(sections)}
</main></body></html>
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)


def write_reports(tallies: list[QuestionTally], folder: str, title: str, names: bool = False) -> dict[str, str]:
    os.makedirs(folder, exist_ok=True)
    paths = {"misconceptions_csv": os.path.join(folder, "misconceptions.csv"),
             "misconceptions_html": os.path.join(folder, "misconceptions.html")}
    write_csv(tallies, paths["misconceptions_csv"], names)
    write_html(tallies, paths["misconceptions_html"], title, names)
    return paths


def roster(db_url: str) -> list[str]:
    """Every student of the gradebook (those with no submission count as not submitted)."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        return sorted(s.id for s in gb.students)


def rebuild(course: str, assignments: list[str] | None = None, names: bool = False,
            db_url: str | None = None) -> list[str]:
    """Write the reports of ``assignments`` (default: every one with a ``verdicts.json``) from their verdicts
    and the gradebook's roster; with more than one, also the course's ``reports/misconceptions.*``."""
    from .pool import GradingError, load_course

    _, coursedir = load_course(course, db_url)
    reports = os.path.join(coursedir.root, "reports")
    if not assignments:
        assignments = sorted(a for a in (os.listdir(reports) if os.path.isdir(reports) else [])
                             if os.path.exists(os.path.join(reports, a, "verdicts.json")))
        if not assignments:
            raise GradingError(f"no graded assignment under {reports}: run python -m course_lib.grading "
                               "autograde first")
    students = roster(coursedir.db_url)
    written, everything = [], []
    for assignment in assignments:
        path = os.path.join(reports, assignment, "verdicts.json")
        data = load_verdicts(path)
        if not data:
            raise GradingError(f"{path} does not exist: grade {assignment} with python -m course_lib.grading "
                               "autograde first")
        tallies = tallies_of(data, students)
        everything += tallies
        written += write_reports(tallies, os.path.dirname(path), f"{assignment}: what the class got wrong",
                                 names).values()
    if len(assignments) > 1:
        written += write_reports(everything, reports, "The course: what the class got wrong", names).values()
    return written
