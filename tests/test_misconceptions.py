"""The class misconception report (course_lib/grading/misconceptions.py): counts, files, and the page in a browser.

The counts against the real catalogues of wrong answers are checked in tests/test_mistakes.py (each catalogue
graded as a class), and through the sandboxed grader by tests/test_demo_class.py (the demo class's report).
"""

from __future__ import annotations

import csv
import json
import os
import threading
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from course_lib.checks import message
from course_lib.grading import misconceptions as mc

ROOT = Path(__file__).resolve().parent.parent
VISIBLE = {"kind": "close", "tol": 1e-7, "what": "dW", "hidden": False}
HIDDEN = {"kind": "close", "tol": 1e-7, "what": "dW of a larger batch", "hidden": True}
AVERAGED = "dW is 1/N of the expected value: did you average instead of sum over the batch?"
TRANSPOSED = "dW is transposed"
CHECKS = {"test_backward": [{"test": "backward", "key": "dW", "spec": VISIBLE, "mistakes": [AVERAGED, TRANSPOSED]},
                            {"test": "backward_hidden", "key": "dW", "spec": HIDDEN, "mistakes": [AVERAGED]}],
          "test_forward": [{"test": "forward", "key": "out", "spec": VISIBLE, "mistakes": []}]}
POINTS = {"test_backward": 3.0, "test_forward": 2.0}


def failure(check: dict, problem: str) -> str:
    return message(check["test"], check["key"], check["spec"], problem)


def results() -> dict[str, dict[str, dict]]:
    vis, hid = CHECKS["test_backward"]
    ok = mc.verdict_record(True, [])
    return {
        "ana": {"test_backward": ok, "test_forward": ok},
        "ben": {"test_backward": mc.verdict_record(False, [failure(vis, AVERAGED), failure(hid, AVERAGED)]),
                "test_forward": ok},
        "cleo": {"test_backward": mc.verdict_record(False, [failure(hid, "differs from the expected values")]),
                 "test_forward": mc.verdict_record(False, [], ename="NotImplementedError")},
        "dan": {"test_backward": mc.verdict_record(False, [failure(vis, TRANSPOSED), failure(hid, "is None")]),
                "test_forward": mc.verdict_record(False, [], status="timeout")},
        "<b>eve</b>": {"test_backward": mc.verdict_record(False, [failure(vis, "is all zeros")]), "test_forward": ok},
    }


def test_every_student_lands_in_exactly_one_outcome_per_question():
    tallies = {q.grade_id: q for q in mc.tally("01", CHECKS, POINTS, results(), roster=["fay"])}
    back, fwd = tallies["test_backward"], tallies["test_forward"]
    assert back.students == {"passed": ["ana"], "mistake": ["ben", "dan"], "other": ["<b>eve</b>", "cleo"],
                             "unanswered": [], "timeout": [], "missing": ["fay"]}
    assert back.mistakes == {AVERAGED: ["ben"], TRANSPOSED: ["dan"]}
    assert back.visible_failed == ["<b>eve</b>", "ben", "dan"] and back.hidden_only == ["cleo"]
    assert fwd.students == {"passed": ["<b>eve</b>", "ana", "ben"], "mistake": [], "other": [],
                            "unanswered": ["cleo"], "timeout": ["dan"], "missing": ["fay"]}
    assert back.n == fwd.n == 6 and back.share(2) == pytest.approx(1 / 3)


def test_verdicts_merge_across_runs_and_bad_files_are_refused(tmp_path):
    path = str(tmp_path / "verdicts.json")
    first = results()
    mc.save_verdicts(path, "01", CHECKS, POINTS, first)
    regrade = {"cleo": {"test_backward": mc.verdict_record(True, []), "test_forward": mc.verdict_record(True, [])}}
    data = mc.save_verdicts(path, "01", CHECKS, POINTS, regrade)
    assert sorted(data["students"]) == sorted(first) and data["students"]["cleo"]["test_forward"]["passed"]
    assert mc.load_verdicts(path)["students"]["ben"] == first["ben"]
    assert mc.load_verdicts(str(tmp_path / "absent.json")) == {}
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="grade the assignment again"):
        mc.load_verdicts(str(tmp_path / "bad.json"))
    (tmp_path / "other.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a verdicts file"):
        mc.load_verdicts(str(tmp_path / "other.json"))


