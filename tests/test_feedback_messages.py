"""Feedback a student can act on (course_lib.grading.feedback): a failed cell never says it passed, every failed
check's message reaches the feedback (visible or hidden), and only what quotes hidden test code is redacted."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_lib.checks import message
from course_lib.grading.feedback import REDACTED, HideHiddenTests, check_messages, hidden_lines, inert_output

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "assignments" / "source").glob("*/*.ipynb"))
GRADED = {"grade": True, "locked": True, "points": 1, "solution": False, "schema_version": 3}
OWN_SIGMOID = ("a step whose pre-activations are about +-1000 must run without a floating-point overflow (exp of "
               "a large number? use the sigmoid defined above)")
TEST_SOURCE = '''t = Test("step", seed=0)
t.close("h", step(x), lambda: ref.step(x), what="h of one step", mistakes={
    "is what leaving the bias out gives": lambda: ref.step(x, b=0)})
print("step: visible test passed")
### BEGIN HIDDEN TESTS
th = Test("step_hidden", hidden=True, seed=101)
_secret_inputs = np.array([[123.25, -7.5], [0.125, 99.0]])
th.equal("overflow", _problem(step, _secret_inputs), "none", what="a step whose pre-activations are about "
         "+-1000 must run without a floating-point overflow (exp of a large number? use the sigmoid defined above)")
### END HIDDEN TESTS'''


def grading_error(problems: list[str]) -> dict:
    """The error output course_lib.grading.verdict.apply gives a failed cell."""
    text = "\n".join(f"- {line}" for line in problems)
    reason = f"{len(problems)} check(s) failed"
    return nbformat.v4.new_output("error", ename="GradingError", evalue=reason,
                                  traceback=[f"GradingError: {reason}\n{text}"])


def notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def graded_cell(grade_id: str, outputs: list) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(TEST_SOURCE, metadata={"nbgrader": dict(GRADED, grade_id=grade_id)})
    cell.outputs = outputs
    return cell


def shown(cell) -> str:
    return "".join(o.get("text", "") + "\n".join(o.get("traceback", [])) for o in cell.outputs)


def test_a_failed_cell_never_says_it_passed_and_a_passed_one_does():
    printed = nbformat.v4.new_output("stream", name="stdout", text="step: visible test passed\n")
    failed = graded_cell("failed", [printed, grading_error([message("step", "h", {"what": "h of one step"},
                                                                  "differs from the expected values")])])
    passed = graded_cell("passed", [nbformat.v4.new_output("stream", name="stdout",
                                                           text="step: visible test passed\n")])
    nb, _ = HideHiddenTests()(notebook(failed, passed), {})
    assert "passed" not in shown(nb.cells[0]), shown(nb.cells[0])
    assert "step: failed" in shown(nb.cells[0]) and "differs from the expected values" in shown(nb.cells[0])
    assert shown(nb.cells[1]) == "step: visible test passed\n"


def test_a_hidden_checks_message_reaches_the_feedback_though_a_hidden_line_spells_it():
    problem = message("step_hidden", "overflow", {"what": OWN_SIGMOID, "hidden": True}, "is not the expected value")
    leak = "_secret_inputs = np.array([[123.25, -7.5], [0.125, 99.0]])"
    cell = graded_cell("t", [grading_error([problem, f"the kernel said: {leak}"])])
    nb, _ = HideHiddenTests()(notebook(cell), {})
    text = shown(nb.cells[0])
    assert problem in text, text  # the whole message, not a redaction notice
    assert "123.25" not in text and "_secret_inputs" not in text and REDACTED.strip() in text


def test_only_the_lines_that_quote_hidden_code_are_redacted():
    nb = notebook(graded_cell("t", []))
    secrets = hidden_lines(nb)
    assert secrets and not any("floatingpointoverflow" in s for s in secrets)  # the message is no secret
    out = inert_output(nbformat.v4.new_output("stream", name="stdout", text=(
        "epoch 1: loss 0.5\n_secret_inputs = np.array([[123.25, -7.5], [0.125, 99.0]])\nepoch 2: loss 0.4\n")),
        secrets)
    assert out["text"] == "epoch 1: loss 0.5\n" + REDACTED + "epoch 2: loss 0.4\n"
    # a quote spread over several lines is still found: then the whole output goes
    spread = "_secret_inputs = np.array([[123.25, -7.5],\n [0.125, 99.0]])\n"
    assert inert_output(nbformat.v4.new_output("stream", name="stdout", text=spread), secrets)["text"] == REDACTED


def test_check_messages_are_the_descriptions_and_hints_of_the_checks():
    found = check_messages(TEST_SOURCE)
    assert "h of one step" in found and "is what leaving the bias out gives" in found
    assert "".join(found).count("use the sigmoid defined above") == 1
    assert not any("123.25" in text for text in found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.parent.name for p in NOTEBOOKS])
def test_every_message_of_every_hidden_test_reaches_the_feedback(path):
    """For each assignment: each description and hint a graded test cell writes (visible or hidden) survives the
    feedback's redaction when a failed check shows it."""
    nb = nbformat.read(path, as_version=4)
    secrets = hidden_lines(nb)
    texts = [text for cell in nb.cells if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")
             and not cell.metadata.get("nbgrader", {}).get("solution") for text in check_messages(cell.source)]
    assert texts
    for text in texts:
        error = grading_error([f"hidden test x, {text}: key is not the expected value"])
        assert text in "\n".join(inert_output(error, secrets)["traceback"]), text


def test_the_autograded_notebook_never_says_a_failed_cell_passed():
    """verdict.apply rewrites the printout of a failed cell, as the feedback does (the instructor's notebook)."""
    from course_lib.grading.verdict import Verdict, apply

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('step: visible test passed')")])
    results = {"0": {"execution_count": 1, "outputs": [
        {"output_type": "stream", "name": "stdout", "text": "step: visible test passed\n"}]}}
    apply(nb, results, {0: Verdict(False, "1 check(s) failed", failed_checks=["test step: h differs"])})
    printed = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")
    assert "visible test passed" not in printed and "step: failed" in printed, printed


def test_a_test_cell_that_wrote_to_stderr_fails_and_says_what_it_wrote():
    """nbgrader's rule in the sandbox too: output on stderr fails a graded cell, whatever its values."""
    from course_lib.checks import encode
    from course_lib.grading.verdict import decide

    reference = [{"test": "step", "key": "h", "spec": {"kind": "equal", "what": "h"}, "value": encode(1)}]
    result = {"status": "ok", "records": [{"test": "step", "key": "h", "value": encode(1)}],
              "outputs": [{"output_type": "stream", "name": "stderr", "text": "\ncareful: x is large\n"}]}
    verdict = decide(result, reference)
    assert not verdict.passed and verdict.failed_checks == [
        "the cell wrote to stderr, which fails a test cell as it does under nbgrader (a warning, or a print to "
        "sys.stderr?): 'careful: x is large'"]
    result["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "fine\n"}]
    assert decide(result, reference).passed
