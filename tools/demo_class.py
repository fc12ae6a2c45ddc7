"""A demo class in one command (``make demo-class``): a term of assignment 01 on one machine, then clean-up.

It runs the command blocks of ``deploy/RUNBOOK.md`` marked ``<!-- demo: instructor -->`` or
``<!-- demo: student -->``, as written there, in a throwaway course folder (``_build/demo-class``) with an
exchange of its own, for a class of made-up students:

=========  =====================================================================================
``you``    the account running the demo, through the exchange: fetch, answer (right), submit,
           fetch the feedback
``ana``    every answer right, on time
``ben``    partly wrong: the affine forward pass forgets the bias, the numerical gradient is left
           unanswered (4 of 13 points lost, and nothing else: one bug costs one question)
``cleo``   nothing answered (the release as fetched)
``dan``    every answer right, two days late with a one-day extension (late penalty 10%)
``eli``    on the class list, never submits
=========  =====================================================================================

The class list comes from a Canvas gradebook export that the demo writes (the columns Canvas documents), and
the grades go back as the file Canvas imports; the demo checks both.

nbgrader knows a student by the Unix account that runs ``nbgrader submit``, so on one account only ``you``
can use the exchange; the others' notebooks are put where ``nbgrader collect`` (or ``zip_collect``, for an LMS
download) would put them, with their submission time. Only two things differ from the runbook: the due
date is one day from now, and the exchange is the demo's own folder. Grading uses the sandbox where the
machine has one, else ``--no-sandbox-i-trust-this-code`` (the demo's answers are ours; the demo says so).

The demo checks every grade against what each made-up student should get, prints the grades and the
reports, and exits with status 1 if a grade is off. ``--keep`` leaves the course folder to look at.
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime as dt
import getpass
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "deploy" / "RUNBOOK.md"
ASSIGNMENT = "01_feedforward"
RUNBOOK_DUE = "2027-02-01 17:00:00 UTC"
RUNBOOK_EXCHANGE = "/srv/nbgrader/exchange"
WRONG_FORWARD = "def affine_forward(x, W, b):\n    return x @ W, (x, W)\n"  # forgets the bias
EXPECTED = {"ana": 13.0, "ben": 9.0, "cleo": 0.0, "dan": 11.7, "eli": 0.0}  # and the demo's own account: 13


def runbook_blocks(text: str) -> list[tuple[str, str]]:
    """(role, commands) of every fenced bash block marked ``<!-- demo: ROLE -->``, in order."""
    pattern = re.compile(r"<!-- demo: (instructor|student) -->\s*```bash\n(.*?)```", re.S)
    blocks = pattern.findall(text)
    if len(blocks) < 5:
        raise SystemExit(f"{RUNBOOK} has {len(blocks)} demo blocks; expected the whole term (5 or more)")
    return blocks


def run_block(role: str, commands: str, cwd: Path, env: dict[str, str], due: str, exchange: Path) -> None:
    commands = commands.replace(RUNBOOK_DUE, due).replace(RUNBOOK_EXCHANGE, str(exchange))
    print(f"\n--- as the {role}, in {cwd.name}/:\n{commands.rstrip()}", flush=True)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"this block failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n"
                         f"{result.stderr[-5000:]}")


def answered(release, source, wrong: dict[str, str] | None = None, unanswered: tuple[str, ...] = ()):
    """The release notebook with the solution's answer cells, except those made wrong or left out."""
    nb = copy.deepcopy(release)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers and gid not in unanswered:
            cell.source = (wrong or {}).get(gid, answers[gid])
    return nb


