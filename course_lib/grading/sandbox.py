"""The sandbox around one submission: bubblewrap, a user namespace, an unprivileged uid, resource limits.

:func:`command` builds the command line that runs :mod:`course_lib.grading.runner` for one submission:

* a trusted launcher (``python -m course_lib.grading.sandbox``, still with the grader's rights) puts itself
  in the submission's cgroup (:func:`cgroups`: CPU quota and equal CPU weight, RAM and process limits per
  *submission*, where the host allows it), joins a fresh, anonymous session keyring and, when the grader is
  root, creates the submission's user namespace (:func:`user_namespace`), then executes
* ``prlimit`` for CPU time, address space, processes and file size per process; the wall-clock limit is the
  parent's;
* ``bwrap`` with new user, network, PID, IPC and UTS namespaces (no network at all, only a loopback of its
  own), ``--die-with-parent`` and ``--new-session``. As root, bwrap joins the launcher's user namespace (it
  maps root, for bwrap itself, and the worker's own uid ``61000 + slot``, nothing else) and ``setpriv``
  switches to that uid inside, with no capabilities and ``no_new_privs``, so RLIMIT_NPROC of one submission
  cannot starve another; as another user, bwrap runs unprivileged in a new user namespace that maps the
  grader's uid only. Either way, no namespace can be created inside. The user namespace makes the kernel's
  per-user state private to one submission: its user, user-session and persistent keyrings (``add_key``,
  ``keyctl``) are new and die with it, as does the session keyring, so one submission cannot leave a key for
  the next, nor on the host. The filesystem: read-only system directories (``/usr``, the ``/lib`` and ``/bin``
  links, a few files of ``/etc``), the Python installation and the virtual environment read-only, a
  read-only root and ``/dev``, and three size-bounded tmpfs (``Limits.disk`` MiB each, counted in the
  submission's RAM): ``/tmp``, ``/dev/shm`` and the working copy at ``/submission``, whose files (the
  assignment's, from the parent's temporary copy) are bound one by one (each capped by RLIMIT_FSIZE). Nothing
  else: no ``source/``, no other students, no gradebook, no home directory.

Without bubblewrap (or user namespaces), :func:`available` says why, and the caller refuses to run untrusted
code unless the instructor passes ``--no-sandbox-i-trust-this-code``; then the runner runs directly, with the
same resource limits where ``prlimit`` exists (and the cgroup where there is one).

Run as ``python -m course_lib.grading.sandbox`` it is the launcher (:func:`enter`); nothing else runs it.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import os
import platform
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .limits import Limits

UID_BASE = 61000
WORKDIR = "/submission"
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "fonts", "alternatives",
             "mime.types", "ssl/certs")


def _drop_privileges(slot: int) -> list[str]:
    """``setpriv`` to the worker's own unprivileged uid when the grader is root (else nothing: bwrap's user
    namespace maps the grader's uid, with no capabilities)."""
    if os.geteuid() != 0:
        return []
    uid = UID_BASE + slot
    return [shutil.which("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--"]


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """(True, "") if bubblewrap can build a sandbox here (as the sandbox's uid, in a user namespace), else why not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bubblewrap (bwrap) is not installed"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return False, "running as root needs setpriv (util-linux) to drop to an unprivileged uid"
    try:
        probe = subprocess.run(
            _launcher(0, None) + [bwrap, *_user_args(), "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/",
                                  "--proc", "/proc", "--dev", "/dev", "--size", str(1 << 20), "--tmpfs", "/tmp"]
            + _drop_privileges(0) + ["true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return False, f"bwrap failed to start: {error}"
    if probe.returncode != 0:
        return False, (f"bwrap cannot create a user namespace and the others here: {probe.stderr.strip()[:300]} "
                       "(user namespaces must be allowed: user.max_user_namespaces > 0, and for a grader that is "
                       "not root, kernel.unprivileged_userns_clone=1 where that setting exists)")
    return True, ""


# --- cgroups: CPU, RAM and processes per submission ---------------------------------------------------------

CONTROLLERS = ("cpu", "memory", "pids")


@dataclass
class Cgroups:
    """Where per-submission cgroups go on this host: ``version`` 2 or 1, or 0 with ``why`` (not enforced)."""

    version: int = 0
    parents: dict[str, str] = field(default_factory=dict)  # controller -> the folder that holds our cgroups
    why: str = ""

    def unenforced(self) -> str | None:
        """A sentence saying what is not enforced here, or None when everything is."""
        if self.version:
            return None
        return ("per-submission CPU share, RAM and process limits are NOT enforced "
                f"({self.why}); only the per-process limits (cpu, mem, nproc per uid, fsize) apply")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _own_cgroups() -> dict[str, str]:
    """/proc/self/cgroup as {controller: path} ("" for the cgroup v2 line)."""
    own = {}
    for line in _read("/proc/self/cgroup").splitlines():
        _, names, path = line.split(":", 2)
        for name in (names.split(",") if names else [""]):
            own[name] = path
    return own


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(fstype, mount root, mount point, super options) of every cgroup mount, from /proc/self/mountinfo."""
    mounts = []
    for line in _read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fields_, extra = left.split(), right.split()
        if len(extra) >= 3 and extra[0] in ("cgroup", "cgroup2"):
            mounts.append((extra[0], fields_[3], fields_[4], set(extra[2].split(","))))
    return mounts


def _inside(mount_root: str, mount_point: str, path: str) -> str | None:
    """The folder of cgroup ``path`` under a mount of root ``mount_root`` (None if the mount does not show it)."""
    if mount_root != "/" and not (path + "/").startswith(mount_root.rstrip("/") + "/"):
        return None
    relative = os.path.relpath(path, mount_root)
    folder = os.path.normpath(os.path.join(mount_point, relative))
    return folder if os.path.isdir(folder) else None


def _probe_dir(parent: str) -> bool:
    """True if we can create (and remove) a cgroup under ``parent``."""
    test = os.path.join(parent, f"course-grading-probe-{os.getpid()}")
    try:
        os.mkdir(test)
        os.rmdir(test)
        return True
    except OSError:
        return False


def _detect() -> Cgroups:
    if sys.platform != "linux":
        return Cgroups(why="not Linux")
    try:
        own, mounts = _own_cgroups(), _mounts()
    except OSError as error:
        return Cgroups(why=f"cannot read /proc: {error}")
    reasons = []
    # cgroup v2: our cgroup (only at the root of its hierarchy, where processes may stay) or its parent (the
    # usual delegation: the grader in a leaf, the controllers enabled above it) must offer the controllers
    for fstype, root, point, _ in mounts:
        if fstype != "cgroup2" or "" not in own:
            continue
        here = _inside(root, point, own[""])
        if here is None:
            continue
        candidates = [here] if os.path.samefile(here, point) else [os.path.dirname(here)]
        for parent in candidates:
            try:
                offered = set(_read(os.path.join(parent, "cgroup.controllers")).split())
                enabled = set(_read(os.path.join(parent, "cgroup.subtree_control")).split())
            except OSError:
                continue
            if not set(CONTROLLERS) <= offered:
                reasons.append(f"cgroup v2 at {parent} offers only {' '.join(sorted(offered)) or 'no'} controllers")
                continue
            if not set(CONTROLLERS) <= enabled and parent == here:
                try:  # the root of a hierarchy (e.g. a container's) may enable them for its children
                    _write(os.path.join(parent, "cgroup.subtree_control"), " ".join(f"+{c}" for c in CONTROLLERS))
                    enabled = set(CONTROLLERS)
                except OSError:
                    pass
            if set(CONTROLLERS) <= enabled and _probe_dir(parent):
                return Cgroups(version=2, parents=dict.fromkeys(CONTROLLERS, parent))
            reasons.append(f"cgroup v2 controllers not delegated to us at {parent}")
    # cgroup v1: one hierarchy per controller, our cgroup in each must be writable
    parents = {}
    for controller in CONTROLLERS:
        for fstype, root, point, options in mounts:
            if fstype == "cgroup" and controller in options and controller in own:
                folder = _inside(root, point, own[controller])
                if folder and _probe_dir(folder):
                    parents[controller] = folder
                    break
    if len(parents) == len(CONTROLLERS):
        return Cgroups(version=1, parents=parents)
    missing = [c for c in CONTROLLERS if c not in parents]
    reasons.append(f"no writable cgroup v1 hierarchy for {', '.join(missing)}")
    return Cgroups(why="; ".join(reasons) or "no cgroup filesystem")


@functools.lru_cache(maxsize=1)
def cgroups() -> Cgroups:
    """How this host limits a submission as a whole (detected once per process)."""
    return _detect()


_created: list[str] = []
_lock = threading.Lock()


def _remove_created() -> None:
    for folder in reversed(_created):  # slots first, then their parents
        try:
            os.rmdir(folder)
        except OSError:
            pass


def slot_cgroup(slot: int, limits: Limits) -> list[str]:
    """Create (or reset the limits of) the cgroup of worker ``slot``; its ``cgroup.procs`` files ([] if none).

    One cgroup per worker, reused by its submissions one after the other (the PID namespace's end kills every
    process of a submission, so none is left in it); all are removed when the grading process exits.
    """
    info = cgroups()
    if not info.version:
        return []
    period = 100_000
    quota = max(1000, int(limits.cores * period))
    ram = limits.ram * 1024 * 1024
    procs = []
    for controller, parent in sorted(info.parents.items()):
        if info.version == 2 and procs:
            break  # one folder holds every controller
        folder = os.path.join(parent, f"course-grading-{os.getpid()}")
        slot_folder = os.path.join(folder, f"slot-{slot}")
        for path in (folder, slot_folder):
            with _lock:  # workers (threads) create their slots side by side
                if not os.path.isdir(path):
                    os.mkdir(path)
                    _created.append(path)
                    if len(_created) == 1:
                        atexit.register(_remove_created)
        if info.version == 2:
            _write(os.path.join(folder, "cgroup.subtree_control"), " ".join(f"+{c}" for c in CONTROLLERS))
            settings = {"cpu.max": f"{quota} {period}", "cpu.weight": "100", "memory.max": str(ram),
                        "memory.swap.max": "0", "pids.max": str(limits.nproc)}
            settings = list(settings.items())
        else:
            # memsw (RAM + swap) must stay >= the RAM limit: try it before (raising) and after (lowering)
            memsw = ("memory.memsw.limit_in_bytes", str(ram))
            settings = {"cpu": [("cpu.cfs_period_us", str(period)), ("cpu.cfs_quota_us", str(quota)),
                                ("cpu.shares", "1024")],
                        "memory": [memsw, ("memory.limit_in_bytes", str(ram)), memsw],
                        "pids": [("pids.max", str(limits.nproc))]}[controller]
        for name, value in settings:
            path = os.path.join(slot_folder, name)
            if not os.path.exists(path):
                continue  # e.g. no swap accounting
            try:
                _write(path, value)
            except OSError:
                if name != "memory.memsw.limit_in_bytes":
                    raise
        procs.append(os.path.join(slot_folder, "cgroup.procs"))
    return procs


# --- the launcher ------------------------------------------------------------------------------------------

KEYCTL_JOIN_SESSION_KEYRING = 1
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "i686": 288, "armv7l": 311, "ppc64le": 289, "s390x": 280}


