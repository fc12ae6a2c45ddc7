"""The sandbox of course_lib.grading, probed directly: keyrings, CPU share, RAM, tmpfs bounds, read-only root.

Each test runs small Python programs in the very sandbox a submission gets (:func:`sandbox.command` with
``program=``), so a failure names the isolation that broke without grading a notebook. The adversarial corpus
(tests/test_grading_adversarial.py) checks the same classes end to end.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
import time

import pytest
from grading_helpers import key_users

from course_lib.grading import sandbox
from course_lib.grading.limits import Limits

ADD_KEY = {"x86_64": 248, "aarch64": 217}


def needs_sandbox():
    ok, why = sandbox.available()
    if not ok:
        pytest.skip(f"no sandbox here ({why}); CI installs bubblewrap")


def run_in_sandbox(tmp_path, code: str, limits: Limits | None = None, slot: int = 0, timeout: float = 120):
    """Run ``code`` with the sandbox's Python in a sandbox for worker ``slot``; the CompletedProcess."""
    work = tmp_path / f"work-{slot}-{time.monotonic_ns()}"
    work.mkdir()
    sandbox.prepare_workdir(str(work), slot)
    cmd, env = sandbox.command(str(work), limits or Limits(), slot=slot, program=[sys.executable, "-I", "-c", code])
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


KEYRING = textwrap.dedent("""
    import ctypes, platform, sys
    libc = ctypes.CDLL(None, use_errno=True)
    ADD_KEY, KEYCTL = {add_key}, {keyctl}
    SESSION, USER, USER_SESSION = -3, -4, -5
    GET_PERSISTENT, SEARCH = 22, 10
    rings = {{"session": SESSION, "user": USER, "user-session": USER_SESSION,
              "persistent": libc.syscall(KEYCTL, GET_PERSISTENT, -1, SESSION)}}
    if sys.argv[1] == "store":
        for name, ring in rings.items():
            serial = libc.syscall(ADD_KEY, b"user", b"hidden-tests-" + name.encode(), b"assert 1 == 1", 13, ring)
            print(name, "stored" if serial > 0 else "refused")
    else:
        for name, ring in rings.items():
            found = [libc.syscall(KEYCTL, SEARCH, ring, b"user", b"hidden-tests-" + other.encode(), 0) > 0
                     for other in rings]
            print(name, "FOUND" if any(found) else "empty")
""")


def keyring_code(mode: str) -> str:
    machine = platform.machine()
    return (KEYRING.format(add_key=ADD_KEY[machine], keyctl=sandbox.SYS_KEYCTL[machine])
            .replace("sys.argv[1]", repr(mode)))


@pytest.mark.skipif(platform.machine() not in ADD_KEY, reason="keyctl syscall numbers known for x86_64/aarch64")
def test_keyrings_are_private_to_one_submission_and_do_not_outlive_it(tmp_path):
    """One worker grades two submissions: the second finds none of the keys the first stored, anywhere."""
    needs_sandbox()
    # the grader itself holds a session keyring (as after a PAM login): a sandbox must not inherit it
    libc = __import__("ctypes").CDLL(None, use_errno=True)
    assert libc.syscall(sandbox.SYS_KEYCTL[platform.machine()], 1, b"grader-session") > 0
    uid = sandbox.UID_BASE if os.geteuid() == 0 else os.getuid()
    before = key_users().get(uid, 0)
    first = run_in_sandbox(tmp_path, keyring_code("store"), slot=0)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("stored") == 4, first.stdout  # the kernel let the submission store its keys...
    second = run_in_sandbox(tmp_path, keyring_code("search"), slot=0)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["session", "empty", "user", "empty", "user-session", "empty",
                                     "persistent", "empty"], second.stdout
    # ...and none of them remains on the host once the submission is over (the kernel frees them lazily)
    with open("/proc/keys") as f:
        assert "hidden-tests-" not in f.read()
    deadline = time.monotonic() + 30
    while key_users().get(uid, 0) > before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert key_users().get(uid, 0) <= before, open("/proc/key-users").read()


BURN = textwrap.dedent("""
    import os, time
    kids = []
    for _ in range({n}):
        pid = os.fork()
        if pid == 0:
            os.setsid()  # each in its own session, as the issue's attack did
            end = time.monotonic() + {seconds}
            while time.monotonic() < end:
                pass
            os._exit(0)
        kids.append(pid)
    start = time.monotonic()
    for pid in kids:
        os.waitpid(pid, 0)
    t = os.times()
    print(t.children_user + t.children_system, time.monotonic() - start)
""")


