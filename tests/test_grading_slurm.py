"""``autograde --backend slurm``: submissions run as Slurm array tasks, verdicts and gradebook stay in the parent.

A single-node Slurm (munged, slurmctld, slurmd; :mod:`slurm_helpers`) is started on this machine for the module
and stopped afterwards, also when a test fails. Needs ``apt-get install slurm-wlm munge`` and root (slurmd);
without them the tests are skipped locally and fail on CI (``CI`` set; ``.ci/run`` installs them), so they can
never pass silently in CI. The result checks at the top need no Slurm.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess

import pytest
from grading_helpers import (
    ASSIGNMENT,
    gradebook_rows,
    make_course,
    release_nb,
    run,
    source_nb,
    submit,
    with_source,
)
from slurm_helpers import SlurmCluster

from course_lib.grading import sandbox
from course_lib.grading.limits import Limits
from course_lib.grading.slurm import SlurmBackend, SlurmError
from course_lib.grading.slurm_results import read_result, validate
from course_lib.grading.slurm_task import result_cap

LIMITS = "cell=10,wall=120,ram=2048"
WRONG_SOFTMAX = "def softmax_loss(s, y):\n    return 0.0, np.zeros_like(s)\n"
GOOD = {"cells": {"3": {"status": "ok", "reason": None, "outputs": [], "records": [], "blocked": []}},
        "stop_reason": None, "language_info": {"name": "python"}}


# --- the parent's reading of what a node sends back (untrusted data): no Slurm needed -------------------------

@pytest.mark.parametrize("result, why", [
    (GOOD, None),
    ([], "not a JSON object"),
    ({"cells": []}, "no cells"),
    ({"cells": {"x": {"status": "ok"}}}, "not the runner's"),
    ({"cells": {"3": {"status": 1}}}, "no valid status"),
    ({"cells": {"3": {"status": "ok", "records": "forged"}}}, "records is not a list"),
    ({"cells": {}, "stop_reason": {"a": 1}}, "stop_reason"),
    ({"cells": {}, "language_info": "python"}, "language_info"),
])
def test_a_nodes_result_must_have_the_runners_shape(result, why):
    got = validate(result)
    assert got is None if why is None else why in got


def test_a_nodes_result_is_read_like_an_untrusted_file(tmp_path):
    limits = Limits(output=1)
    (tmp_path / "result.json").write_text(json.dumps(GOOD))
    assert read_result(str(tmp_path), limits) == (GOOD, None)
    (tmp_path / "result.json").write_bytes(b" " * (result_cap(limits) + 1))
    assert "larger than" in read_result(str(tmp_path), limits)[1]
    (tmp_path / "result.json").unlink()
    (tmp_path / "elsewhere.json").write_text(json.dumps(GOOD))
    (tmp_path / "result.json").symlink_to(tmp_path / "elsewhere.json")
    assert "symbolic link" in read_result(str(tmp_path), limits)[1]
    (tmp_path / "result.json").unlink()
    (tmp_path / "result.json").write_text("{not json")
    result, failure = read_result(str(tmp_path), limits)
    assert result is None and "refused" in failure
    (tmp_path / "result.json").write_text(json.dumps({"cells": "all passed"}))
    assert "no cells" in read_result(str(tmp_path), limits)[1]


# --- against a real single-node Slurm ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slurm():
    missing = SlurmCluster.missing()
    why = (f"Slurm is not installed ({', '.join(missing)} missing; apt-get install slurm-wlm munge)" if missing
           else "slurmd needs root" if os.geteuid() != 0 else None)
    if why is None and not sandbox.available()[0]:
        why = f"no sandbox here ({sandbox.available()[1]}); CI installs bubblewrap"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"{why}: required on CI (.ci/run installs slurm-wlm, munge and bubblewrap)")
        pytest.skip(why)
    cluster = SlurmCluster()
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture()
def slurm_env(slurm, monkeypatch):
    """SLURM_CONF for this process (the Python API) and the commands it starts."""
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))
    yield slurm.env()
    slurm.cancel_all()  # whatever a failed test left in the queue


def class_of_four(course):
    sol = source_nb()
    return {"right": sol, "partial": with_source(sol, "softmax_loss", WRONG_SOFTMAX), "empty": release_nb(course),
            "loops": with_source(sol, "affine_forward", "while True:\n    pass\n")}


def problems_csv(course) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    with open(course / "reports" / ASSIGNMENT / "problems.csv") as f:
        for row in csv.DictReader(f):
            found.setdefault(row["student"], []).append(row["kind"])
    return found


@pytest.mark.slow
def test_slurm_backend_gives_the_local_pools_grades(slurm_env, slurm, tmp_path):
    course = make_course(tmp_path / "slurm")
    for student, nb in class_of_four(course).items():
        submit(course, student, nb)
    local = tmp_path / "local"
    shutil.copytree(course, local)

    run(local, "course_lib.grading", "autograde", ASSIGNMENT, "--quiet", "--workers", "2", "--limits", LIMITS)
    run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--quiet", "--limits", LIMITS, "--backend", "slurm",
        "--slurm-partition", "grading", "--slurm-args=--job-name=course-test --comment=test",
        extra_env={"SLURM_CONF": str(slurm.conf)})

    rows = gradebook_rows(f"sqlite:///{course / 'gradebook.db'}")
    assert rows == gradebook_rows(f"sqlite:///{local / 'gradebook.db'}")
    totals = {s: sum(g[0] or 0 for g in grades.values()) for s, grades in rows.items()}
    assert totals["right"] == 13 and totals["empty"] == 0 and 0 < totals["partial"] < 13
    assert 0 < totals["loops"] < 13  # only the looping question is lost
    assert problems_csv(course) == problems_csv(local) == {"loops": ["timed out"]}
    for student in rows:  # the parent wrote autograded/ as for the local pool
        assert (course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    assert slurm.jobs() == []  # nothing left in the queue
    assert list((course / ".grading" / "slurm").iterdir()) == []  # the shared run folder is removed


@pytest.mark.slow
def test_a_failed_job_is_a_problem_row_never_a_pass(slurm_env, tmp_path):
    from course_lib.grading import autograde

    course = make_course(tmp_path / "course")
    submit(course, "right", source_nb())
    # the array task's interpreter is /bin/false: the job FAILS on the node before it runs anything
    with SlurmBackend(tmp_path / "shared", python="/bin/false", grace=2, squeue_every=1) as backend:
        outcomes = autograde(course, ASSIGNMENT, limits=Limits.parse(LIMITS), progress=False, backend=backend)
    (outcome,) = outcomes
    assert outcome.score == 0
    assert [kind for kind, _ in outcome.problems] == ["crashed"]
    assert "ended FAILED" in outcome.problems[0][1] and "without a result" in outcome.problems[0][1]
    grades = gradebook_rows(f"sqlite:///{course / 'gradebook.db'}")["right"]
    assert grades and all((grade[0] or 0) == 0 for grade in grades.values())


@pytest.mark.slow
def test_slurm_taking_too_long_is_cancelled_and_reported(slurm_env, slurm, tmp_path):
    from course_lib.grading import autograde

    course = make_course(tmp_path / "course")
    submit(course, "loops", class_of_four(course)["loops"])
    # each cell may run 60 s, but the grader gives Slurm only 20 s for the class: it cancels, never hangs
    with SlurmBackend(tmp_path / "shared", timeout=20, squeue_every=1) as backend:
        outcomes = autograde(course, ASSIGNMENT, limits=Limits.parse("cell=60,wall=120"), progress=False,
                             backend=backend)
    (outcome,) = outcomes
    assert outcome.score == 0
    assert [kind for kind, _ in outcome.problems] == ["timed out"]
    assert "--slurm-timeout" in outcome.problems[0][1] and "cancelled" in outcome.problems[0][1]
    slurm.cancel_all(timeout=30)
    assert slurm.jobs() == []


@pytest.mark.slow
def test_bad_slurm_options_get_a_clear_error(slurm_env, tmp_path):
    course = make_course(tmp_path / "course")
    submit(course, "right", source_nb())
    cases = [
        (["--backend", "slurm", "--slurm-partition", "nosuch"], "no Slurm partition 'nosuch'"),
        (["--backend", "slurm", "--slurm-args=--array=0-9"], "may not set --array"),
        (["--backend", "slurm", "--slurm-args=--qos='unclosed"], "--slurm-args"),
        (["--slurm-partition", "grading"], "need --backend slurm"),
        (["--backend", "slurm", "--no-sandbox-i-trust-this-code"], "cannot be combined"),
    ]
    for args, message in cases:
        out = run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--quiet", *args, check=False,
                  extra_env={"SLURM_CONF": slurm_env["SLURM_CONF"]})
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr[-2000:])
    with pytest.raises(SlurmError, match="not found on PATH"):
        old = os.environ["PATH"]
        try:
            os.environ["PATH"] = "/nonexistent"
            SlurmBackend(tmp_path / "shared")
        finally:
            os.environ["PATH"] = old
    assert subprocess.run(["squeue", "-h"], env=slurm_env, capture_output=True, text=True).stdout == ""