def test_csv_counts_and_names_only_when_asked(tmp_path):
    tallies = mc.tally("01", CHECKS, POINTS, results(), roster=["=cmd"])
    mc.write_csv(tallies, str(tmp_path / "counts.csv"))
    mc.write_csv(tallies, str(tmp_path / "names.csv"), names=True)
    rows = list(csv.DictReader(open(tmp_path / "counts.csv", encoding="utf-8")))
    averaged = next(r for r in rows if r["question"] == "test_backward" and r["mistake"] == AVERAGED)
    assert (averaged["students"], averaged["of"], averaged["share"]) == ("1", "6", "0.167")
    assert "student_ids" not in rows[0] and "ana" not in (tmp_path / "counts.csv").read_text()
    named = list(csv.DictReader(open(tmp_path / "names.csv", encoding="utf-8")))
    missing = next(r for r in named if r["question"] == "test_backward" and r["category"] == "not submitted")
    assert missing["student_ids"] == "'=cmd"  # a spreadsheet never runs an id as a formula


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    tallies = mc.tally("01_feedforward", CHECKS, POINTS, results(), roster=["fay"])
    mc.write_reports(tallies, str(folder), "01_feedforward: what the class got wrong", names=True)
    from test_site import QuietHandler

    handler = partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/misconceptions.html", folder
    server.shutdown()


@pytest.mark.slow
def test_the_page_loads_with_no_request_and_passes_axe(report_page):
    from test_site import AXE, CHROME_ARGS, CHROMIUM, axe_violations

    if CHROMIUM is None or not AXE.exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium and axe-core are required on CI (.ci/run installs them)")
        pytest.skip("needs Chromium and axe-core (see the README)")
    from playwright.sync_api import sync_playwright

    url, folder = report_page
    html_text = (folder / "misconceptions.html").read_text()
    assert "<b>eve</b>" not in html_text and "&lt;b&gt;eve&lt;/b&gt;" in html_text  # ids are escaped
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests, errors = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url, wait_until="networkidle")
        assert requests == [url] and not errors, (requests, errors)  # self-contained: one request, no script
        charts = page.locator("svg[role=img]")
        assert charts.count() == 2
        assert "passed 17%" in charts.first.locator("title").text_content()
        assert page.locator("h3").first.inner_text() == "test_backward (3 points): 17% passed"
        violations = axe_violations(page)
        shots = ROOT / "_build" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "misconceptions.png"), full_page=True)
        browser.close()
    assert not violations, json.dumps(violations, indent=1)


def test_the_command_rebuilds_each_assignment_and_the_course_report(tmp_path):
    import shutil
    import subprocess
    import sys

    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "assignments" / "nbgrader_config.py", course)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ["ana", "ben", "cleo", "dan", "<b>eve</b>", "fay"]:
            gb.add_student(student)

    def command(*args):
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        env.pop("NBGRADER_DB_URL", None)
        return subprocess.run([sys.executable, "-m", "course_lib.grading", "misconceptions", *args], cwd=course,
                              env=env, capture_output=True, text=True, timeout=300)

    empty = command()
    assert empty.returncode == 2 and "no graded assignment" in empty.stderr
    for assignment in ("01_a", "02_b"):
        (course / "reports" / assignment).mkdir(parents=True)
        mc.save_verdicts(str(course / "reports" / assignment / "verdicts.json"), assignment, CHECKS, POINTS,
                         results())
    done = command("--names")
    assert done.returncode == 0, done.stderr
    course_csv = course / "reports" / "misconceptions.csv"
    assert str(course_csv) in done.stdout and (course / "reports" / "02_b" / "misconceptions.html").exists()
    rows = list(csv.DictReader(open(course_csv, encoding="utf-8")))
    assert {r["assignment"] for r in rows} == {"01_a", "02_b"}
    missing = [r for r in rows if r["category"] == "not submitted"]
    assert {r["student_ids"] for r in missing} == {"fay"}  # on the roster, never graded
    one = command("01_a")
    assert one.returncode == 0 and "reports/misconceptions.csv" not in one.stdout.replace(str(course), "")
    (course / "reports" / "02_b" / "verdicts.json").write_text("{")
    broken = command("02_b")
    assert broken.returncode == 2 and "grade the assignment again" in broken.stderr