def test_cpu_burners_in_their_own_sessions_get_the_submissions_cpu_share_only(tmp_path):
    """Eight burners, each in its own session, together get no more than the submission's CPU quota."""
    needs_sandbox()
    groups = sandbox.cgroups()
    if not groups.version:
        message = groups.unenforced()
        assert message and "NOT enforced" in message and groups.why in message
        pytest.skip(f"no cgroups here: the grader says so: {message}")
    out = run_in_sandbox(tmp_path, BURN.format(n=8, seconds=3), limits=Limits(cores=0.25), slot=0)
    assert out.returncode == 0, out.stderr
    cpu, wall = map(float, out.stdout.split())
    # without the quota, 8 burners take every core for 3 s each (>= 3 CPU seconds even on a busy host)
    assert cpu <= 0.25 * wall * 1.3 + 0.2, (cpu, wall, open("/proc/loadavg").read())


HOG = textwrap.dedent("""
    import os, time
    kids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            block = b"x" * (120 * 1024 * 1024)  # touched: really resident
            time.sleep(2)
            os._exit(0)
        kids.append(pid)
    print(sum(os.waitpid(pid, 0)[1] == 0 for pid in kids))
""")


def test_ram_is_limited_per_submission_not_only_per_process(tmp_path):
    """Four processes of 120 MiB each, under a 256 MiB submission limit: they cannot all stay resident."""
    needs_sandbox()
    if not sandbox.cgroups().version:
        pytest.skip(f"no cgroups here: {sandbox.cgroups().unenforced()}")
    out = run_in_sandbox(tmp_path, HOG, limits=Limits(ram=256, mem=1024), slot=1)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 4, out.stdout
    out = run_in_sandbox(tmp_path, HOG, limits=Limits(ram=1024, mem=1024), slot=1)
    assert int(out.stdout) == 4, out.stdout  # the same program fits in a larger share


FILL = textwrap.dedent("""
    import os
    for folder in ("/tmp", "/dev/shm", "/submission"):
        written = 0
        try:
            with open(os.path.join(folder, "fill"), "wb") as f:
                for _ in range(64):
                    f.write(b"x" * (1 << 20))
                    f.flush()
                    written += 1
        except OSError as e:
            print(folder, "stopped", written, e.strerror)
        else:
            print(folder, "wrote", written)
    for path in ("/newfile", "/dev/newfile", "/usr/newfile"):
        try:
            open(path, "w")
            print(path, "WRITABLE")
        except OSError as e:
            print(path, "refused")
""")


def test_writable_places_are_size_bounded_tmpfs_and_nothing_else_is_writable(tmp_path):
    needs_sandbox()
    out = run_in_sandbox(tmp_path, FILL, limits=Limits(disk=8), slot=0)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for folder in ("/tmp", "/dev/shm", "/submission"):
        line = next(x for x in lines if x.startswith(folder + " "))
        assert "stopped" in line and int(line.split()[2]) <= 8 and "No space left" in line, line
    assert [x.split()[1] for x in lines[3:]] == ["refused", "refused", "refused"], lines


def test_the_launcher_says_once_what_is_not_enforced(monkeypatch):
    unavailable = sandbox.Cgroups(why="no writable cgroup v1 hierarchy for cpu")
    assert "CPU share, RAM and process limits are NOT enforced (no writable cgroup v1 hierarchy for cpu)" in (
        unavailable.unenforced())
    assert sandbox.Cgroups(version=2, parents={"cpu": "/x"}).unenforced() is None


def test_the_slot_cgroup_carries_the_limits(tmp_path):
    groups = sandbox.cgroups()
    if not groups.version:
        pytest.skip(f"no cgroups here: {groups.unenforced()}")
    procs = sandbox.slot_cgroup(3, Limits(cores=0.5, ram=300, nproc=77))
    folders = {os.path.dirname(p) for p in procs}
    values = {}
    for folder in folders:
        for name in ("cpu.max", "cpu.cfs_quota_us", "memory.max", "memory.limit_in_bytes", "pids.max"):
            if os.path.exists(os.path.join(folder, name)):
                values[name] = open(os.path.join(folder, name)).read().split()[0]
    if groups.version == 2:
        assert values == {"cpu.max": "50000", "memory.max": str(300 << 20), "pids.max": "77"}
    else:
        assert values == {"cpu.cfs_quota_us": "50000", "memory.limit_in_bytes": str(300 << 20), "pids.max": "77"}


