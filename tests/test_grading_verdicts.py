"""Verdicts decided outside the student's process: a small assignment written with course_lib.checks, graded
by ``python -m course_lib.grading autograde`` in the sandbox, against forged, hooked and reference-calling
submissions. The student's kernel can hand back any data; only right values score.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nbformat
import pytest
from grading_helpers import ROOT, run, scores

from course_lib.grading import reference, sandbox

pytestmark = pytest.mark.slow
DEMO = "00_demo"
SETUP = """import numpy as np
from course_lib.checks import Test, reference
ref = reference("course_lib.feedforward")
"""
SOLUTION = """def affine_forward(x, W, b):
    ### BEGIN SOLUTION
    out = x @ W + b
    ### END SOLUTION
    return out, (x, W, b)
"""
STUB = "def affine_forward(x, W, b):\n    raise NotImplementedError()\n"
TEST = """t = Test("affine_forward", seed=0)
x, W, b = t.rng.standard_normal((3, 4)), t.rng.standard_normal((4, 2)), t.rng.standard_normal(2)
out, _ = affine_forward(x, W, b)
t.close("out", out, lambda: ref.affine_forward(x, W, b)[0], what="the layer's output",
        mistakes={"did you forget the bias?": lambda: x @ W})
### BEGIN HIDDEN TESTS
th = Test("affine_forward_hidden", hidden=True, seed=1)
x, W, b = th.rng.standard_normal((5, 3)), th.rng.standard_normal((3, 6)), th.rng.standard_normal(6)
with th.own_work("course_lib.feedforward"):
    out, _ = affine_forward(x, W, b)
th.close("out", out, lambda: ref.affine_forward(x, W, b)[0], what="more shapes")
### END HIDDEN TESTS
"""
SOFTMAX = """def double(v):
    ### BEGIN SOLUTION
    return 2 * v
    ### END SOLUTION
"""
TEST2 = """t = Test("double", seed=2)
v = t.rng.standard_normal(4)
t.close("twice", double(v), lambda: 2 * v)
"""


def _cell(source, grade_id, kind):
    meta = {"grade_id": grade_id, "schema_version": 3, "task": False, "grade": kind in ("test",),
            "solution": kind == "solution", "locked": kind in ("test", "setup")}
    if kind == "test":
        meta["points"] = 2
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})


def demo_source():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["course"] = {"sandbox_modules": ["course_lib.checks"]}
    nb.cells = [_cell(SETUP, "setup", "setup"), _cell(SOLUTION, "affine_forward", "solution"),
                _cell(TEST, "test_affine_forward", "test"), _cell(SOFTMAX, "double", "solution"),
                _cell(TEST2, "test_double", "test")]
    return nb


def with_answer(nb, grade_id, source):
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = source
    return nb


def add_cell(nb, source, after=None):
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    index = len(nb.cells) if after is None else next(
        i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == after) + 1
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    return nb


FORGE = """
import json
from IPython.display import publish_display_data
from course_lib.checks import MIME, encode
import numpy as np
# hand back a value without computing it, and hide the real (failing) check
for key, test in (("out", "affine_forward"), ("out", "affine_forward_hidden")):
    publish_display_data({MIME: {"test": test, "key": key, "value": encode(np.zeros((3, 2)))}})
