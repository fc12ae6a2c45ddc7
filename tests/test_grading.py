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
    share_reference_cache,
    source_nb,
    submit,
    with_source,
)
from grading_helpers import (
    ROOT as ROOT_DIR,
)

from course_lib.grading import GradingError, Limits, autograde, sandbox
from course_lib.grading.feedback import frames_of_cell
from course_lib.grading.prepare import bound_names, read_notebook
from course_lib.grading.verdict import decide

# --- units -------------------------------------------------------------------------------------------------


def test_limits_parse_and_reject():
    limits = Limits.parse("cell=10,mem=512", Limits(cell=120))
    assert (limits.cell, limits.mem, limits.wall) == (10.0, 512, Limits().wall)
    for bad in ("cell", "speed=3", "cell=-1"):
        with pytest.raises(ValueError):
            Limits.parse(bad)


def _records(mode_values):
    """Reference records for checks {key: value} (spec: close, tol 1e-7) and student records for the same."""
    from course_lib.checks import encode

    reference = [{"test": "t", "key": k, "spec": {"kind": "close", "tol": 1e-7, "what": k, "hidden": False},
                  "value": encode(v), "mistakes": {}} for k, v in mode_values.items()]
    return reference


def student(**values):
    from course_lib.checks import encode

    return [{"test": "t", "key": k, "value": encode(v)} for k, v in values.items()]


def ok(records, outputs=()):
    return {"status": "ok", "records": records, "outputs": list(outputs)}


REF = _records({"a": 1.0, "b": [1.0, 2.0]})
ERROR = {"output_type": "error", "ename": "AssertionError", "evalue": "", "traceback": []}


@pytest.mark.parametrize(
    ("cell_result", "reference", "passed"),
    [
        (ok(student(a=1.0, b=[1.0, 2.0])), REF, True),
        (ok(student(a=1.0, b=[1.0, 2.0 + 1e-12])), REF, True),
        (ok(student(a=1.0, b=[1.0, 2.1])), REF, False),  # a wrong value
        (ok(student(a=1.0)), REF, False),  # a check that never ran
        (ok(student(a=1.0, b=[1.0, 2.0]) + student(a=1.0)), REF, False),  # a value handed back twice
        (ok(student(a=1.0, b=[1.0, 2.0]), [ERROR]), REF, False),  # the test raised after its checks
        (ok([{"test": "t", "key": "a", "value": {"t": "pickle"}}] + student(b=[1.0, 2.0])), REF, False),
        (ok(student(a=1.0, b=[1.0, 2.0])), [], False),  # no reference: never a free pass
        ({"status": "timeout", "reason": "cell 4 ran past 10 s", "records": student(a=1.0, b=[1.0, 2.0])}, REF,
         False),
        (None, REF, False),
    ],
)
def test_verdict_needs_every_reference_check_matched(cell_result, reference, passed):
    verdict = decide(cell_result, reference)
    assert verdict.passed is passed
    assert verdict.passed or verdict.reason


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


def test_runner_kernel_is_ipykernel_with_the_folder_on_its_path_and_the_checks_mime(tmp_path):
    from course_lib import checks
    from course_lib.grading import runner

    assert runner.MIME == checks.MIME  # written out in the runner so that it does not import numpy
    (tmp_path / "helper.py").write_text("VALUE = 41\n")
    job = {"cells": [{"index": 1, "kind": "student", "source": "import os, sys, helper\n"
                      "print(sys.path[0] == os.getcwd(), helper.VALUE + 1, type(get_ipython()).__name__)"},
                     {"index": 2, "kind": "test", "source": "from IPython.display import publish_display_data\n"
                      f"publish_display_data({{{checks.MIME!r}: {{'v': 1}}}})"}],
           "env": {}, "kernel_name": "python3", "cell_timeout": 60, "startup_timeout": 120,
           "output_limit": 100_000, "workdir": str(tmp_path)}
    done = subprocess.run([sys.executable, "-I", "-m", "course_lib.grading.runner"], input=json.dumps(job),
                          capture_output=True, text=True, timeout=300)
    cells = json.loads(done.stdout)["cells"]
    assert cells["1"]["status"] == "ok" and cells["1"]["outputs"][0]["text"] == "True 42 ZMQInteractiveShell\n"
    assert cells["2"]["records"] == [{"v": 1}] and cells["2"]["outputs"] == []


