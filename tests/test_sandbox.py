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

from course_lib.grading import sandbox
from course_lib.grading.limits import Limits

ADD_KEY = {"x86_64": 248, "aarch64": 217}


def needs_sandbox():
    ok, why = sandbox.available()
    if not ok:
        pytest.skip(f"no sandbox here ({why}); CI installs bubblewrap")


def run_in_sandbox(tmp_path, code: str, limits: Limits = Limits(), slot: int = 0, timeout: float = 120):
    """Run ``code`` with the sandbox's Python in a sandbox for worker ``slot``; the CompletedProcess."""
    work = tmp_path / f"work-{slot}-{time.monotonic_ns()}"
    work.mkdir()
    sandbox.prepare_workdir(str(work), slot)
    cmd, env = sandbox.command(str(work), limits, slot=slot, program=[sys.executable, "-I", "-c", code])
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


def key_users() -> dict[int, int]:
    """uid -> number of keys it owns on the host (/proc/key-users)."""
    counts = {}
    with open("/proc/key-users") as f:
        for line in f:
            uid, rest = line.split(":", 1)
            counts[int(uid)] = int(rest.split()[2].split("/")[0])
    return counts


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
