"""The class list from an LMS, and the grades back to it: Canvas and Moodle CSV files.

``python -m course_lib.grading lms roster FILE --lms canvas|moodle`` reads the CSV an LMS exports (Canvas:
Grades > Export; Moodle: Grades > Export > Plain text file, or the participants' download) and puts every
student into nbgrader's gradebook (``nbgrader db student list`` shows them), with their names, e-mail and LMS
id. Their nbgrader id, which must be the name of their Unix (or hub) account, comes from one column of the
file: Canvas's ``SIS Login ID`` by default, Moodle's ``Username`` (or ``--id-column``, or
``--email-local-part`` for the part of the e-mail address before the ``@``). Canvas's ``Points Possible``
row and its ``Test Student`` are skipped; rows without an id are reported, not guessed.

``python -m course_lib.grading lms grades --lms canvas|moodle --out FILE`` writes the gradebook's scores
(the raw score less nbgrader's late penalty, as ``nbgrader export``'s ``score``) in the columns that LMS imports:

* Canvas (Grades > Import): ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section`` (copied from
  the roster's row, so Canvas matches each student), a ``Points Possible`` row, and one column per
  assignment, named as in nbgrader, or ``--column 01_feedforward="Assignment 1 (1234)"`` to fill an
  assignment that exists in Canvas (its export names it ``<name> (<id>)``); a new name makes Canvas create
  the assignment.
* Moodle (Grades > Import > CSV file): ``First name``, ``Last name``, ``ID number``, ``Email address``, then
  one column per assignment; in Moodle's import form map "Identify user by" from ``Email address`` to
  ``Email address``, and each assignment column to its grade item.

A student with no submission gets 0 (``--missing blank`` leaves the cell empty). The roster's rows are kept
in ``.grading/lms/roster.json`` (readable only by the instructor), so the export repeats what the LMS gave.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

CANVAS_ID_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_ID_COLUMNS = ("First name", "Last name", "ID number", "Email address")
DEFAULT_ID_COLUMN = {"canvas": "SIS Login ID", "moodle": "Username"}


class LMSError(ValueError):
    """A roster or an export that cannot be used, with what to do about it."""


@dataclass
class Person:
    id: str
    first_name: str
    last_name: str
    email: str
    lms_user_id: str
    row: dict


def _rows(path: str) -> tuple[list[str], list[dict]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LMSError(f"cannot read {path}: {error}") from None


def read_roster(path: str, lms: str, id_column: str | None = None,
                email_local_part: bool = False) -> tuple[list[Person], list[str]]:
    """The students of an LMS export, and one line per row that was left out (and why)."""
    if lms not in DEFAULT_ID_COLUMN:
        raise LMSError(f"unknown LMS {lms!r}: canvas or moodle")
    header, rows = _rows(path)
    needed = ("Student", "ID") if lms == "canvas" else ("First name", "Last name")
    column = "Email address" if email_local_part else (id_column or DEFAULT_ID_COLUMN[lms])
    if email_local_part and lms == "canvas":
        raise LMSError("Canvas's gradebook export has no e-mail column: use --id-column")
    missing = [c for c in (*needed, column) if c not in header]
    if missing:
        raise LMSError(f"{path} has no column {', '.join(repr(m) for m in missing)} (its columns: "
                       f"{', '.join(header) or 'none'}): is it a {lms} export? Choose the id with --id-column")
    people, skipped, seen = [], [], set()
    for n, row in enumerate(rows, start=2):
        row = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if lms == "canvas":
            if row["Student"].startswith("Points Possible") or row["Student"] in ("Test Student", "Student, Test"):
                continue
            last, _, first = row["Student"].partition(",")
            person = dict(first_name=first.strip(), last_name=last.strip(), email="", lms_user_id=row["ID"])
        else:
            person = dict(first_name=row["First name"], last_name=row["Last name"],
                          email=row.get("Email address", ""), lms_user_id=row.get("ID number", ""))
        student = row.get(column, "")
        if email_local_part:
            student = student.partition("@")[0] if "@" in student else ""
        if not student:
            skipped.append(f"line {n} ({person['first_name']} {person['last_name']}): no {column}")
            continue
        if student in seen:
            skipped.append(f"line {n}: {student!r} appears twice (kept the first)")
            continue
        seen.add(student)
        people.append(Person(id=student, row=row, **person))
    if not people:
        raise LMSError(f"{path} lists no student with a {column}")
    return people, skipped


def import_roster(course: str, people: list[Person], lms: str, db_url: str | None = None) -> str:
    """Every person into the gradebook (created or updated); the LMS rows into ``.grading/lms/``."""
    from nbgrader.api import Gradebook

    from .pool import load_course

    _, coursedir = load_course(course, db_url)
    with Gradebook(coursedir.db_url) as gb:
        for p in people:
            gb.update_or_create_student(p.id, first_name=p.first_name, last_name=p.last_name,
                                        email=p.email or None, lms_user_id=p.lms_user_id or None)
    folder = os.path.join(coursedir.root, ".grading", "lms")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, "roster.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"lms": lms, "students": {p.id: p.row for p in people}}, f, indent=1)
    return path


def gradebook_scores(db_url: str, assignments: list[str] | None = None
                     ) -> tuple[list[str], dict[str, float], dict[str, dict[str, float | None]], dict[str, dict]]:
    """(assignments, their maximum, student -> assignment -> score or None, student -> names) from nbgrader."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        names = assignments or [a.name for a in sorted(gb.assignments, key=lambda a: (a.duedate is None, a.name))]
        maxima, scores, people = {}, {}, {}
        for name in names:
            try:
                maxima[name] = float(gb.find_assignment(name).max_score)
            except MissingEntry:
                raise LMSError(f"assignment {name!r} is not in the gradebook") from None
        for student in gb.students:
            people[student.id] = {"first_name": student.first_name or "", "last_name": student.last_name or "",
                                  "email": student.email or "", "lms_user_id": student.lms_user_id or ""}
            scores[student.id] = {}
            for name in names:
                try:
                    submission = gb.find_submission(name, student.id)
                except MissingEntry:
                    scores[student.id][name] = None
                    continue
                # as ``nbgrader export``'s score: the raw score less the late penalty, never below 0
                penalty = float(submission.late_submission_penalty or 0)
                scores[student.id][name] = max(0.0, float(submission.score) - penalty)
    return names, maxima, scores, people


