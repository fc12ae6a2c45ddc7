"""Tests of course_lib.grading: units, then equality with serial ``nbgrader autograde`` (SQLite, PostgreSQL).

The slow tests grade the same honest submissions (the solution, the release, and a partially correct one)
with ``nbgrader autograde`` in one course and with ``python -m course_lib.grading autograde`` in another, and
compare every Grade row, then check that nbgrader's own ``export`` and ``generate_feedback`` work on the result
(and that the feedback shows no hidden test). The PostgreSQL test starts its own server on 127.0.0.1.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import nbformat
import pytest
from grading_helpers import (
    ASSIGNMENT,
    PostgresServer,
    gradebook_rows,
    make_course,
    release_nb,
    run,
    source_nb,
    submit,
    with_source,
)
from grading_helpers import (
    ROOT as ROOT_DIR,
)

from course_lib.grading import GradingError, Limits, autograde, sandbox
from course_lib.grading.feedback import frames_of_cell
from course_lib.grading.harness import sign
from course_lib.grading.prepare import bound_names, read_notebook
from course_lib.grading.verdict import check

# --- units -------------------------------------------------------------------------------------------------


def test_limits_parse_and_reject():
    limits = Limits.parse("cell=10,mem=512", Limits(cell=120))
    assert (limits.cell, limits.mem, limits.wall) == (10.0, 512, Limits().wall)
    for bad in ("cell", "speed=3", "cell=-1"):
        with pytest.raises(ValueError):
            Limits.parse(bad)


KEY = b"k" * 32


def record(status="pass", seq=2, cell=4, source="assert True", run="r1", key=KEY, **extra):
    import hashlib

    payload = {"run": run, "seq": seq, "cell": cell, "sha256": hashlib.sha256(source.encode()).hexdigest(),
               "status": status, "ename": None if status == "pass" else "AssertionError", "result": None,
               "problems": [], "restored": [], **extra}
    return {"payload": payload, "mac": sign(key, payload)}


def ok(*records):
    return {"status": "ok", "records": list(records)}


@pytest.mark.parametrize(
    ("cell_result", "passed"),
    [
        (ok(record()), True),
        (ok(record(status="fail")), False),
        (ok(record(status="tampered", problems=["builtins.abs replaced"])), False),
        (ok(), False),  # no record: the harness was bypassed
        (ok(record(key=b"x" * 32)), False),  # forged signature
        (ok(record(run="r0")), False),  # replayed from another run
        (ok(record(seq=3)), False),  # the harness was called from the submission in between
        (ok(record(cell=7)), False),  # a record of another cell
        (ok(record(source="pass")), False),  # a record for another test source
        (ok(record(), record()), False),  # two verdicts for one test
        ({"status": "timeout", "reason": "cell 4 ran past 10 s", "records": [record()]}, False),
        (None, False),
    ],
)
def test_verdict_needs_exactly_one_valid_signed_pass(cell_result, passed):
    verdict = check(cell_result, KEY, "r1", 2, 4, "assert True")
    assert verdict.passed is passed
    assert verdict.passed or verdict.reason


def test_tampered_payload_breaks_the_signature():
    rec = record(status="fail")
    rec["payload"]["status"] = "pass"
    assert not check(ok(rec), KEY, "r1", 2, 4, "assert True").passed


def test_bound_names_of_solution_cells():
    src = "import numpy as np\nfrom os import path as p\ndef f(): pass\nclass C: pass\nx, (y, z) = 1, (2, 3)\n"
    assert bound_names(src) == {"np", "p", "f", "C", "x", "y", "z"}
    assert bound_names("%timeit f()") == set()


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b'{"cells": [', "JSON"), (bytes(range(256)), "Decode"),
     (json.dumps({"nbformat": 99, "nbformat_minor": 0, "cells": [], "metadata": {}}).encode(), "version")],
)
def test_read_notebook_rejects_malformed_files(tmp_path, content, reason):
    path = tmp_path / "nb.ipynb"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"(?i){reason}"):
        read_notebook(str(path))


def test_feedback_drops_the_test_cells_own_frames():
    tb = ["\x1b[31m----\x1b[39m", "AssertionError  Traceback (most recent call last)",
          "\x1b[36mCell\x1b[39m In[3], line 1\n----> 1 __course_grading__('test', 4, '...')",
          "    [... skipping hidden 1 frame]\n", "File \x1b[32m<graded cell 4>:12\x1b[39m\n     11 _secret = 1",
          "Cell In[2], line 3, in affine_forward\n      3 return x", "AssertionError: wrong"]
    assert frames_of_cell(tb, None) == [tb[0], tb[1], tb[5], tb[6]]
    plain = ["----", "Cell In[7], line 2\n      2 assert hidden", "AssertionError: "]
    assert frames_of_cell(plain, 7) == ["----", "AssertionError: "]


def test_sandbox_command_isolates_the_submission(tmp_path):
    cmd, env = sandbox.command(str(tmp_path), Limits(), slot=1)
    assert env is None and cmd[0].endswith("bwrap")
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv"):
        assert flag in cmd
    assert [cmd[i + 1:i + 3] for i, a in enumerate(cmd) if a == "--bind"] == [[str(tmp_path), sandbox.WORKDIR]]
    joined = " ".join(cmd)
    assert "assignments" not in joined and "gradebook" not in joined
    assert any(a.startswith("--as=") for a in cmd) and any(a.startswith("--nproc=") for a in cmd)


def test_sandbox_sees_an_environment_that_lives_under_tmp(tmp_path, monkeypatch):
    """A course or virtual environment under /tmp stays visible: the sandbox's empty /tmp goes under it."""
    needs_sandbox()
    env = tmp_path / "venv"
    env.mkdir()
    (env / "marker").write_text("visible")
    (tmp_path / "work").mkdir()
    roots = sandbox._python_roots()
    monkeypatch.setattr(sandbox, "_python_roots", lambda: [*roots, str(env)])
    cmd, _ = sandbox.command(str(tmp_path / "work"), Limits(), slot=0)
    runner = cmd.index(sys.executable, cmd.index("--chdir"))
    out = subprocess.run([*cmd[:runner], "/bin/cat", str(env / "marker")], capture_output=True, text=True, timeout=60)
    assert out.stdout == "visible", out.stderr