"""
HOOK = """
import course_lib.checks as c
c.judge = lambda *a, **k: None
c.Test.close = lambda self, *a, **k: None
c.mode = lambda: "assert"
get_ipython().display_pub.publish = lambda *a, **k: None
"""
CALL_REFERENCE = STUB.replace("raise NotImplementedError()", (
    "import threading, sys\n    sys.setprofile(None)\n    box = []\n"
    "    def work():\n        from course_lib.feedforward import affine_forward as f\n        box.append(f(x, W, b))\n"
    "    t = threading.Thread(target=work); t.start(); t.join()\n    return box[0]"))
WRONG_BIAS = STUB.replace("raise NotImplementedError()", "return x @ W, (x, W, b)")


def cases(source):
    release = with_answer(with_answer(source, "affine_forward", STUB), "double",
                          "def double(v):\n    raise NotImplementedError()\n")
    return {
        "honest": (source, {"test_affine_forward": 2, "test_double": 2}),
        "release": (release, {"test_affine_forward": 0, "test_double": 0}),
        "wrong_bias": (with_answer(source, "affine_forward", WRONG_BIAS), {"test_affine_forward": 0,
                                                                           "test_double": 2}),
        "forged_records": (add_cell(with_answer(source, "affine_forward", STUB), FORGE, after="affine_forward"),
                           {"test_affine_forward": 0, "test_double": 2}),
        "hooked_checks": (add_cell(with_answer(source, "affine_forward", WRONG_BIAS), HOOK, after="setup"),
                          {"test_affine_forward": 0, "test_double": 0}),
        "calls_reference": (with_answer(source, "affine_forward", CALL_REFERENCE),
                            {"test_affine_forward": 0, "test_double": 2}),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not sandbox.available()[0]:
        pytest.skip("no sandbox here: " + sandbox.available()[1])
    course = tmp_path_factory.mktemp("verdicts")
    (course / "source" / DEMO).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        (ROOT / "assignments" / "nbgrader_config.py").read_text())
    source = demo_source()
    nbformat.write(source, course / "source" / DEMO / f"{DEMO}.ipynb")
    run(course, "nbgrader", "generate_assignment", DEMO, "--force")
    expected = {}
    for student, (nb, want) in cases(source).items():
        folder = course / "submitted" / student / DEMO
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{DEMO}.ipynb")
        expected[student] = want
    result = run(course, "course_lib.grading", "autograde", DEMO, "--quiet", "--workers", "2",
                 "--limits", "cell=30,wall=240")
    return course, expected, result


def test_only_right_values_score(graded):
    course, expected, _ = graded
    got = scores(f"sqlite:///{course}/gradebook.db", DEMO)
    assert {s: {g: v for g, v in row.items()} for s, row in got.items()} == expected


def test_feedback_names_the_mistake_and_the_reference_stays_out_of_reach(graded):
    course, _, result = graded
    nb = nbformat.read(course / "autograded" / "wrong_bias" / DEMO / f"{DEMO}.ipynb", as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert any("did you forget the bias?" in "".join(o.traceback) for o in errors)
    nb = nbformat.read(course / "autograded" / "calls_reference" / DEMO / f"{DEMO}.ipynb", as_version=4)
    text = json.dumps([c.outputs for c in nb.cells if c.cell_type == "code"])
    assert "course_lib.feedforward is not available while your assignment is graded" in text
    with open(course / "reports" / DEMO / "problems.csv") as f:
        rows = list(csv.DictReader(f))
    assert any(r.get("student") == "calls_reference" and "used the reference" in json.dumps(r) for r in rows)


def test_reference_cache_is_private(graded):
    course, _, _ = graded
    folder = course / ".grading" / "reference" / DEMO
    files = list(folder.glob("*.json"))
    assert len(files) == 1 and oct(folder.stat().st_mode & 0o777) == "0o700"
    records = json.loads(files[0].read_text())
    assert set(records) == {"test_affine_forward", "test_double"}
    assert all("spec" in r for r in records["test_affine_forward"])


def test_secret_changes_hidden_inputs_not_grades(graded, tmp_path):
    course, expected, _ = graded
    secret = tmp_path / "secret"
    secret.write_text("spring 2027 section B\n")
    run(course, "course_lib.grading", "autograde", DEMO, "--quiet", "--student", "honest", "--student",
        "wrong_bias", "--secret-file", str(secret), "--per-student-inputs", "--limits", "cell=30,wall=240")
    got = scores(f"sqlite:///{course}/gradebook.db", DEMO)
    assert got["honest"] == expected["honest"] and got["wrong_bias"] == expected["wrong_bias"]
    # one reference run per student key, plus the class one of the first run
    assert len(list((course / ".grading" / "reference" / DEMO).glob("*.json"))) == 3


def test_restricted_course_lib_holds_only_what_is_allowed(tmp_path):
    target = reference.restricted_course_lib(["course_lib.checks"], tmp_path)
    assert (target / "checks.py").read_text() == (reference.course_lib_dir() / "checks.py").read_text()
    stub = (target / "feedforward.py").read_text()
    assert stub.startswith("raise ImportError") and "def " not in stub
    assert (target / "grading" / "runner.py").exists()
    uses = reference.forbidden_uses(["import course_lib.feedforward as f", "from course_lib import rnn, checks",
                                     "x = course_lib . lstm.lstm_forward"], ["course_lib.checks"])
    assert uses == ["course_lib.feedforward", "course_lib.lstm", "course_lib.rnn"]
    copied = 'ref = reference("course_lib.feedforward")'
    assert reference.forbidden_uses([copied + "\nx = 1"], ["course_lib.checks"], [copied]) == []
    assert os.access(Path(target), os.R_OK)
