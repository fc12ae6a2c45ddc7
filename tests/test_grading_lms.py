"""Class lists from Canvas and Moodle, and grades back to them (course_lib/grading/lms.py).

The sample exports below are written from the columns each LMS documents for its gradebook export (Canvas:
Student, ID, SIS User ID, SIS Login ID, Section, a "Points Possible" row; Moodle's plain-text export: First
name, Last name, ID number, Institution, Department, Email address, plus the username where the site shows
it). The whole flow through Canvas (roster, grading, late penalty, export) runs in tests/test_demo_class.py.
"""

from __future__ import annotations

import csv
import io

import pytest

from course_lib.grading import lms

CANVAS = """Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (501)
    Points Possible,,,,,10
"Lovelace, Ada",1001,S0001,ada,RNN 101,9
"Hopper, Grace",1002,S0002,grace,RNN 101,
"Nobody, Nemo",1003,S0003,,RNN 101,
"Student, Test",9999,,,RNN 101,
"Turing, Alan",1004,S0004,=alan,RNN 102,
"""
MOODLE = """First name,Last name,ID number,Institution,Department,Email address,Username
Ada,Lovelace,77001,Uni,CS,ada@uni.example,ada
Grace,Hopper,77002,Uni,CS,grace@uni.example,ghopper
"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_canvas_roster_skips_points_test_student_and_rows_without_an_id(tmp_path):
    people, skipped = lms.read_roster(write(tmp_path, "canvas.csv", CANVAS), "canvas")
    assert [(p.id, p.first_name, p.last_name, p.lms_user_id) for p in people] == [
        ("ada", "Ada", "Lovelace", "1001"), ("grace", "Grace", "Hopper", "1002"), ("=alan", "Alan", "Turing", "1004")]
    assert skipped == ["line 5 (Nemo Nobody): no SIS Login ID"]


def test_moodle_roster_by_username_or_email(tmp_path):
    path = write(tmp_path, "moodle.csv", MOODLE)
    people, _ = lms.read_roster(path, "moodle")
    assert [(p.id, p.email, p.lms_user_id) for p in people] == [("ada", "ada@uni.example", "77001"),
                                                                ("ghopper", "grace@uni.example", "77002")]
    by_mail, _ = lms.read_roster(path, "moodle", email_local_part=True)
    assert [p.id for p in by_mail] == ["ada", "grace"]


@pytest.mark.parametrize("text, lms_name, match", [
    ("Name,Email\nAda,ada@x\n", "canvas", "no column 'Student', 'ID', 'SIS Login ID'"),
    ("First name,Last name,Email address\nAda,L,a@x\n", "moodle", "no column 'Username'"),
    ("Student,ID,SIS User ID,SIS Login ID,Section\n", "canvas", "lists no student"),
    (CANVAS, "blackboard", "unknown LMS"),
])
def test_a_roster_that_cannot_be_used_says_why(tmp_path, text, lms_name, match):
    with pytest.raises(lms.LMSError, match=match):
        lms.read_roster(write(tmp_path, "x.csv", text), lms_name)


def test_an_unreadable_roster_is_a_clear_error(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\xff")
    with pytest.raises(lms.LMSError, match="cannot read"):
        lms.read_roster(str(path), "canvas")


def grades_file(tmp_path, kind: str, roster: dict, missing: str = "zero", columns=None):
    names, maxima = ["01_feedforward", "02_rnn"], {"01_feedforward": 13.0, "02_rnn": 12.0}
    scores = {"ada": {"01_feedforward": 11.7, "02_rnn": 12.0}, "grace": {"01_feedforward": None, "02_rnn": 3.5},
              "zed": {"01_feedforward": 1.0, "02_rnn": None}}
    people = {"ada": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@uni.example", "lms_user_id": "1"},
              "grace": {"first_name": "Grace", "last_name": "Hopper", "email": "grace@uni.example",
                        "lms_user_id": "2"},
              "zed": {"first_name": "Zed", "last_name": "", "email": "", "lms_user_id": ""}}
    path = tmp_path / f"{kind}.csv"
    left_out = lms.write_grades(str(path), kind, names, maxima, scores, people, roster, columns, missing)
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8")))), left_out


def test_canvas_grades_repeat_the_rosters_ids_and_points(tmp_path):
    people, _ = lms.read_roster(write(tmp_path, "canvas.csv", CANVAS), "canvas")
    roster = {p.id: p.row for p in people}
    rows, left_out = grades_file(tmp_path, "canvas", roster, columns={"01_feedforward": "Assignment 1 (1234)"})
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Assignment 1 (1234)", "02_rnn"]
    assert rows[1] == ["Points Possible", "", "", "", "", "13", "12"]
    assert rows[2:] == [["Lovelace, Ada", "1001", "S0001", "ada", "RNN 101", "11.7", "12"],
                        ["Hopper, Grace", "1002", "S0002", "grace", "RNN 101", "0", "3.5"]]
    assert left_out == ["zed"]  # not on the roster: Canvas could not match him, so he is named, not guessed


def test_moodle_grades_by_email_and_blank_for_missing(tmp_path):
    rows, left_out = grades_file(tmp_path, "moodle", {}, missing="blank")
    assert rows[0] == ["First name", "Last name", "ID number", "Email address", "01_feedforward", "02_rnn"]
    assert rows[1:] == [["Ada", "Lovelace", "1", "ada@uni.example", "11.7", "12"],
                        ["Grace", "Hopper", "2", "grace@uni.example", "", "3.5"]]
    assert left_out == ["zed"]  # no e-mail address: Moodle could not match him


@pytest.mark.slow
def test_roster_and_grades_through_the_command_line(tmp_path):
    from grading_helpers import make_course, run
    from nbgrader.api import Gradebook

    course = make_course(tmp_path / "course")
    roster = write(tmp_path, "moodle.csv", MOODLE)
    done = run(course, "course_lib.grading", "lms", "roster", roster, "--lms", "moodle")
    assert "2 students in the gradebook" in done.stdout
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert {(s.id, s.first_name, s.email, s.lms_user_id) for s in gb.students} == {
            ("ada", "Ada", "ada@uni.example", "77001"), ("ghopper", "Grace", "grace@uni.example", "77002")}
    assert oct((course / ".grading" / "lms").stat().st_mode & 0o777) == "0o700"
    out = tmp_path / "moodle_grades.csv"
    run(course, "course_lib.grading", "lms", "grades", "--lms", "moodle", "--out", str(out))
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows == [["First name", "Last name", "ID number", "Email address", "01_feedforward"],
                    ["Ada", "Lovelace", "77001", "ada@uni.example", "0"],
                    ["Grace", "Hopper", "77002", "grace@uni.example", "0"]]  # no submission yet: 0
    canvas = run(course, "course_lib.grading", "lms", "grades", "--lms", "canvas", "--out", str(out),
                 "--column", "nope", check=False)
    assert canvas.returncode == 2 and "ASSIGNMENT=HEADER" in canvas.stderr
