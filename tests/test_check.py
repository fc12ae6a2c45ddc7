"""Tests of the students' self-check command, ``python -m course_lib.check``."""

import json
import re
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
    assert re.search(r"^visible tests: 3 of 5 questions pass \(8/13 points", result.stdout, re.M)
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


# --- a small assignment built here: locked cells with nbgrader's checksums, as in a released notebook


def _cell(kind, source, grade_id, grade=False, solution=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
            "task": False}
    if points is not None:
        meta["points"] = points
    new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return new(source, metadata={"nbgrader": meta})


def released(tmp_path, answer="def f(x):\n    return x + 1"):
    """A released notebook (checksums of its locked cells as nbgrader stores them) and its file."""
    from nbgrader.utils import compute_checksum

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [
        _cell("code", "OFFSET = 1", "setup", locked=True),
        _cell("code", answer, "f", solution=True),
        _cell("code", "assert f(1) == 1 + OFFSET, 'f(1) is wrong'\nprint('test_f: passed')", "test_f", grade=True,
              locked=True, points=2),
        _cell("markdown", "Explain f.", "explain_f", grade=True, solution=True, points=3),
        _cell("code", "assert f(2) == 3, 'f(2) is wrong'", "test_f_again", grade=True, locked=True, points=1),
    ]
    for cell in nb.cells:
        meta = cell.metadata["nbgrader"]
        if meta["locked"] or (meta["grade"] and not meta["solution"]):
            meta["checksum"] = compute_checksum(cell)
    path = tmp_path / "release.ipynb"
    nbformat.write(nb, path)
    return nb, path


def report_lines(result):
    return {line.split()[0]: line for line in result.stdout.splitlines() if line.split()}


def test_check_lists_manually_graded_points_as_pending_and_prints_cleanly(tmp_path):
    _, path = released(tmp_path)
    result = run_check(path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = report_lines(result)
    assert lines["test_f"].endswith("passed") and lines["test_f_again"].endswith("passed")
    assert lines["explain_f"].endswith("3 pt  pending (graded by hand)")
    summary = [line for line in result.stdout.splitlines() if line.startswith("visible tests:")]
    assert summary == ["visible tests: 2 of 2 questions pass (3/3 points, if the hidden tests pass too); "
                       "3 more points are graded by hand"]
    # nothing from the kernel (e.g. ipykernel's warning about TCP without encryption) mixes with the report
    assert result.stderr == ""
    assert "WARNING" not in result.stdout and "IPKernelApp" not in result.stdout


def test_check_refuses_to_count_an_edited_locked_test(tmp_path):
    nb, _ = released(tmp_path, answer="def f(x):\n    return 0")  # a wrong answer...
    nb.cells[2].source = "print('test_f: passed')"  # ...and its test with the assert deleted
    edited = tmp_path / "edited.ipynb"
    nbformat.write(nb, edited)
    result = run_check(edited)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = report_lines(result)
    assert "FAILED  this locked test cell was edited" in lines["test_f"]
    assert "locked cells that were changed" in result.stdout and "(test_f)" in result.stdout


def test_check_restores_locked_cells_from_the_original(tmp_path):
    _, release = released(tmp_path)
    (tmp_path / "student").mkdir()
    nb, _ = released(tmp_path / "student", answer="def f(x):\n    return 0")
    nb.cells[2].source = "print('test_f: passed')"
    nb.cells[0].source = "OFFSET = -1"  # the setup cell changed too
    del nb.cells[4]  # and a test cell deleted
    edited = tmp_path / "edited.ipynb"
    nbformat.write(nb, edited)
    result = run_check_args(edited, "--original", release)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = report_lines(result)
    assert "FAILED  AssertionError: f(1) is wrong" in lines["test_f"]  # the original test ran
    assert "FAILED  AssertionError" in lines["test_f_again"]  # the deleted test was put back and ran
    assert "restored from the original" in result.stdout and "setup" in result.stdout
    assert "locked cells deleted from the notebook (put back from the original, as the grader does): " \
           "test_f_again" in result.stdout


def test_check_puts_back_a_deleted_setup_cell_and_ignores_junk_metadata(tmp_path):
    _, release = released(tmp_path)
    (tmp_path / "student").mkdir()
    nb, _ = released(tmp_path / "student")  # the right answer...
    del nb.cells[0]  # ...with the setup cell deleted
    nb.cells.append(nbformat.v4.new_markdown_cell("junk", metadata={"nbgrader": "junk"}))  # not a dict
    edited = tmp_path / "edited.ipynb"
    nbformat.write(nb, edited)
    result = run_check_args(edited, "--original", release)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = report_lines(result)
    assert lines["test_f"].endswith("passed") and lines["test_f_again"].endswith("passed")
    assert "deleted from the notebook" in result.stdout and "setup" in result.stdout


def test_check_points_at_the_cell_of_a_syntax_error(tmp_path):
    _, path = released(tmp_path, answer="def f(x):\n    return (x + 1")
    result = run_check(path)
    assert result.returncode == 1
    lines = report_lines(result)
    assert "NameError" in lines["test_f"] and "cell 2 (f): SyntaxError" in lines["test_f"]
    assert "errors in your answer cells" in result.stdout
    assert re.search(r"cell 2 \(f\): SyntaxError: .*\(line \d+ of the cell\)", result.stdout), result.stdout


def run_check_args(path, *args):
    return subprocess.run([sys.executable, "-m", "course_lib.check", str(path), *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


# --- an environment without the notebooks extra (course_lib installed alone)


def test_check_without_the_notebooks_extra_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from course_lib import check

    _, path = released(tmp_path)
    monkeypatch.setitem(sys.modules, "nbformat", None)  # import nbformat now fails as if it were not installed
    assert check.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "nbformat" in err
    assert "notebooks extra" in err and check.INSTALL_HINT in err


def test_check_without_nbgrader_says_that_edited_locked_cells_go_unnoticed(tmp_path, monkeypatch):
    from course_lib import check

    nb, _ = released(tmp_path, answer="def f(x):\n    return 0")
    nb.cells[2].source = "print('test_f: passed')"  # an edited test cell, which only nbgrader's checksum shows
    edited = tmp_path / "edited.ipynb"
    nbformat.write(nb, edited)
    monkeypatch.setitem(sys.modules, "nbgrader.utils", None)  # nbgrader not installed
    report = check.check_notebook(edited)
    assert report.no_nbgrader and not report.verified and not report.edited
    text = check.format_report(report)
    assert "nbgrader is not installed here" in text and check.INSTALL_HINT in text
    assert "holds no nbgrader checksums" not in text  # it does hold them: that line would mislead
