"""Adversarial submissions against ``python -m course_lib.grading autograde`` (sandbox on, 2 workers, one run).

Every submission is the 01_feedforward source notebook (or its release) with programmatic edits. For each we
assert the exact score of every graded cell, the recorded problem kind, and that nothing else changed: the
gradebook rows of a student graded before the run, every file of the course directory outside the
autograded folders of the corpus (source, release, all submissions, nbgrader_config.py), and that a server
on 127.0.0.1 outside the sandbox received no connection. Some cases also plant files next to the notebook
(a FIFO or a link as ``timestamp.txt``, a link to a root-only file), have odd folder names (a spreadsheet
formula, a leading dash, control characters, bytes that are not UTF-8), or are checked afterwards in
``nbgrader generate_feedback`` (a ``<script>`` printed, hidden tests printed from ``_ih``/``linecache``, crafted
kernel messages). A second run grades one case with an instructor secret and per-student inputs, to check that
no grading key reaches the autograded notebook or the feedback.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from grading_helpers import (
    ASSIGNMENT,
    gradebook_rows,
    insert_after,
    key_users,
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
from course_lib.grading.summary import csv_cell

FULL = {"test_affine_forward": 2, "test_affine_backward": 3, "test_softmax_loss": 3, "test_numerical_gradient": 2,
        "test_two_layer_loss": 3}
ZERO = dict.fromkeys(FULL, 0)
LIMITS = "cell=30,wall=240,mem=3072,nproc=96,output=2"


def expect(**zeroed):
    """Full marks except the given grade_ids (short names without 'test_'), which score the given value."""
    result = dict(FULL)
    for short, value in zeroed.items():
        result[f"test_{short}"] = value
    return result


WRONG_FORWARD = "def affine_forward(x, W, b):\n    return np.zeros((x.shape[0], W.shape[1])), (x, W)\n"
WRONG_SOFTMAX = "def softmax_loss(s, y):\n    return 0.0, np.zeros_like(s)\n"


NOT_UTF8 = os.fsdecode(b"caf\xe9")  # a folder name that is not UTF-8
SYSCALLS = {"x86_64": {"add_key": 248, "keyctl": 250}, "aarch64": {"add_key": 217, "keyctl": 219}}.get(
    platform.machine(), {"add_key": -1, "keyctl": -1})
# stores keys in every keyring it can reach, or looks for keys stored by another submission
KEYRING = (
    "import ctypes\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "rings = [-3, -4, -5, libc.syscall({keyctl}, 22, -1, -3)]\n"
    "if {add_key} < 0:\n"
    "    print('KEYRINGS: not probed on this architecture')\n"
    "elif '{mode}' == 'store':\n"
    "    print('KEYRINGS:', [libc.syscall({add_key}, b'user', b'leaked-hidden-tests', b'x', 1, r) > 0 "
    "for r in rings])\n"
    "else:\n"
    "    print('KEYRINGS:', [libc.syscall({keyctl}, 10, r, b'user', b'leaked-hidden-tests', 0) > 0 "
    "for r in rings])\n"
)
# CPU burners in their own sessions, while the other worker grades its neighbour: thirty where cgroups give
# each submission its CPU share (one elsewhere: there the command reports the share as not enforced). The
# cell outlives its 20 s limit on purpose (a deterministic "timed out"); the tests before it already ran.
CPU_HOG = (
    "import os, time\n"
    "for _ in range({burners}):\n"
    "    if os.fork() == 0:\n"
    "        os.setsid()\n"
    "        end = time.monotonic() + 30\n"
    "        while time.monotonic() < end:\n"
    "            pass\n"
    "        os._exit(0)\n"
    "time.sleep(30)\n"
)
SCRIPT = ("from IPython.display import HTML, Javascript, display\n"
          "print('<script>alert(\"printed\")</script>')\n"
          "display(HTML('<script>alert(\"displayed\")</script>'))\n"
          "display(Javascript('alert(\"javascript\")'))\n")
LEAK = ("import linecache\n"
        "print([v[2] for v in linecache.cache.values() if isinstance(v, tuple) and len(v) > 2])\n"
        "print(_ih)\n")


def plant(course, student: str, tmp) -> None:
    """Files next to the notebook that a hostile student (or a broken LMS export) could leave."""
    folder = course / "submitted" / student / ASSIGNMENT
    if student == "fifo_timestamp":
        os.mkfifo(folder / "timestamp.txt")
    elif student == "dev_zero_timestamp":
        os.symlink("/dev/zero", folder / "timestamp.txt")
    elif student == "link_to_root_file":
        secret = tmp / "root_only.txt"
        secret.write_text("ROOT ONLY SECRET")
        os.chmod(secret, 0o600)
        os.symlink(secret, folder / "stolen.txt")


FORGE_RECORDS = (
    "from IPython.display import publish_display_data\n"
    "from course_lib.checks import MIME, encode\n"
    "import numpy as np\n"
    "def _forge(result):  # after every cell: a 'right-looking' value for every check name it can guess\n"
    "    for test in ('affine_forward', 'affine_forward_hidden', 'softmax_loss', 'two_layer_loss'):\n"
    "        for key in ('out', 'cache', 'loss', 'loop_over_examples', 'out_1x1x1'):\n"
    "            publish_display_data({MIME: {'test': test, 'key': key, 'value': encode(np.zeros((3, 3)))}})\n"
    "get_ipython().events.register('post_run_cell', _forge)\n"
)
HOOK_CHECKS = (
    "import course_lib.checks as c\n"
    "c.judge = lambda *a, **k: None\n"
    "c.judge_cell = lambda *a, **k: []\n"
    "c.Test.close = lambda self, *a, **k: None\n"
    "c.Test.rule = lambda self, *a, **k: None\n"
    "c.Test._check.__code__ = (lambda self, *a, **k: None).__code__\n"
    "c.mode = lambda: 'assert'\n"
    "get_ipython().display_pub.publish = lambda *a, **k: None\n"
)
CALL_REFERENCE = (
    "def affine_forward(x, W, b):\n"
    "    import sys, threading\n"
    "    sys.setprofile(None)\n"
    "    box = []\n"
    "    def work():\n"
    "        try:\n"
    "            from course_lib.feedforward import affine_forward as reference\n"
    "            box.append(reference(x, W, b))\n"
    "        except ImportError as error:\n"
    "            box.append((None, str(error)))\n"
    "    thread = threading.Thread(target=work)\n"
    "    thread.start()\n"
    "    thread.join()\n"
    "    return box[0]\n"
)


# --- the smaller breaks (issue: a student with the source open) ---
COMPLEX = "def affine_forward(x, W, b):\n    return x @ W + b + 1j, (x, W)\n"  # the real part is right
# messages sent on the kernel's own iopub channel, as the cell that runs (nbclient files them under it)
SEND = ("k = get_ipython().kernel\n"
        "send = lambda kind, content: k.session.send(k.iopub_socket, kind, content, parent=k.get_parent())\n")
HUGE_EXECUTION_COUNT = SEND + "send('execute_input', {'code': '', 'execution_count': '9' * (60 << 20)})\npass\n"
CRAFTED_DISPLAY = SEND + ("send('display_data', {'data': {'text/plain': 'hi'}, 'metadata': {},\n"
                          "                      'execution_count': 'x'})\npass\n")
DYNAMIC_IMPORT = (  # a module name built at run time, and the ImportError swallowed
    "import importlib\n"
    "def affine_forward(x, W, b):\n"
    "    try:\n"
    "        return importlib.import_module('course_lib.' + 'feed' + 'forward').affine_forward(x, W, b)\n"
    "    except ImportError:\n"
    "        return np.zeros((x.shape[0], W.shape[1])), (x, W)\n"
)
LOOPING = ("def affine_forward(x, W, b):\n"  # right values, with the Python loop over examples the rule forbids
           "    return np.stack([row @ W + b for row in x]), (x, W)\n")
FAKE_RULE = LOOPING + "steps_per_example = lambda *args, **kwargs: 0.0\n"
FAKE_RULE_MODULE = LOOPING + "import course_lib.testing as _t\n_t.python_steps = lambda *args, **kwargs: 0\n"
PRINTS_KEY = "import os\nprint('KEY', os.environ.get('RNN_COURSE_GRADING_KEY'))\nprint('ENV', dict(os.environ))\n"
SECRET = "spring 2027, section B"


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
    weak = ("import numpy as np, torch\nfrom course_lib.feedforward import make_spirals\nGRADING = True\n"
            "rel_error = lambda a, b: 0.0\n")
    deleted_setup = with_source(sol, "softmax_loss", WRONG_SOFTMAX)
    deleted_setup.cells = [c for c in deleted_setup.cells if c.metadata.nbgrader.grade_id != "setup"]
    deleted_setup.cells.insert(0, nbformat.v4.new_code_cell(weak))
    setup_meta = json.loads(json.dumps(sol.cells[1].metadata))
    duplicated_setup = insert_after(with_source(sol, "softmax_loss", WRONG_SOFTMAX), "setup", weak, setup_meta)
    junk_markdown = json.loads(nbformat.writes(sol))
    junk_markdown["cells"].insert(3, {"cell_type": "markdown", "metadata": {"nbgrader": "junk"}, "source": "notes"})
    junk_markdown["cells"].insert(5, {"cell_type": "markdown", "metadata": {"nbgrader": {"solution": True}},
                                      "source": "more notes"})
    junk_markdown = nbformat.from_dict(junk_markdown)
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
            expect(softmax_loss=0), {"exceeded a limit"}),  # no cascade into two_layer_loss
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
            expect(affine_forward=0), set()),  # stderr fails a test cell, as under nbgrader (it is quoted)
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
                               expect(softmax_loss=0), set()),  # the values are judged outside the kernel
        "forges_verdicts": (insert_after(rel, "setup", forge), ZERO, set()),
        "invalid_json": (b'{"cells": [', ZERO, {"malformed"}),
        "wrong_nbformat": (json.dumps({**json.loads(nbformat.writes(sol)), "nbformat": 99}).encode(), ZERO,
                           {"malformed"}),
        "empty_file": (b"", ZERO, {"malformed"}),
        "binary_file": (bytes(range(256)) * 64, ZERO, {"malformed"}),
        "wrong_kernel": (nbformat.from_dict(wrong_kernel), FULL, set()),
        # --- the sandbox, closed (issue 11, item 4) ---
        "keyring_store": (insert_after(sol, "plot", KEYRING.format(mode="store", **SYSCALLS)), FULL, set()),
        "keyring_probe": (insert_after(sol, "plot", KEYRING.format(mode="probe", **SYSCALLS)), FULL, set()),
        "cpu_hog": (insert_after(sol, "plot", CPU_HOG.format(burners=30 if sandbox.cgroups().version else 1)),
                    FULL, {"timed out"}),
        "fifo_timestamp": (sol, FULL, {"file left out"}),  # reported since the smaller breaks, item 4
        "dev_zero_timestamp": (sol, FULL, {"file left out"}),
        "link_to_root_file": (sol, FULL, {"file left out"}),
        "=SUM(1,2)": (sol, FULL, set()),
        "-dash": (sol, FULL, set()),
        "ctl\x1b[31mred\x07": (sol, FULL, set()),
        NOT_UTF8: (sol, None, {"malformed"}),
        "script_output": (insert_after(sol, "plot", SCRIPT), FULL, set()),
        "leaks_hidden_tests": (insert_after(sol, "plot", LEAK), FULL, set()),
        # the weakened copy imports from course_lib.feedforward, absent in the sandbox: reported
        "deleted_locked": (deleted_setup, expect(softmax_loss=0), {"used the reference"}),
        "duplicated_locked": (duplicated_setup, expect(softmax_loss=0), {"used the reference"}),
        "junk_markdown": (junk_markdown, FULL, set()),
        # written against the data-verdict design: the kernel can only hand back values
        "forges_records": (insert_after(rel, "setup", FORGE_RECORDS), ZERO, set()),
        "hooks_checks": (insert_after(with_source(sol, "softmax_loss", WRONG_SOFTMAX), "setup", HOOK_CHECKS), ZERO,
                         set()),
        "calls_reference_thread": (with_source(sol, "affine_forward", CALL_REFERENCE), expect(affine_forward=0),
                                   {"used the reference"}),
        # --- the smaller breaks ---
        "complex_values": (with_source(sol, "affine_forward", COMPLEX), expect(affine_forward=0), set()),
        "huge_execution_count": (insert_after(sol, "setup", HUGE_EXECUTION_COUNT), FULL, set()),
        "crafted_display": (insert_after(sol, "setup", CRAFTED_DISPLAY), FULL, set()),
        "imports_reference_at_run_time": (with_source(sol, "affine_forward", DYNAMIC_IMPORT),
                                          expect(affine_forward=0), {"used the reference"}),
        "fabricated_rule": (with_source(sol, "affine_forward", FAKE_RULE), expect(affine_forward=0), set()),
        "fabricated_rule_module": (with_source(sol, "affine_forward", FAKE_RULE_MODULE), expect(affine_forward=0),
                                   set()),
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
    # the reference records as files of the course (copied from the session's): every file is hashed below
    course = make_course(tmp_path_factory.mktemp("adversarial"), references="copied")
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    submit(course, "victim", source_nb())
    run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--student", "victim", "--quiet",
        "--limits", LIMITS)
    victim_rows = gradebook_rows(db_url)["victim"]
    listener = Listener()
    cases = corpus(course, listener.port)
    for student, (content, _, _) in cases.items():
        submit(course, student, content)
        plant(course, student, tmp_path_factory.mktemp("outside"))
    keys_before = key_users()
    generated = ("gradebook.db", "reports", "feedback", *(f"autograded/{s}" for s in cases))
    before = tree_hashes(course, exclude=generated)
    temp = tmp_path_factory.mktemp("grader-temp")  # the grader's temporary folders: none may stay behind
    result = run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--workers", "2", "--quiet",
                 "--limits", LIMITS, *[f"--student={s}" for s in cases],  # =: a name may start with '-'
                 extra_env={"TMPDIR": str(temp)})
    listener.close()
    with open(course / "reports" / ASSIGNMENT / "problems.csv") as f:
        problems: dict[str, list[tuple[str, str]]] = {}
        for row in csv.DictReader(f):
            problems.setdefault(row["student"], []).append((row["kind"], row["reason"]))
    with ThreadPoolExecutor(2) as pool:  # one student each: two at a time
        feedback = list(pool.map(lambda student: run(course, "nbgrader", "generate_feedback", ASSIGNMENT, "--student",
                                                     student, check=False),
                                 ("script_output", "leaks_hidden_tests", "crafted_display", "huge_execution_count")))
    yield {"course": course, "db_url": db_url, "cases": cases, "scores": scores(db_url), "problems": problems,
           "victim_rows": victim_rows, "rows": gradebook_rows(db_url), "before": before,
           "after": tree_hashes(course, exclude=generated),
           "connections": listener.connections, "stdout": result.stdout, "stderr": result.stderr,
           "feedback": feedback, "temp_left": sorted(os.listdir(temp)),
           "keys_before": keys_before, "keys_after": key_users()}


CASES = [
    "honest", "unanswered", "loop_top_level", "loop_in_function", "loop_ignoring_sigint", "memory_bomb", "fork_bomb",
    "kernel_suicide", "output_flood", "stderr", "edited_tests", "deleted_test", "reordered_test", "duplicated_test",
    "changed_points", "changed_grade_id", "fake_graded_cell", "reads_disk", "vandal", "network", "patches_reporting",
    "patches_assertions", "forges_verdicts", "invalid_json", "wrong_nbformat", "empty_file", "binary_file",
    "wrong_kernel", "keyring_store", "keyring_probe", "cpu_hog", "fifo_timestamp", "dev_zero_timestamp",
    "link_to_root_file", "=SUM(1,2)", "-dash", "ctl\x1b[31mred\x07", NOT_UTF8, "script_output",
    "leaks_hidden_tests", "deleted_locked", "duplicated_locked", "junk_markdown", "forges_records", "hooks_checks",
    "calls_reference_thread", "complex_values", "huge_execution_count", "crafted_display",
    "imports_reference_at_run_time", "fabricated_rule", "fabricated_rule_module",
]


@pytest.mark.slow
@pytest.mark.parametrize("student", CASES)
def test_exact_score_and_recorded_outcome(graded, student):
    _, expected, kinds = graded["cases"][student]
    problems = graded["problems"].get(csv_cell(student), [])  # reports escape odd names
    if expected is None:  # not a possible gradebook id: reported, not graded
        assert student not in graded["scores"]
    else:
        assert graded["scores"][student] == pytest.approx(expected), problems
    recorded = {kind for kind, _ in problems}
    assert recorded == kinds, problems
    for kind, reason in problems:
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
    """The text a cell printed, its stream outputs joined: the kernel may send one print() in two messages
    (seen: 'KEYRINGS:' and ' [False, False, False, False]' as two outputs, under load)."""
    nb = nbformat.read(graded["course"] / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    texts = ["".join("".join(o.get("text", "")) for o in c.outputs) for c in nb.cells if c.cell_type == "code"]
    return next(t for t in texts if marker in t)


@pytest.mark.slow
def test_the_sandbox_hid_the_disk_and_the_network(graded):
    assert cell_text(graded, "reads_disk", "FOUND").strip() == "FOUND []"
    blocked = cell_text(graded, "vandal", "BLOCKED")
    assert "DAMAGED" not in blocked and blocked.count("BLOCKED") == 2
    assert "NO NETWORK" in cell_text(graded, "network", "NO NETWORK")
    assert "fork stopped after" in cell_text(graded, "fork_bomb", "fork stopped after")


@pytest.mark.slow
def test_keyrings_carry_nothing_from_one_submission_to_the_next_nor_stay_on_the_host(graded):
    if SYSCALLS["add_key"] < 0:
        pytest.skip("keyctl syscall numbers known for x86_64/aarch64 only")
    assert "KEYRINGS: [True, True, True, True]" in cell_text(graded, "keyring_store", "KEYRINGS")
    assert "KEYRINGS: [False, False, False, False]" in cell_text(graded, "keyring_probe", "KEYRINGS")
    import time

    uids = [sandbox.UID_BASE, sandbox.UID_BASE + 1] if os.geteuid() == 0 else [os.getuid()]
    deadline = time.monotonic() + 30
    while any(key_users().get(u, 0) > graded["keys_before"].get(u, 0) for u in uids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert all(key_users().get(u, 0) <= graded["keys_before"].get(u, 0) for u in uids), open("/proc/key-users").read()


@pytest.mark.slow
def test_per_submission_limits_are_enforced_or_the_command_says_which_are_not(graded):
    unenforced = sandbox.cgroups().unenforced()
    if unenforced:
        assert graded["stderr"].count("NOT enforced") == 1, graded["stderr"]
    else:
        assert "NOT enforced" not in graded["stderr"]


@pytest.mark.slow
def test_links_and_special_files_are_never_followed(graded):
    folder = graded["course"] / "autograded" / "link_to_root_file" / ASSIGNMENT
    assert not (folder / "stolen.txt").exists()
    for path in (graded["course"] / "autograded").rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert b"ROOT ONLY SECRET" not in path.read_bytes(), path


@pytest.mark.slow
def test_odd_names_are_graded_and_escaped_in_every_report(graded):
    with open(graded["course"] / "reports" / ASSIGNMENT / "grades.csv", encoding="utf-8") as f:
        students = [row["student"] for row in csv.DictReader(f)]
    for name in ("'=SUM(1,2)", "'-dash", "ctl\\x1b[31mred\\x07", "caf\\xe9"):
        assert name in students
    assert not any(s.startswith(("=", "+", "-", "@")) for s in students)
    for text in (graded["stdout"], graded["stderr"]):
        assert "\x1b" not in text and "\x07" not in text
    assert "caf\\xe9: malformed: the folder name is not valid UTF-8" in graded["stdout"]


def feedback_html(graded, student) -> str:
    path = graded["course"] / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
    assert path.exists(), "".join(f.stdout[-2000:] + f.stderr[-3000:] for f in graded["feedback"])
    return path.read_text()


@pytest.mark.slow
def test_feedback_shows_student_scripts_as_text(graded):
    import re

    html = feedback_html(graded, "script_output")
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, flags=re.S | re.I)
    assert scripts and not any("alert(" in script for script in scripts)  # the page's own scripts only
    assert "javascript" not in " ".join(re.findall(r"application/javascript[^<]*", html))
    assert html.count("&lt;script&gt;alert(") >= 3  # printed, displayed: shown as text (and the source)


@pytest.mark.slow
def test_feedback_redacts_output_that_quotes_hidden_tests(graded):
    from course_lib.grading.feedback import REDACTED, hidden_lines

    secrets = hidden_lines(source_nb())
    assert secrets

    def flat(text):
        return "".join(ch for ch in text if ch.isalnum())

    # the submission did print hidden test code (so this test can fail) ...
    autograded = graded["course"] / "autograded" / "leaks_hidden_tests" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    printed = "".join("".join(o.get("text", "")) for c in nbformat.read(autograded, as_version=4).cells
                      if c.cell_type == "code" for o in c.outputs)
    assert any(secret in flat(printed) for secret in secrets)
    # ... and its feedback shows none of it
    html = feedback_html(graded, "leaks_hidden_tests")
    assert not any(secret in flat(html) for secret in secrets)
    assert REDACTED.strip()[:40] in html


# --- the smaller breaks -------------------------------------------------------------------------------------


def autograded(graded, student) -> Path:
    return graded["course"] / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


@pytest.mark.slow
@pytest.mark.parametrize("student", ["huge_execution_count", "crafted_display"])
def test_kernel_messages_stay_within_the_budget_and_the_notebook_stays_valid(graded, student):
    path = autograded(graded, student)
    assert path.stat().st_size < 2 * 1024 * 1024, path.stat().st_size  # LIMITS: output=2 (MiB)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)  # generate_feedback reads it
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert all(n is None or type(n) is int for n in counts), counts
    feedback_html(graded, student)


@pytest.mark.slow
def test_left_out_files_are_reported_with_their_names(graded):
    problems = graded["problems"]
    assert ("file left out", "stolen.txt: is a symbolic link") in problems["link_to_root_file"]
    assert ("file left out", "timestamp.txt: is not a regular file") in problems["fifo_timestamp"]
    assert "link_to_root_file: file left out: stolen.txt: is a symbolic link" in graded["stdout"]


@pytest.mark.slow
def test_an_import_of_the_reference_under_a_built_name_is_reported(graded):
    (kind, reason), = graded["problems"]["imports_reference_at_run_time"]
    assert kind == "used the reference" and "course_lib.feedforward" in reason
    nb = nbformat.read(autograded(graded, "imports_reference_at_run_time"), as_version=4)
    assert "x-course-blocked" not in json.dumps([c.get("outputs", []) for c in nb.cells])  # data, not output


@pytest.mark.slow
def test_the_grader_leaves_no_temporary_folder(graded):
    assert graded["temp_left"] == []


@pytest.fixture(scope="module")
def keyed(graded, tmp_path_factory):
    """One submission that prints its kernel's key and environment, graded with a secret, per student."""
    course = graded["course"]
    student = "prints_key"
    submit(course, student, insert_after(source_nb(), "setup", PRINTS_KEY))
    secret = tmp_path_factory.mktemp("secret") / "secret.txt"
    secret.write_text(SECRET)
    run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--student", student, "--quiet", "--limits", LIMITS,
        "--secret-file", str(secret), "--per-student-inputs")
    feedback = run(course, "nbgrader", "generate_feedback", ASSIGNMENT, "--student", student, check=False)
    html = course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
    assert html.exists(), feedback.stdout[-2000:] + feedback.stderr[-3000:]
    return {"student": student, "scores": scores(graded["db_url"])[student],
            "autograded": autograded(graded, student).read_text(), "feedback": html.read_text()}


@pytest.mark.slow
def test_no_grading_key_is_written_back(keyed):
    import hashlib
    import hmac

    from course_lib.checks import grading_key

    student_key = grading_key(SECRET, keyed["student"])
    notebook_key = hmac.new(student_key.encode(), f"{ASSIGNMENT}/{ASSIGNMENT}".encode(), hashlib.sha256).hexdigest()
    keys = [SECRET, student_key, grading_key(SECRET, ""), notebook_key]
    assert keyed["scores"] == FULL
    for text in (keyed["autograded"], keyed["feedback"]):
        assert not any(key.lower() in text.lower() for key in keys)
    assert "KEY [redacted]" in keyed["autograded"]  # the kernel did print its key (so this test can fail)