def new_session_keyring() -> bool:
    """Join a fresh anonymous session keyring (keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)); False if impossible."""
    number = SYS_KEYCTL.get(platform.machine())
    if number is None:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(number, KEYCTL_JOIN_SESSION_KEYRING, None) >= 0


CLONE_NEWUSER = 0x10000000
USERNS_FD = 3  # where the launcher leaves the user namespace for ``bwrap --userns``


def user_namespace(uid: int) -> int:
    """(root only) A new user namespace mapping ``uid`` and root to themselves, with no nested namespaces.

    bubblewrap runs as root to reach the Python installation (e.g. under a 0700 /root) and joins it; the
    sandboxed processes then run as ``uid`` inside it, with no capabilities. Returns an open fd of it.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    to_child, from_parent = os.pipe()
    from_child, to_parent = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: enter the namespace, wait for its maps, forbid namespaces below it
        try:
            ok = libc.unshare(CLONE_NEWUSER) == 0
            os.write(to_parent, b"1" if ok else b"0")
            os.read(to_child, 1)
            with open("/proc/sys/user/max_user_namespaces", "w") as f:
                f.write("0")
            os.write(to_parent, b"1")
        except BaseException:
            os.write(to_parent, b"0")
        os._exit(0)
    try:
        if os.read(from_child, 1) != b"1":
            raise OSError("unshare(CLONE_NEWUSER) failed")
        for name in ("uid_map", "gid_map"):
            _write(f"/proc/{pid}/{name}", f"0 0 1\n{uid} {uid} 1\n")
        os.write(from_parent, b"x")
        if os.read(from_child, 1) != b"1":
            raise OSError("cannot forbid nested user namespaces")
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)
    finally:
        os.write(from_parent, b"x")
        os.waitpid(pid, 0)
        for fd in (to_child, from_parent, from_child, to_parent):
            os.close(fd)


def enter(argv: list[str]) -> None:
    """``[--userns UID] [cgroup.procs files...] -- program...``: the launcher (see the module docstring).

    Joins the cgroups and a new session keyring, creates the user namespace (as fd 3), then execs ``program``.
    """
    cut = argv.index("--")
    options, program = argv[:cut], argv[cut + 1:]
    uid = None
    if options[:1] == ["--userns"]:
        uid, options = int(options[1]), options[2:]
    for path in options:
        _write(path, str(os.getpid()))
    if not new_session_keyring() and uid is not None:
        raise SystemExit("cannot create a new session keyring for the sandbox")
    if uid is not None:
        fd = user_namespace(uid)
        os.dup2(fd, USERNS_FD, inheritable=True)
        os.close(fd)
    os.execv(program[0], program)


def _python_roots() -> list[str]:
    """Directories the sandbox needs read-only to run this interpreter, its venv and course_lib."""
    import course_lib

    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots.add(os.path.realpath(os.path.dirname(os.path.realpath(sys.executable))))
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(course_lib.__file__))) + "/course_lib")
    # keep the outermost ones only
    result = []
    for root in sorted(roots, key=len):
        if not any(root == r or root.startswith(r.rstrip("/") + "/") for r in result):
            result.append(root)
    return result


def _system_args() -> list[str]:
    args = []
    for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _dirs_for(paths: list[str]) -> list[str]:
    """``--dir`` with mode 0755 for every ancestor of ``paths`` (bwrap would create them 0700 as root)."""
    ancestors = set()
    for path in paths:
        parent = Path(path).parent
        while str(parent) != "/":
            ancestors.add(str(parent))
            parent = parent.parent
    args = []
    for directory in sorted(ancestors, key=lambda p: p.count("/")):
        if directory == "/tmp" or directory.split("/")[1] in ("usr", "bin", "sbin", "lib", "lib64", "etc", "proc",
                                                               "dev"):
            continue
        args += ["--perms", "0755", "--dir", directory]
    return args


def environment(home: str = "/tmp/home") -> dict[str, str]:
    """The whole environment of the runner and kernel (nothing is inherited from the instructor's)."""
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home, "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "NBGRADER_EXECUTION": "autograde", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "MPLCONFIGDIR": "/tmp/matplotlib", "IPYTHONDIR": "/tmp/ipython", "JUPYTER_RUNTIME_DIR": "/tmp/runtime",
        "JUPYTER_CONFIG_DIR": "/tmp/jupyter-config", "JUPYTER_DATA_DIR": "/tmp/jupyter-data",
        "JUPYTER_PLATFORM_DIRS": "1",
        # one thread per submission: parallelism comes from grading submissions side by side
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    }