# --- prepare: files read safely, locked cells restored, junk metadata stripped ---------------------------------

import copy  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402

import nbformat  # noqa: E402
from grading_helpers import ASSIGNMENT, index_of, make_course, source_nb, submit  # noqa: E402

from course_lib.grading.pool import Outcome, load_course, submissions  # noqa: E402
from course_lib.grading.prepare import load_source_info, prepare, read_regular  # noqa: E402


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return make_course(tmp_path_factory.mktemp("prepare-course"))


def prepare_one(course, student, timeout=60):
    """prepare() of one submission in a thread, failing (instead of hanging) if it blocks."""
    config, coursedir = load_course(course)
    infos = load_source_info(coursedir.db_url, ASSIGNMENT)
    box = {}
    thread = threading.Thread(target=lambda: box.update(
        result=prepare(coursedir, config, ASSIGNMENT, student, infos, [])), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "prepare() blocked"
    return box["result"], coursedir


def submission_folder(course, student):
    return course / "submitted" / student / ASSIGNMENT


def test_read_regular_refuses_links_fifos_devices_and_big_files(tmp_path):
    (tmp_path / "ok").write_bytes(b"12345")
    assert read_regular(str(tmp_path / "ok"), 5) == b"12345"
    with pytest.raises(ValueError, match="larger than 4 bytes"):
        read_regular(str(tmp_path / "ok"), 4)
    os.symlink(tmp_path / "ok", tmp_path / "link")
    with pytest.raises(ValueError, match="symbolic link"):
        read_regular(str(tmp_path / "link"), 100)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="not a regular file"):
        read_regular(str(tmp_path / "fifo"), 100)  # returns at once: nobody writes to this FIFO
    with pytest.raises(ValueError, match="not a regular file"):
        read_regular("/dev/zero", 100)


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "root_only"])
def test_a_hostile_timestamp_neither_blocks_nor_is_read(course, tmp_path, kind):
    student = f"timestamp_{kind}"
    submit(course, student, source_nb())
    target = submission_folder(course, student) / "timestamp.txt"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev_zero":
        os.symlink("/dev/zero", target)
    else:
        secret = tmp_path / "secret"
        secret.write_text("2020-01-01 00:00:00")
        os.chmod(secret, 0o600)
        os.symlink(secret, target)
    prepared, _ = prepare_one(course, student)
    assert prepared.problems == []
    assert any(n.startswith("timestamp.txt ignored:") for n in prepared.notes), prepared.notes


def test_links_and_special_files_in_a_submission_are_left_out(course, tmp_path):
    student = "links"
    submit(course, student, source_nb())
    folder = submission_folder(course, student)
    secret = tmp_path / "root_only.txt"
    secret.write_text("TOP SECRET")
    os.chmod(secret, 0o600)
    os.symlink(secret, folder / "stolen.txt")
    os.symlink(tmp_path, folder / "stolen_dir")
    os.mkfifo(folder / "pipe.txt")
    (folder / "notes.txt").write_text("mine")
    prepared, coursedir = prepare_one(course, student)
    dest = coursedir.format_path(coursedir.autograded_directory, student, ASSIGNMENT)
    assert sorted(os.listdir(dest)) == ["notes.txt"]
    assert len([n for n in prepared.notes if "left out" in n]) == 3, prepared.notes


def test_a_notebook_that_is_a_link_is_malformed_and_never_read(course, tmp_path):
    student = "linked_notebook"
    folder = submission_folder(course, student)
    folder.mkdir(parents=True)
    secret = tmp_path / "other.ipynb"
    nbformat.write(source_nb(), secret)
    os.symlink(secret, folder / f"{ASSIGNMENT}.ipynb")
    prepared, _ = prepare_one(course, student)
    assert prepared.problems == [("malformed", f"{ASSIGNMENT}.ipynb: is a symbolic link")]
    assert prepared.zeroed == [ASSIGNMENT]