def run_job(tmp_path, cells, **extra):
    job = {"cells": cells, "env": {}, "kernel_name": "python3", "cell_timeout": 60, "startup_timeout": 120,
           "output_limit": 100_000, "workdir": str(tmp_path), **extra}
    done = subprocess.run([sys.executable, "-I", "-m", "course_lib.grading.runner"], input=json.dumps(job),
                          capture_output=True, text=True, timeout=300)
    return json.loads(done.stdout)


SEND = ("k = get_ipython().kernel\n"
        "send = lambda kind, content: k.session.send(k.iopub_socket, kind, content, parent=k.get_parent())\n")


def test_runner_keeps_only_valid_fields_of_kernel_messages_within_the_budget(tmp_path):
    """What a submission sends on its kernel's iopub channel: counted, rebuilt as valid nbformat, or dropped."""
    crafted = SEND + (
        "send('execute_input', {'code': 'x' * 500_000, 'execution_count': '9' * 500_000})\n"
        "send('display_data', {'data': {'text/plain': 'hi'}, 'metadata': {}, 'execution_count': 'x'})\n"
        "send('execute_result', {'data': {'text/plain': 5, 'application/json': {'a': 1}}, 'metadata': [],\n"
        "                        'execution_count': -3})\n"
        "send('stream', {'name': 'evil', 'text': ['a', 'b']})\n"
        "send('error', {'ename': 1, 'evalue': None, 'traceback': 'tb'})\n"
        "send('comm_open', {'comm_id': 'c', 'target_name': 'jupyter.widget', 'data': {'state': {'v': 'w' * 1000}}})\n"
        "pass\n"
    )
    cells = run_job(tmp_path, [{"index": 1, "kind": "student", "source": crafted},
                               {"index": 2, "kind": "student", "source": "1 + 1"}])["cells"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", outputs=[nbformat.from_dict(o)
                                                                                  for o in c["outputs"]],
                                                                      execution_count=c["execution_count"])
                                         for c in cells.values()])
    nbformat.validate(nb)
    assert len(json.dumps(cells)) < 10_000  # the forged execution count and code are gone, not stored
    outputs = cells["1"]["outputs"]
    assert [o["output_type"] for o in outputs] == ["display_data", "execute_result", "stream", "error"]
    assert outputs[1]["data"] == {"text/plain": "5", "application/json": {"a": 1}}
    assert outputs[2] == {"output_type": "stream", "name": "stdout", "text": "ab"}
    assert cells["2"]["execution_count"] == 2
    flood = SEND + "send('display_data', {'data': {}, 'metadata': {}, 'execution_count': '9' * 200_000})\n"
    result = run_job(tmp_path, [{"index": 1, "kind": "student", "source": flood}])
    assert result["cells"]["1"]["status"] == "output_limit"  # every field of an output counts


def test_outputs_are_rebuilt_valid_and_redacted():
    from course_lib.grading import outputs

    pattern = outputs.redactor(["0123456789abcdef", "short"])
    out = outputs.clean_output({"output_type": "stream", "name": "stdout", "text": ["key ", "0123456789ABCDEF"],
                                "execution_count": "x"}, pattern)
    assert out == {"output_type": "stream", "name": "stdout", "text": "key [redacted]"}
    out = outputs.clean_output({"output_type": "execute_result", "data": {"text/plain": ["a"]}, "metadata": None,
                                "execution_count": 10**20})
    assert out == {"output_type": "execute_result", "data": {"text/plain": "a"}, "metadata": {},
                   "execution_count": None}
    assert outputs.clean_output({"output_type": "widget"}) is None and outputs.clean_output("x") is None
    assert [outputs.execution_count(v) for v in (3, True, -1, "3", 2**40, None)] == [3, None, None, None, None, None]
    assert outputs.language_info({"name": "python", "version": 3, "codemirror_mode": {"name": "ipython"}}) == \
        {"name": "python", "codemirror_mode": {"name": "ipython"}}


