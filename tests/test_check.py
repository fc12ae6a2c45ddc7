"""Tests of the students' self-check command, ``python -m course_lib.check``."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "assignments" / "source" / "01_feedforward" / "01_feedforward.ipynb"


def run_check(path):
    return subprocess.run([sys.executable, "-m", "course_lib.check", str(path)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


@pytest.mark.slow
def test_check_reports_every_question_and_finds_a_bug(tmp_path):
    nb = nbformat.read(SOURCE, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "softmax_loss":
            cell.source = cell.source.replace("ds /= N", "ds /= 2 * N")  # a wrong gradient
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "affine_forward":
            cell.source = cell.source.replace("out = x @ W + b", "out = x @ W")  # forgot the bias
    buggy = tmp_path / "buggy.ipynb"
    nbformat.write(nb, buggy)
    before = buggy.read_bytes()

    result = run_check(buggy)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("test_")}
    assert set(lines) == {"test_affine_forward", "test_affine_backward", "test_softmax_loss",
                          "test_numerical_gradient", "test_two_layer_loss"}
    assert "FAILED  AssertionError" in lines["test_affine_forward"]
    assert "FAILED  AssertionError" in lines["test_softmax_loss"]
    assert lines["test_affine_backward"].endswith("passed")
    assert lines["test_numerical_gradient"].endswith("passed")
    assert lines["test_two_layer_loss"].endswith("passed")  # its test runs stand-ins, not the wrong loss
    assert "3 of 5 questions pass (8/13 points" in result.stdout
    assert buggy.read_bytes() == before  # never modifies the student's file


@pytest.mark.slow
def test_check_passes_the_solution():
    result = run_check(SOURCE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 of 5 questions pass (13/13 points" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"{not json", "not a valid Jupyter notebook"), (b"\x00\x01\x02", "not a valid Jupyter notebook"),
     (json.dumps(nbformat.v4.new_notebook()).encode(), "no graded test cells")],
)
def test_check_rejects_bad_files_clearly(tmp_path, content, message):
    bad = tmp_path / "bad.ipynb"
    bad.write_bytes(content)
    result = run_check(bad)
    assert result.returncode == 2
    assert message in result.stderr