def test_a_submission_folder_that_is_a_link_is_not_read(course, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    nbformat.write(source_nb(), elsewhere / f"{ASSIGNMENT}.ipynb")
    (course / "submitted" / "linked_folder").mkdir(parents=True)
    os.symlink(elsewhere, submission_folder(course, "linked_folder"))
    prepared, _ = prepare_one(course, "linked_folder")
    assert ("malformed", "the submission folder is a symbolic link: nothing was read") in prepared.problems
    assert prepared.zeroed == [ASSIGNMENT]


def sanitized(course, student, nb):
    submit(course, student, nb)
    prepared, _ = prepare_one(course, student)
    assert prepared.problems == [], prepared.problems
    return prepared.notebooks[ASSIGNMENT], prepared


def test_a_deleted_locked_cell_is_restored(course):
    sol = source_nb()
    setup = sol.cells[index_of(sol, "setup")]
    nb = copy.deepcopy(sol)
    del nb.cells[index_of(nb, "setup")]
    nb.cells.insert(0, nbformat.v4.new_code_cell("def rel_error(a, b):\n    return 0.0\n"))
    out, prepared = sanitized(course, "deleted_setup", nb)
    restored = out.cells[index_of(out, "setup")]
    assert restored.source == setup.source and restored.metadata.nbgrader.locked
    assert index_of(out, "setup") == 2  # after the student's first cell and the intro, where the source has it
    assert "setup: missing locked cell restored from the gradebook" in prepared.notes


@pytest.mark.parametrize("where", ["before", "after"])
def test_duplicated_locked_metadata_neither_protects_the_copy_nor_unprotects_the_original(course, where):
    sol = source_nb()
    nb = copy.deepcopy(sol)
    setup = index_of(nb, "setup")
    fake = nbformat.v4.new_code_cell("def rel_error(a, b):\n    return 0.0\n",
                                     metadata=json.loads(json.dumps(nb.cells[setup].metadata)))
    nb.cells.insert(setup if where == "before" else setup + 1, fake)
    out, _ = sanitized(course, f"duplicated_setup_{where}", nb)
    holders = [c for c in out.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup"]
    assert len(holders) == 1 and holders[0].source == sol.cells[setup].source
    copy_cell = next(c for c in out.cells if "return 0.0" in c.source)
    assert "nbgrader" not in copy_cell.metadata  # runs as the student's code it is
    assert out.cells.index(holders[0]) == out.cells.index(copy_cell) + (1 if where == "before" else -1)


@pytest.mark.parametrize("junk", ["junk", {"solution": True}, {"grade": True, "grade_id": 7, "points": "x"},
                                  {"grade": True, "grade_id": "affine_forward", "solution": True}])
def test_junk_nbgrader_metadata_on_a_markdown_cell_is_stripped_not_zeroed(course, junk):
    nb = copy.deepcopy(source_nb())
    nb.cells.insert(3, nbformat.v4.new_markdown_cell("my notes"))
    nb.cells[3].metadata["nbgrader"] = junk
    student = f"junk_{abs(hash(json.dumps(junk))) % 10**8}"
    out, prepared = sanitized(course, student, nb)
    notes_cell = next(c for c in out.cells if c.source == "my notes")
    assert "nbgrader" not in notes_cell.metadata
    assert any("stripped" in n for n in prepared.notes), prepared.notes
    assert out.cells[index_of(out, "affine_forward")].cell_type == "code"


# --- odd student names --------------------------------------------------------------------------------------

from course_lib.grading.summary import csv_cell, digest, printable, report  # noqa: E402

ODD = ["=SUM(1,2)", "-rf", "bell\x07\x1b[31mred", "new\nline", "rtl\u202eevil", "+cmd|' /C calc'!A0", "@x"]


def test_printable_and_csv_cells_defuse_every_odd_name():
    assert printable("bell\x07\x1b[31mred") == "bell\\x07\\x1b[31mred"
    assert printable("rtl\u202eevil") == "rtl\\u202eevil"
    assert printable(b"caf\xe9".decode("utf-8", "surrogateescape")) == "caf\\xe9"
    assert printable("émile") == "émile"
    assert csv_cell("=SUM(1,2)") == "'=SUM(1,2)" and csv_cell("-rf") == "'-rf" and csv_cell("alice") == "alice"
    for name in ODD:
        assert all(ch.isprintable() for ch in printable(name))


def test_reports_escape_every_odd_name_and_never_abort(tmp_path):
    bad_bytes = b"na\xefve\xff".decode("utf-8", "surrogateescape")
    outcomes = [Outcome(name, scores={"q": (1.0, 2.0)}, problems=[("crashed", f"{name}: boom\x1b[2J")])
                for name in [*ODD, bad_bytes]]
    paths = report(outcomes, {"q": 2.0}, str(tmp_path), ASSIGNMENT)
    text = digest(outcomes, {"q": 2.0}, paths, 1.0)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "na\\xefve\\xff" in text
    import csv

    with open(paths["grades"], encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert len(rows) == len(outcomes) + 1  # a row per student: the file was not cut
    students = [r[0] for r in rows[1:]]
    assert "'=SUM(1,2)" in students and "'-rf" in students and "'+cmd|' /C calc'!A0" in students
    for row in rows[1:]:
        assert not row[0].startswith(("=", "+", "-", "@")) and all(ch.isprintable() for ch in row[0])
    with open(paths["problems"], encoding="utf-8") as f:
        problems = list(csv.reader(f))
    assert len(problems) == len(outcomes) + 1 and all("\x1b" not in cell for row in problems for cell in row)


def test_submissions_keeps_odd_utf8_names_and_sets_aside_undecodable_ones(course):
    _, coursedir = load_course(course)
    root = os.fsencode(course / "submitted")
    for raw in (b"caf\xe9", b"=SUM(1,2)", b"-dash", b"tab\tname"):
        os.makedirs(os.path.join(root, raw, ASSIGNMENT.encode()), exist_ok=True)
    unusable: list[str] = []
    found = submissions(coursedir, ASSIGNMENT, None, unusable)
    assert {"=SUM(1,2)", "-dash", "tab\tname"} <= set(found)
    assert unusable == [os.fsdecode(b"caf\xe9")]


# --- feedback: student output inert, hidden-test text redacted ------------------------------------------------

from course_lib.grading.feedback import REDACTED, HideHiddenTests, hidden_lines  # noqa: E402

HIDDEN = "assert np.allclose(affine_forward(x7, W7, b7)[0], expected_seven)"


def feedback_notebook():
    nb = nbformat.v4.new_notebook()
    test = nbformat.v4.new_code_cell(
        "assert affine_forward(x, W, b)[0].shape == (2, 3)\n### BEGIN HIDDEN TESTS\n" + HIDDEN
        + "\n### END HIDDEN TESTS", metadata={"nbgrader": {"grade": True, "grade_id": "t", "locked": True,
                                                         "points": 1, "solution": False, "schema_version": 3}})
    leak = nbformat.v4.new_code_cell("import linecache; print(linecache.cache)")
    leak.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                           text=repr({"<graded cell 4>": (1, None, ["  " + HIDDEN + "\n"])})),
                    nbformat.v4.new_output("execute_result", data={"text/plain": repr([HIDDEN])},
                                           execution_count=3)]
    script = nbformat.v4.new_code_cell("display(HTML(...))")
    script.outputs = [nbformat.v4.new_output("display_data", data={"text/html": "<script>alert('x')</script>"}),
                      nbformat.v4.new_output("display_data", data={
                          "text/plain": "fine", "application/javascript": "alert('y')",
                          "image/svg+xml": "<svg onload=alert(1)></svg>"}),
                      nbformat.v4.new_output("stream", name="stdout", text="<script>alert('z')</script>")]
    answer = nbformat.v4.new_markdown_cell("My answer <script>alert('m')</script> ``` `x`", metadata={
        "nbgrader": {"grade": True, "grade_id": "a", "locked": False, "points": 1, "solution": True,
                     "schema_version": 3}})
    raw = nbformat.v4.new_raw_cell("<script>alert('r')</script>", metadata={"format": "text/html"})
    nb.cells = [test, leak, script, answer, raw]
    return nb


def test_hidden_lines_are_the_unpublished_lines_of_hidden_regions():
    assert hidden_lines(feedback_notebook()) == {"".join(ch for ch in HIDDEN if ch.isalnum())}


def test_feedback_redacts_hidden_test_text_and_renders_student_output_inert():
    from nbconvert import HTMLExporter

    nb, _ = HideHiddenTests()(feedback_notebook(), {})
    test, leak, script, answer, raw = nb.cells
    assert "HIDDEN" not in test.source and "expected_seven" not in test.source
    assert [o.get("text") or o["data"]["text/plain"] for o in leak.outputs] == [REDACTED, REDACTED]
    assert script.outputs[0]["data"] == {"text/plain": "<script>alert('x')</script>"}
    assert script.outputs[1]["data"] == {"text/plain": "fine"}
    assert answer.cell_type == "markdown" and answer.source.startswith("````text\n")
    assert raw.cell_type == "markdown"
    html, _ = HTMLExporter().from_notebook_node(nb)
    for payload in ("<script>alert('x')", "<script>alert('z')", "<script>alert('m')", "<script>alert('r')",
                    "alert('y')", "onload=alert"):
        assert payload not in html, payload
    assert "&lt;script&gt;alert(&#39;x&#39;)" in html or "&lt;script&gt;alert('x')" in html
    assert "expected_seven" not in html