def _prlimit(limits: Limits) -> list[str]:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return []
    mib = 1024 * 1024
    return [prlimit, f"--cpu={limits.cpu}:{limits.cpu + 5}", f"--as={limits.mem * mib}",
            f"--nproc={limits.nproc}", f"--fsize={limits.fsize * mib}", "--core=0", "--"]


def _launcher(slot: int, limits: Limits | None, sandbox: bool = True) -> list[str]:
    """The trusted first step: the slot's cgroup (if any), a fresh session keyring, the user namespace (root)."""
    userns = ["--userns", str(UID_BASE + slot)] if sandbox and os.geteuid() == 0 else []
    procs = slot_cgroup(slot, limits) if limits is not None else []
    return [sys.executable, "-I", "-m", "course_lib.grading.sandbox", *userns, *procs, "--"]


def _user_args() -> list[str]:
    """bwrap's user namespace: the launcher's (root), or a new one mapping our uid, with no nested ones."""
    if os.geteuid() == 0:
        return ["--userns", str(USERNS_FD)]
    return ["--unshare-user", "--disable-userns"]


def _working_copy(workdir: str, limits: Limits) -> list[str]:
    """``/submission``: a size-bounded tmpfs holding the working copy's folders, and its files bound one by one.

    Symbolic links and special files of the working copy are left out (it is the parent's own copy of the
    assignment's files; nothing there should be one).
    """
    args = ["--size", str(limits.disk * 1024 * 1024), "--perms", "1777", "--tmpfs", WORKDIR]
    for dirpath, dirnames, filenames in os.walk(workdir):
        relative = os.path.relpath(dirpath, workdir)
        inside = WORKDIR if relative == "." else f"{WORKDIR}/{relative}"
        if relative != ".":
            args += ["--perms", "1777", "--dir", inside]
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                args += ["--bind", path, f"{inside}/{name}"]
    return args


