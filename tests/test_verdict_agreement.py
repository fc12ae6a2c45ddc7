"""One verdict, two modes: what ``nbgrader autograde`` / ``python -m course_lib.check`` decide (the test cells
compare in the student's kernel, ``assert`` mode) is what the sandboxed grader decides (``record`` mode: values
handed back as data, judged outside against the source notebook's reference run), question by question.

The cheap route reuses the kernels of :mod:`test_mistakes`: for each assignment, its record-mode kernel (with
the sandbox's import guard) grades every catalogued answer (``MISTAKES`` and ``RIGHT``) as the sandbox does,
and an ``assert``-mode kernel runs the same cells, where a question fails if its cell raises or writes to
stderr (nbgrader's rule). The two must agree on every question. One real round trip then grades the in-place
answer of 02 (``rnn_backward`` that writes into ``dh``, which the instructions allow) through
``nbgrader autograde``, ``python -m course_lib.check`` and ``python -m course_lib.grading autograde``, and
asserts the three scores are equal (full marks). Marked slow.
"""

from __future__ import annotations

import copy
import re

import nbformat
import pytest
from test_mistakes import (
    CATALOGUES_BY_ASSIGNMENT,
    RIGHT,
    ROOT,
    Kernel,
    assignments,  # noqa: F401 (the fixture)
    failed,
    grade_id,
    is_solution,
)

CASES = [(a, m) for a, ms in CATALOGUES_BY_ASSIGNMENT.items() for m in ms] + RIGHT


class AssertKernel:
    """An ``assert``-mode kernel (nbgrader's in-process route, full course_lib) with the solution cells run."""

    def __init__(self, assignment):
        self.kernel = Kernel("assert")
        self.solutions = assignment.solutions
        for cell in assignment.setup + [c for c in assignment.nb.cells if is_solution(c)]:
            outputs = self.kernel.run(cell.source)
            assert not failed(outputs), f"{assignment.name}: {grade_id(cell)} failed in assert mode: {outputs}"
        self.tests = assignment.tests

    def grade(self) -> dict[str, bool]:
        """Whether each graded test cell passes (no error, nothing on stderr) on the kernel as it stands."""
        return {grade_id(c): not failed(self.kernel.run(c.source)) for c in self.tests}

    def passes(self, cell: str, source: str) -> dict[str, bool]:
        """Whether each graded test cell passes with the solution cell ``cell`` replaced by ``source``."""
        self.kernel.run(source)
        try:
            return self.grade()
        finally:
            restored = self.kernel.run(self.solutions[cell])
            assert not failed(restored), restored


@pytest.fixture(scope="module")
def assert_kernels(assignments):  # noqa: F811
    opened: dict[str, AssertKernel] = {}

    def get(name: str) -> AssertKernel:
        if name not in opened:
            opened[name] = AssertKernel(assignments(name))
            baseline = opened[name].grade()
            assert all(baseline.values()), f"{name}: the solution fails in assert mode: {baseline}"
        return opened[name]

    yield get
    for kernel in opened.values():
        kernel.kernel.close()


@pytest.mark.slow
@pytest.mark.parametrize(("assignment", "answer"), CASES, ids=[f"{a}/{m['name']}" for a, m in CASES])
def test_assert_and_record_modes_agree(assignments, assert_kernels, assignment, answer):  # noqa: F811
    record = {gid: not problems
              for gid, problems in assignments(assignment).grade_with(answer["cell"], answer["source"]).items()}
    in_process = assert_kernels(assignment).passes(answer["cell"], answer["source"])
    assert in_process == record, {gid: {"assert": in_process[gid], "record": record[gid]}
                                  for gid in record if in_process[gid] != record[gid]}


def _in_place_submission():
    """The 02 source notebook with the catalogue's right answers that write into dh."""
    nb = nbformat.read(ROOT / "assignments" / "source" / "02_rnn" / "02_rnn.ipynb", as_version=4)
    nb = copy.deepcopy(nb)
    answers = {r["cell"]: r["source"] for a, r in RIGHT if a == "02_rnn" and "in_place_dh" in r["name"]}
    assert set(answers) == {"rnn_step_backward", "rnn_backward"}, answers
    for cell in nb.cells:
        if grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return nb


@pytest.mark.slow
def test_in_place_dh_scores_the_same_in_the_three_graders(tmp_path):
    from grading_helpers import grade_three_ways

    from course_lib.grading import sandbox

    ok, why = sandbox.available()
    if not ok:
        pytest.skip(f"no sandbox here ({why}); CI installs bubblewrap")
    assignment = "02_rnn"
    nb = _in_place_submission()
    graders = grade_three_ways(tmp_path, assignment, "inplace", nb, tmp_path / "inplace.ipynb")
    nbgrader, graded, result = graders["nbgrader"], graders["sandbox"], graders["check"]
    points = {c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points for c in nb.cells
              if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")}
    checked = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^(test_\w+)\s+\S+ pt\s+(passed|FAILED)", line)
        if match:
            checked[match.group(1)] = points[match.group(1)] if match.group(2) == "passed" else 0
    assert checked.keys() == points.keys(), result.stdout + result.stderr
    assert {g: nbgrader[g] for g in points} == {g: graded[g] for g in points} == checked == points, \
        {"nbgrader": nbgrader, "sandbox": graded, "check": checked, "full": points}
