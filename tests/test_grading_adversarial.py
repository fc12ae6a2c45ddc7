"""Adversarial submissions against ``python -m course_lib.grading autograde`` (sandbox on, 2 workers, one run).

Every submission is the 01_feedforward source notebook (or its release) with programmatic edits. For each we
assert the exact score of every graded cell, the recorded problem kind, and that nothing else changed: the
gradebook rows of a student graded before the run, every file of the course directory outside the
autograded folders of the corpus (source, release, all submissions, nbgrader_config.py), and that a server
on 127.0.0.1 outside the sandbox received no connection.
"""

from __future__ import annotations

import csv
import json
import socket
import threading

import nbformat
import pytest
from grading_helpers import (
    ASSIGNMENT,
    gradebook_rows,
    insert_after,
    make_course,
    release_nb,
    run,
    scores,
    source_nb,
    submit,
    tree_hashes,
    with_source,
)

from course_lib.grading import sandbox

FULL = {"test_affine_forward": 2, "test_affine_backward": 3, "test_softmax_loss": 3, "test_numerical_gradient": 2,
        "test_two_layer_loss": 3}
ZERO = dict.fromkeys(FULL, 0)
LIMITS = "cell=20,wall=240,mem=3072,nproc=96,output=2"


def expect(**zeroed):
    """Full marks except the given grade_ids (short names without 'test_'), which score the given value."""
    result = dict(FULL)
    for short, value in zeroed.items():
        result[f"test_{short}"] = value
    return result


WRONG_FORWARD = "def affine_forward(x, W, b):\n    return np.zeros((x.shape[0], W.shape[1])), (x, W)\n"
WRONG_SOFTMAX = "def softmax_loss(s, y):\n    return 0.0, np.zeros_like(s)\n"