def test_restore_code_rebinds_the_instructors_course_lib_imports_but_not_the_answers():
    from course_lib.grading.reference import restore_code

    setup = ("import numpy as np\nfrom course_lib.checks import Test, reference\n"
             "from course_lib.testing import stand_ins, steps_per_example\nfrom course_lib.rnn import rnn_forward\n")
    code = restore_code([setup], ["course_lib.checks", "course_lib.testing"], {"stand_ins"})
    assert code.splitlines() == ["__import__('sys').modules.pop('course_lib.checks', None)",
                                 "__import__('sys').modules.pop('course_lib.testing', None)",
                                 "from course_lib.checks import Test, reference",
                                 "from course_lib.testing import steps_per_example"]
    assert restore_code(["import numpy as np"], ["course_lib.checks"]) == ""
    namespace = {"steps_per_example": lambda *a: 0.0}
    import course_lib.testing as testing

    original = testing.python_steps
    try:
        testing.python_steps = lambda *a, **k: 0  # a patch of the module, as a submission could make
        exec(code, namespace)
        assert namespace["steps_per_example"](lambda x: [v for v in x], lambda n: (list(range(n)),)) > 0.5
    finally:
        testing.python_steps = original
        import sys

        sys.modules["course_lib.testing"], sys.modules["course_lib.checks"] = testing, checks_module()


def checks_module():
    import course_lib.checks

    return course_lib.checks


def test_the_grader_removes_its_temporary_folder_even_when_interrupted(tmp_path, monkeypatch):
    import os
    import tempfile

    from course_lib.grading import pool

    course = make_course(tmp_path / "course")
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(sandbox, "available", lambda: (True, ""))
    made = []

    def interrupted(self, students, progress=True):
        made.append(os.listdir(temp))
        raise KeyboardInterrupt

    monkeypatch.setattr(pool.Grader, "grade_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        autograde(course, ASSIGNMENT, progress=False)
    assert made and made[0] and made[0][0].startswith("grading-course-lib-")  # it was there (a test that can fail)
    assert os.listdir(temp) == []


def test_sandbox_command_isolates_the_submission(tmp_path):
    (tmp_path / "data.csv").write_text("1,2\n")
    cmd, env = sandbox.command(str(tmp_path), Limits(), slot=1)
    assert env is None and cmd[1:4] == ["-I", "-m", "course_lib.grading.sandbox"]  # the launcher, then bwrap
    assert any(a.endswith("/bwrap") for a in cmd)
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv", "--new-session"):
        assert flag in cmd
    assert "--userns" in cmd or "--unshare-user" in cmd
    # the working copy: a size-bounded tmpfs with the copy's files bound one by one
    assert [cmd[i + 1:i + 3] for i, a in enumerate(cmd) if a == "--bind"] == [
        [str(tmp_path / "data.csv"), f"{sandbox.WORKDIR}/data.csv"]]
    assert cmd[cmd.index(sandbox.WORKDIR) - 5:cmd.index(sandbox.WORKDIR)] == [
        "--size", str(Limits().disk * 1024 * 1024), "--perms", "1777", "--tmpfs"]
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
    cmd, _ = sandbox.command(str(tmp_path / "work"), Limits(), slot=0, program=["/bin/cat", str(env / "marker")])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
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
    assert exported == {"solution": 13.0, "partial": 10.0, "release": 0.0}  # no cascade from softmax_loss
    run(course, "nbgrader", "generate_feedback", ASSIGNMENT, "--force")
    autograded = (course / "autograded" / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" in autograded  # the instructor's copy keeps them
    for student in ("solution", "partial", "release"):
        html = (course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        assert "HIDDEN TESTS" not in html and "hidden=True" not in html and "own_work" not in html
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
        share_reference_cache(course)  # the source's reference records: made once per session
        for student, nb in honest_submissions(course).items():
            submit(course, student, nb)
        run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--workers", "2", "--quiet", "--db-url", db_url)
        assert not (course / "gradebook.db").exists()
        assert gradebook_rows(db_url) == reference
    finally:
        server.stop()


@pytest.mark.slow
def test_trusted_mode_without_sandbox_gives_the_same_grades(reference, tmp_path):
    course = make_course(tmp_path / "course", references="own")  # its own reference run, unsandboxed
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