def test_refuses_without_a_sandbox_unless_trusted(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "available", lambda: (False, "bubblewrap (bwrap) is not installed"))
    with pytest.raises(GradingError, match="--no-sandbox-i-trust-this-code"):
        autograde(tmp_path, ASSIGNMENT)


def test_cli_explains_the_refusal(tmp_path):
    result = subprocess.run([sys.executable, "-m", "course_lib.grading", "autograde", ASSIGNMENT, "--course",
                             str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "nbgrader_config.py" in result.stderr


# --- equality with serial nbgrader autograde -----------------------------------------------------------------

WRONG_SOFTMAX = "def softmax_loss(s, y):\n    return 0.0, np.zeros_like(s)\n"


def honest_submissions(course):
    return {"solution": source_nb(), "release": release_nb(course),
            "partial": with_source(source_nb(), "softmax_loss", WRONG_SOFTMAX)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Grade rows from serial ``nbgrader autograde`` on the honest submissions."""
    course = make_course(tmp_path_factory.mktemp("nbgrader"))
    for student, nb in honest_submissions(course).items():
        submit(course, student, nb)
    run(course, "nbgrader", "autograde", ASSIGNMENT, "--force")
    return gradebook_rows(f"sqlite:///{course / 'gradebook.db'}")


def needs_sandbox():
    ok_, why = sandbox.available()
    if not ok_:
        pytest.skip(f"no sandbox here ({why}); CI installs bubblewrap")


@pytest.mark.slow
def test_same_grades_as_nbgrader_with_sqlite(reference, tmp_path):
    needs_sandbox()
    course = make_course(tmp_path / "course")
    for student, nb in honest_submissions(course).items():
        submit(course, student, nb)
    out = run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--workers", "2", "--quiet")
    assert "submissions with problems: 0" in out.stdout
    assert gradebook_rows(f"sqlite:///{course / 'gradebook.db'}") == reference
    assert reference["solution"] != reference["partial"] != reference["release"]

    # nbgrader's own commands work on the result, and the feedback shows no hidden test
    run(course, "nbgrader", "export", "--to", str(tmp_path / "export.csv"))
    with open(tmp_path / "export.csv") as f:
        exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert exported == {"solution": 13.0, "partial": 10.0, "release": 0.0}  # a wrong loss costs its 3 points
    run(course, "nbgrader", "generate_feedback", ASSIGNMENT, "--force")
    autograded = (course / "autograded" / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" in autograded  # the instructor's copy keeps them
    for student in ("solution", "partial", "release"):
        html = (course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        assert "HIDDEN TESTS" not in html and "default_rng(101)" not in html and "forbid_calls_into" not in html
        assert "visible test" in html.lower()
    with open(course / "reports" / ASSIGNMENT / "grades.csv") as f:
        assert {r["student"]: float(r["score"]) for r in csv.DictReader(f)} == exported
    assert (course / "reports" / ASSIGNMENT / "scores.png").stat().st_size > 1000


@pytest.mark.slow
def test_same_grades_as_nbgrader_with_postgresql(reference, tmp_path):
    needs_sandbox()
    if not PostgresServer.available():
        pytest.skip("PostgreSQL is not installed (CI installs it)")
    server = PostgresServer()
    try:
        db_url = server.start()
        course = tmp_path / "course"
        course.mkdir()
        pg_env = {"NBGRADER_DB_URL": db_url}
        import shutil

        from grading_helpers import ROOT

        shutil.copy(ROOT / "assignments" / "nbgrader_config.py", course)
        shutil.copytree(ROOT / "assignments" / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT)
        run(course, "nbgrader", "generate_assignment", ASSIGNMENT, "--force", extra_env=pg_env)
        for student, nb in honest_submissions(course).items():
            submit(course, student, nb)
        run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--workers", "2", "--quiet", "--db-url", db_url)
        assert not (course / "gradebook.db").exists()
        assert gradebook_rows(db_url) == reference
    finally:
        server.stop()


@pytest.mark.slow
def test_trusted_mode_without_sandbox_gives_the_same_grades(reference, tmp_path):
    course = make_course(tmp_path / "course")
    submit(course, "partial", honest_submissions(course)["partial"])
    out = run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--quiet", "--no-sandbox-i-trust-this-code")
    assert "WARNING" in out.stderr
    assert gradebook_rows(f"sqlite:///{course / 'gradebook.db'}")["partial"] == reference["partial"]
    nb = nbformat.read(course / "autograded" / "partial" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    assert nb.metadata.kernelspec.name == "python3"


ASSIGNMENTS = sorted(p.name for p in (ROOT_DIR / "assignments" / "source").iterdir() if p.is_dir())


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_assignment_grades_full_marks_and_zero_in_the_sandbox(assignment, tmp_path):
    """The sandboxed grader on each assignment: its solution earns every automatic point, the release none."""
    needs_sandbox()
    course = make_course(tmp_path / "course", assignment)
    source = nbformat.read(ROOT_DIR / "assignments" / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    submit(course, "solution", source, assignment)
    submit(course, "release", nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4),
           assignment)
    out = run(course, "course_lib.grading", "autograde", assignment, "--workers", "2", "--quiet")
    assert "submissions with problems: 0" in out.stdout
    rows = gradebook_rows(f"sqlite:///{course / 'gradebook.db'}", assignment)
    automatic = {gid: row for gid, row in rows["solution"].items() if row[0] is not None}
    assert automatic, f"{assignment}: no automatically graded cell"
    assert all(auto == top for auto, _, _, top in automatic.values()), rows["solution"]
    assert all(not row[0] for row in rows["release"].values()), rows["release"]
    manual = {gid for gid, row in rows["solution"].items() if row[0] is None}
    assert all(rows["solution"][gid][2] for gid in manual), "a manually graded answer must wait for a person"