def put_submission(course: Path, student: str, nb, when: dt.datetime) -> None:
    """What ``nbgrader collect`` puts in ``submitted/``: the notebook, ``timestamp.txt`` and the secret that
    ``nbgrader submit`` draws (``release_feedback`` names the student's feedback in the exchange after it)."""
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
    (folder / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
    (folder / "submission_secret.txt").write_text(secrets.token_hex(64))


def canvas_export(path: Path, you: str) -> None:
    """A Canvas gradebook export of the class, as Canvas writes it (an empty class: no assignment yet)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section"])
        writer.writerow(["    Points Possible", "", "", "", ""])
        for i, student in enumerate([you, *EXPECTED], start=1):
            writer.writerow([f"{student.title()}son, {student.title()}", 1000 + i, f"S{i:05d}", student,
                             "RNN 101"])
        writer.writerow(["Student, Test", 9999, "", "", "RNN 101"])


def sandbox_flag() -> str:
    from course_lib.grading import sandbox

    ok, why = sandbox.available()
    if ok:
        return ""
    print(f"note: no sandbox on this machine ({why}); the demo grades its own answers with "
          "--no-sandbox-i-trust-this-code", flush=True)
    return " --no-sandbox-i-trust-this-code"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "_build" / "demo-class", help="the demo's folder")
    parser.add_argument("--keep", action="store_true", help="keep the demo's folder afterwards")
    args = parser.parse_args(argv)
    base = args.dir.resolve()
    if base.exists():
        shutil.rmtree(base)
    course, exchange, home = base / "course", base / "exchange", base / "home"
    for folder in (course / "source", exchange, home):
        folder.mkdir(parents=True)
    shutil.copy(ROOT / "assignments" / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "assignments" / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    with open(course / "nbgrader_config.py", "a", encoding="utf-8") as f:
        f.write('\n# the demo: a late penalty of 10% per started day (deploy/RUNBOOK.md, "Late submissions")\n'
                'c.AssignLatePenalties.plugin_class = "course_lib.grading.late.PerDayPenalty"\n'
                "c.PerDayPenalty.percent_per_day = 10\n")

    env = {k: v for k, v in os.environ.items() if k not in ("NBGRADER_DB_URL", "NBGRADER_EXCHANGE")}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["NBGRADER_EXCHANGE"] = str(exchange)  # read by the course's nbgrader_config.py
    now = dt.datetime.now(dt.timezone.utc)
    due = now + dt.timedelta(days=1)
    due_text = due.strftime("%Y-%m-%d %H:%M:%S UTC")
    you = getpass.getuser()
    if you in EXPECTED:
        raise SystemExit(f"your account is named {you!r}, like a made-up student: run the demo as another user")

    canvas_export(course / "canvas_gradebook.csv", you)
    try:
        blocks = runbook_blocks(RUNBOOK.read_text(encoding="utf-8"))
        flag = sandbox_flag()
        source = nbformat.read(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
        for role, commands in blocks:
            commands = commands.replace(f"grading autograde {ASSIGNMENT}", f"grading autograde {ASSIGNMENT}{flag}")
            if role == "student" and "nbgrader submit" in commands:  # the student works, then submits
                mine = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
                nbformat.write(answered(nbformat.read(mine, as_version=4), source), mine)
            run_block(role, commands, home if role == "student" else course, env, due_text, exchange)
            if role == "instructor" and "nbgrader collect" in commands:  # the others' submissions, collected
                release = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
                put_submission(course, "ana", answered(release, source), now)
                put_submission(course, "ben", answered(release, source, {"affine_forward": WRONG_FORWARD},
                                                       ("numerical_gradient",)), now)
                put_submission(course, "cleo", release, now)
                put_submission(course, "dan", answered(release, source), due + dt.timedelta(days=1, hours=1))
        return check(course, home, you)
    finally:
        if args.keep:
            print(f"\nthe demo's folder is kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def check(course: Path, home: Path, you: str) -> int:
    """Print the grades and the reports; 1 if a grade differs from what the made-up student should get."""
    expected = {**EXPECTED, you: 13.0}
    with open(course / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == ASSIGNMENT}
    print(f"\n{'student':<12}{'score':>7}{'max':>6}{'late penalty':>14}   expected")
    wrong = []
    for student in sorted(expected):
        row = rows.get(student)
        score = float(row["score"]) if row else None
        print(f"{student:<12}{score if row else '-':>7}{row['max_score'] if row else '-':>6}"
              f"{row['late_submission_penalty'] if row else '-':>14}   {expected[student]}")
        if score is None or abs(score - expected[student]) > 1e-6:
            wrong.append(student)
    with open(course / "canvas_grades.csv", newline="", encoding="utf-8") as f:
        canvas = list(csv.DictReader(f))
    print(f"\nfor Canvas (canvas_grades.csv): {len(canvas) - 1} students, points possible "
          f"{canvas[0].get(ASSIGNMENT)}")
    for row in canvas[1:]:
        student = row["SIS Login ID"]
        if student not in expected or abs(float(row[ASSIGNMENT]) - expected[student]) > 1e-6:
            wrong.append(f"{student} (Canvas file: {row[ASSIGNMENT]})")
    if sorted(r["SIS Login ID"] for r in canvas[1:]) != sorted(expected):
        wrong.append("the Canvas file's students")
    # the class report: what each question's failures were (ben's missing bias is a mistake the test names)
    with open(course / "reports" / ASSIGNMENT / "misconceptions.csv", newline="", encoding="utf-8") as f:
        counts = {(r["question"], r["category"], r["mistake"]): int(r["students"]) for r in csv.DictReader(f)}
    report = {("test_affine_forward", "named mistake", "the bias b is missing"): 1,
              ("test_affine_forward", "passed", ""): 3, ("test_numerical_gradient", "not answered", ""): 2,
              ("test_numerical_gradient", "passed", ""): 3, ("test_two_layer_loss", "not submitted", ""): 1,
              ("test_softmax_loss", "passed", ""): 4}
    print("\nthe class report (reports/01_feedforward/misconceptions.html):")
    for key, want in report.items():
        print(f"  {key[0]}: {key[2] or key[1]}: {counts.get(key)} (expected {want})")
        if counts.get(key) != want:
            wrong.append(f"the class report's {key}")
    feedback = sorted(p.relative_to(home).as_posix() for p in (home / ASSIGNMENT / "feedback").rglob("*.html"))
    reports = sorted(p.name for p in (course / "reports" / ASSIGNMENT).iterdir())
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in course.iterdir())
    print(f"\nthe course folder holds: {' '.join(entries)}")
    print(f"your feedback, fetched: {', '.join(feedback) or 'NONE'}")
    print(f"reports/{ASSIGNMENT}/: {', '.join(reports)}")
    if not feedback:
        wrong.append(f"{you} (no feedback fetched)")
    if wrong:
        print(f"\nFAILED: not the expected grade for {', '.join(wrong)}")
        return 1
    print("\nthe demo class ran from release to grades: every grade is as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
