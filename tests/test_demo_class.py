"""``make demo-class``, run as an instructor runs it: a term of assignment 01 from the runbook's commands.

The demo (``tools/demo_class.py``) runs every command block of ``deploy/RUNBOOK.md`` marked for it, checks
each made-up student's grade (right, partly wrong, empty, late with an extension, and the account running it
through the exchange, whose feedback it fetches) and exits 1 if one is off; then it removes its folder.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_runbook_demo_blocks_cover_the_whole_term_in_order():
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    from demo_class import runbook_blocks

    text = (ROOT / "deploy" / "RUNBOOK.md").read_text(encoding="utf-8")
    commands = "\n".join(c for _, c in runbook_blocks(text))
    steps = ["lms roster", "generate_assignment", "release_assignment", "fetch_assignment", "nbgrader submit",
             "nbgrader collect", "grading autograde", "grading extension", "generate_feedback 01_feedforward --force",
             "release_feedback", "nbgrader export", "fetch_feedback", "lms grades"]
    positions = [commands.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p == -1]
    assert positions == sorted(positions), "the runbook's term is out of order"


@pytest.mark.slow
def test_make_demo_class_runs_a_term_and_cleans_up():
    result = subprocess.run(["make", "demo-class"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert "every grade is as expected" in out
    table = dict(re.findall(r"^(ana|ben|cleo|dan|eli)\s+([\d.]+)", out, re.M))
    assert table == {"ana": "13.0", "ben": "9.0", "cleo": "0.0", "dan": "11.7", "eli": "0.0"}, out[-3000:]
    assert "for Canvas (canvas_grades.csv): 6 students, points possible 13" in out
    assert "test_affine_forward: the bias b is missing: 1 (expected 1)" in out
    assert "your feedback, fetched: 01_feedforward/feedback/" in out
    assert not (ROOT / "_build" / "demo-class").exists(), "the demo left its folder behind"
    # everything the term wrote into the course folder is ignored by git where the course keeps it
    written = re.search(r"^the course folder holds: (.*)$", out, re.M).group(1).split()
    assert {"gradebook.db", "grades.csv", "submitted/", "autograded/", "feedback/", "reports/"} <= set(written)
    generated = [f"assignments/{name}" for name in written if name not in ("source/", "nbgrader_config.py")]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *generated], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    assert sorted(ignored) == sorted(generated), f"not ignored by .gitignore: {set(generated) - set(ignored)}"