def write_grades(path: str, lms: str, names: list[str], maxima: dict[str, float],
                 scores: dict[str, dict[str, float | None]], people: dict[str, dict], roster: dict[str, dict],
                 columns: dict[str, str] | None = None, missing: str = "zero") -> list[str]:
    """The LMS's import file; returns the students left out (not on the roster an export can match)."""
    from .summary import csv_cell

    columns = {name: (columns or {}).get(name, name) for name in names}
    left_out = []

    def score(student: str, name: str) -> str:
        value = scores[student][name]
        if value is None:
            return "0" if missing == "zero" else ""
        return f"{value:g}"

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if lms == "canvas":
            writer.writerow([*CANVAS_ID_COLUMNS, *columns.values()])
            writer.writerow(["Points Possible", "", "", "", "", *(f"{maxima[n]:g}" for n in names)])
        else:
            writer.writerow([*MOODLE_ID_COLUMNS, *columns.values()])
        for student in sorted(scores):
            if lms == "canvas":
                row = roster.get(student)
                if row is None or not row.get("ID"):  # Canvas matches on its own ids: never guess them
                    left_out.append(student)
                    continue
                ids = [row.get(c, "") for c in CANVAS_ID_COLUMNS]
            else:
                p = people[student]
                row = roster.get(student, {})
                ids = [p["first_name"], p["last_name"], row.get("ID number", p["lms_user_id"]),
                       row.get("Email address", p["email"])]
                if not ids[3]:
                    left_out.append(student)
                    continue
            writer.writerow([*(csv_cell(v) for v in ids), *(score(student, n) for n in names)])
    return left_out


def export_grades(course: str, path: str, lms: str, assignments: list[str] | None = None,
                  columns: dict[str, str] | None = None, missing: str = "zero",
                  db_url: str | None = None) -> list[str]:
    from .pool import load_course

    _, coursedir = load_course(course, db_url)
    roster_path = os.path.join(coursedir.root, ".grading", "lms", "roster.json")
    roster = {}
    if os.path.exists(roster_path):
        with open(roster_path, encoding="utf-8") as f:
            roster = json.load(f).get("students", {})
    elif lms == "canvas":
        raise LMSError("no roster imported: run 'python -m course_lib.grading lms roster <canvas export> "
                       "--lms canvas' first (Canvas matches students by its own ids)")
    names, maxima, scores, people = gradebook_scores(coursedir.db_url, assignments)
    unknown = set(columns or {}) - set(names)
    if unknown:
        raise LMSError(f"--column names assignments that are not exported: {', '.join(sorted(unknown))}")
    return write_grades(path, lms, names, maxima, scores, people, roster, columns, missing)