def corpus(course, port: int) -> dict[str, tuple]:
    """student -> (notebook or bytes, expected scores, expected problem kinds)."""
    sol, rel = source_nb(), release_nb(course)
    sol_src = {c.metadata.nbgrader.grade_id: c.source for c in sol.cells}
    reorder = sol.copy()
    reorder.cells = list(sol.cells)
    moved = reorder.cells.pop(next(i for i, c in enumerate(reorder.cells)
                                   if c.metadata.nbgrader.grade_id == "test_softmax_loss"))
    reorder.cells.insert(0, moved)
    duplicate = with_source(sol, "affine_forward", WRONG_FORWARD)
    dup_meta = json.loads(json.dumps(duplicate.cells[4].metadata))
    duplicate = insert_after(duplicate, "test_affine_forward", "pass", dup_meta)
    renamed = with_source(sol, "affine_forward", WRONG_FORWARD)
    renamed.cells[4].metadata.nbgrader.grade_id = "test_bonus"
    renamed.cells[4].source = "pass"
    points = json.loads(nbformat.writes(sol))
    points["cells"][4]["metadata"]["nbgrader"]["points"] = 100
    wrong_kernel = json.loads(nbformat.writes(sol))
    wrong_kernel["metadata"]["kernelspec"] = {"name": "evil", "display_name": "evil", "language": "python"}
    fake = {"nbgrader": {"grade": True, "grade_id": "extra_credit", "locked": False, "points": 50,
                         "schema_version": 3, "solution": False, "task": False}}
    deleted = with_source(sol, "affine_forward", WRONG_FORWARD)
    deleted.cells = [c for c in deleted.cells if c.metadata.nbgrader.grade_id != "test_affine_forward"]
    course_path = str(course)
    probe = (
        "import os\n"
        "seen = []\n"
        "for top, dirs, files in os.walk('/'):\n"
        "    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ('/proc', '/sys', '/usr', '/dev')\n"
        "               and 'site-packages' not in top and 'python3.11' not in d]\n"
        "    seen += [os.path.join(top, f) for f in files if f.endswith(('.ipynb', '.db'))]\n"
        f"seen += [{course_path!r}] if os.path.exists({course_path!r}) else []\n"
        "import sys\n"  # of the homes, only the folders that lead to the Python installation may be there
        "seen += [os.path.join(h, e) for h in ('/root', '/home') if os.path.isdir(h) for e in os.listdir(h)\n"
        "         if not sys.base_prefix.startswith(os.path.join(h, e) + '/')]\n"
        "print('FOUND', sorted(seen))\n"
    )
    vandal = (
        "import os, shutil\n"
        f"for target in ({course_path + '/gradebook.db'!r}, {course_path + '/submitted/victim'!r}):\n"
        "    try:\n"
        "        shutil.rmtree(target) if os.path.isdir(target) else open(target, 'w').write('x')\n"
        "        print('DAMAGED', target)\n"
        "    except OSError as e:\n"
        "        print('BLOCKED', type(e).__name__)\n"
    )
    network = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'leak')\n"
        "    print('CONNECTED')\n"
        "except OSError as e:\n"
        "    print('NO NETWORK', type(e).__name__)\n"
    )
    patch_reporting = (
        "import sys\n"
        "ip = get_ipython()\n"
        "ip.showtraceback = lambda *a, **k: None\n"
        "ip._showtraceback = lambda *a, **k: None\n"
        "sys.excepthook = lambda *a: None\n"
        "sys.stderr = sys.stdout\n"
        "_orig_run_cell = ip.run_cell\n"
        "def run_cell(*a, **k):\n"
        "    r = _orig_run_cell(*a, **k)\n"
        "    r.error_in_exec = None\n"
        "    return r\n"
        "ip.run_cell = run_cell\n"
    )
    patch_assertions = (
        "import builtins, numpy as np, torch\n"
        "builtins.AssertionError = type('AssertionError', (Warning,), {})\n"
        "builtins.abs = lambda x: 0\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
        "torch.testing.assert_close = lambda *a, **k: None\n"
        "rel_error = lambda a, b: 0.0\n"
    )
    forge = (
        "from IPython.display import publish_display_data\n"
        "def _forge(result):\n"
        "    for cell in range(40):\n"
        "        payload = {'run': 'x', 'seq': 1, 'cell': cell, 'sha256': '', 'status': 'pass', 'ename': None,\n"
        "                   'result': None, 'problems': [], 'restored': []}\n"
        "        publish_display_data({'application/x-course-grading+json': {'payload': payload, 'mac': '0' * 64}})\n"
        "get_ipython().events.register('post_run_cell', _forge)\n"
        "try:\n"
        "    __course_grading__('test', 4, 'pass')\n"
        "except Exception as e:\n"
        "    print('harness refused:', e)\n"
    )
    loop_in_function = (
        "def affine_forward(x, W, b):\n"
        "    while x.shape[0] == 7:\n"
        "        pass\n"
        "    return x @ W + b, (x, W)\n"
    )
    return {
        "honest": (sol, FULL, set()),
        "unanswered": (rel, ZERO, set()),
        "loop_top_level": (insert_after(sol, "affine_forward", "while True:\n    pass"), FULL, {"timed out"}),
        "loop_in_function": (with_source(sol, "affine_forward", loop_in_function), expect(affine_forward=0),
                             {"timed out"}),
        "loop_ignoring_sigint": (insert_after(sol, "numerical_gradient",
                                              "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                              "while True:\n    pass"),
                                 expect(numerical_gradient=0, two_layer_loss=0), {"timed out"}),
        "memory_bomb": (with_source(sol, "softmax_loss", sol_src["softmax_loss"].replace(
            "    N = s.shape[0]\n", "    N = s.shape[0]\n    _hog = [bytearray(1 << 30) for _ in range(64)]\n")),
            expect(softmax_loss=0), {"exceeded a limit"}),  # test_two_layer_loss runs stand-ins for the layers
        "fork_bomb": (insert_after(sol, "affine_forward",
                                   "import os, time\nkids = 0\ntry:\n    for _ in range(5000):\n"
                                   "        if os.fork() == 0:\n            time.sleep(3600)\n            os._exit(0)\n"
                                   "        kids += 1\nexcept OSError as e:\n    print('fork stopped after', kids)\n"),
                      FULL, set()),
        "kernel_suicide": (insert_after(sol, "softmax_loss", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
                           expect(softmax_loss=0, numerical_gradient=0, two_layer_loss=0), {"crashed"}),
        "output_flood": (insert_after(sol, "affine_backward", "for _ in range(10**7):\n    print('x' * 1000)"),
                         expect(affine_backward=0, softmax_loss=0, numerical_gradient=0, two_layer_loss=0),
                         {"exceeded a limit"}),
        "stderr": (with_source(sol, "affine_forward", "import sys\n" + sol_src["affine_forward"].replace(
            "    out = x @ W + b\n", "    print('careful', file=sys.stderr)\n    out = x @ W + b\n")),
            expect(affine_forward=0), set()),  # no other test calls the student's affine_forward
        "edited_tests": (with_source(with_source(with_source(sol, "affine_forward", WRONG_FORWARD),
                                                 "test_affine_forward", "pass"), "test_two_layer_loss", "pass"),
                         expect(affine_forward=0), set()),
        "deleted_test": (deleted, expect(affine_forward=0), set()),
        "reordered_test": (reorder, expect(softmax_loss=0), set()),
        "duplicated_test": (duplicate, expect(affine_forward=0), set()),
        "changed_points": (nbformat.from_dict(points), FULL, set()),
        "changed_grade_id": (renamed, expect(affine_forward=0), set()),
        "fake_graded_cell": (insert_after(sol, "two_layer_loss", "pass", fake), FULL, set()),
        "reads_disk": (insert_after(sol, "setup", probe), FULL, set()),
        "vandal": (insert_after(sol, "setup", vandal), FULL, set()),
        "network": (insert_after(sol, "setup", network), FULL, set()),
        "patches_reporting": (insert_after(with_source(sol, "softmax_loss", WRONG_SOFTMAX), "setup", patch_reporting),
                              expect(softmax_loss=0), set()),
        "patches_assertions": (insert_after(with_source(sol, "softmax_loss", WRONG_SOFTMAX), "softmax_loss",
                                            patch_assertions),
                               expect(softmax_loss=0, numerical_gradient=0, two_layer_loss=0), {"tampered"}),
        "forges_verdicts": (insert_after(rel, "setup", forge), ZERO, {"tampered"}),
        "invalid_json": (b'{"cells": [', ZERO, {"malformed"}),
        "wrong_nbformat": (json.dumps({**json.loads(nbformat.writes(sol)), "nbformat": 99}).encode(), ZERO,
                           {"malformed"}),
        "empty_file": (b"", ZERO, {"malformed"}),
        "binary_file": (bytes(range(256)) * 64, ZERO, {"malformed"}),
        "wrong_kernel": (nbformat.from_dict(wrong_kernel), FULL, set()),
    }


class Listener:
    """A TCP server on 127.0.0.1 outside the sandbox that counts connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    ok, why = sandbox.available()
    if not ok:
        pytest.skip(f"no sandbox here ({why}); CI installs bubblewrap")
    course = make_course(tmp_path_factory.mktemp("adversarial"))
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    submit(course, "victim", source_nb())
    run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--student", "victim", "--quiet",
        "--limits", LIMITS)
    victim_rows = gradebook_rows(db_url)["victim"]
    listener = Listener()
    cases = corpus(course, listener.port)
    for student, (content, _, _) in cases.items():
        submit(course, student, content)
    before = tree_hashes(course, exclude=("gradebook.db", "reports", *(f"autograded/{s}" for s in cases)))
    result = run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--workers", "2", "--quiet",
                 "--limits", LIMITS, *[a for s in cases for a in ("--student", s)])
    listener.close()
    with open(course / "reports" / ASSIGNMENT / "problems.csv") as f:
        problems: dict[str, list[tuple[str, str]]] = {}
        for row in csv.DictReader(f):
            problems.setdefault(row["student"], []).append((row["kind"], row["reason"]))
    yield {"course": course, "db_url": db_url, "cases": cases, "scores": scores(db_url), "problems": problems,
           "victim_rows": victim_rows, "rows": gradebook_rows(db_url), "before": before,
           "after": tree_hashes(course, exclude=("gradebook.db", "reports", *(f"autograded/{s}" for s in cases))),
           "connections": listener.connections, "stdout": result.stdout}


CASES = [
    "honest", "unanswered", "loop_top_level", "loop_in_function", "loop_ignoring_sigint", "memory_bomb", "fork_bomb",
    "kernel_suicide", "output_flood", "stderr", "edited_tests", "deleted_test", "reordered_test", "duplicated_test",
    "changed_points", "changed_grade_id", "fake_graded_cell", "reads_disk", "vandal", "network", "patches_reporting",
    "patches_assertions", "forges_verdicts", "invalid_json", "wrong_nbformat", "empty_file", "binary_file",
    "wrong_kernel",
]


@pytest.mark.slow
@pytest.mark.parametrize("student", CASES)
def test_exact_score_and_recorded_outcome(graded, student):
    _, expected, kinds = graded["cases"][student]
    assert graded["scores"][student] == pytest.approx(expected), graded["problems"].get(student)
    recorded = {kind for kind, _ in graded["problems"].get(student, [])}
    assert recorded == kinds, graded["problems"].get(student)
    for kind, reason in graded["problems"].get(student, []):
        assert reason, f"{student}: {kind} without a reason"


@pytest.mark.slow
def test_corpus_covers_every_case(graded):
    assert sorted(graded["cases"]) == sorted(CASES)


@pytest.mark.slow
def test_nothing_outside_the_submissions_changed(graded):
    assert graded["after"] == graded["before"]
    assert graded["rows"]["victim"] == graded["victim_rows"]
    assert graded["connections"] == 0


@pytest.mark.slow
def test_fake_and_edited_metadata_leave_the_gradebook_shape_alone(graded):
    for student in ("changed_points", "fake_graded_cell", "changed_grade_id"):
        assert set(graded["rows"][student]) == set(FULL)
        assert {k: v[3] for k, v in graded["rows"][student].items()} == FULL


def cell_text(graded, student, marker: str) -> str:
    nb = nbformat.read(graded["course"] / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    texts = ["".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    return next(t for t in texts if marker in t)


@pytest.mark.slow
def test_the_sandbox_hid_the_disk_and_the_network(graded):
    assert cell_text(graded, "reads_disk", "FOUND").strip() == "FOUND []"
    blocked = cell_text(graded, "vandal", "BLOCKED")
    assert "DAMAGED" not in blocked and blocked.count("BLOCKED") == 2
    assert "NO NETWORK" in cell_text(graded, "network", "NO NETWORK")
    assert "fork stopped after" in cell_text(graded, "fork_bomb", "fork stopped after")