def command(workdir: str, limits: Limits, slot: int = 0, sandbox: bool = True,
            program: list[str] | None = None, course_lib_dir: str | None = None) -> tuple[list[str], dict | None]:
    """The argv that runs the runner on ``workdir``, and the environment to start it with (None: inherit).

    ``program`` replaces the runner (tests run probes in the same sandbox). Call it once the working copy is
    complete (:func:`prepare_workdir`): its files are bound one by one. ``course_lib_dir``: a restricted copy
    of course_lib (:func:`~course_lib.grading.reference.restricted_course_lib`) bound over the real one inside
    the sandbox, so the reference implementations are absent there (without a sandbox, the grader passes it
    to the kernel through ``PYTHONPATH`` instead).
    """
    runner = program or [sys.executable, "-I", "-m", "course_lib.grading.runner"]
    if not sandbox:
        env = dict(os.environ, **environment(home=os.path.join(workdir, ".home")))
        for key in ("MPLCONFIGDIR", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR",
                    "JUPYTER_DATA_DIR"):
            env[key] = os.path.join(workdir, ".home", key.lower())
        return _launcher(slot, limits, sandbox=False) + _prlimit(limits) + runner, env
    roots = _python_roots()
    disk = str(limits.disk * 1024 * 1024)
    args = [shutil.which("bwrap"), *_user_args(), "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--clearenv"]
    for key, value in environment().items():
        args += ["--setenv", key, value]
    # the empty /tmp first: a course or virtual environment that lives under /tmp is bound on top of it
    args += _system_args() + ["--proc", "/proc", "--dev", "/dev", "--size", disk, "--perms", "1777", "--tmpfs",
                              "/dev/shm", "--size", disk, "--perms", "1777", "--tmpfs", "/tmp"]
    args += _dirs_for(roots)
    for root in roots:
        args += ["--ro-bind", root, root]
    if course_lib_dir is not None:
        import course_lib

        args += ["--ro-bind", course_lib_dir, os.path.realpath(os.path.dirname(course_lib.__file__))]
    args += _working_copy(workdir, limits)
    # nothing outside the three tmpfs is writable (bwrap's own root and /dev would be, without a size bound)
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp"]
    return _launcher(slot, limits) + _prlimit(limits) + args + _drop_privileges(slot) + runner, None


def prepare_workdir(workdir: str, slot: int) -> None:
    """Give the working copy to the sandbox's uid (root parent) so the kernel can write there."""
    if os.geteuid() != 0:
        return
    uid = UID_BASE + slot
    for dirpath, _, filenames in os.walk(workdir):
        os.chown(dirpath, uid, uid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


if __name__ == "__main__":
    enter(sys.argv[1:])
