"""The sandbox around one submission: bubblewrap, an unprivileged uid, resource limits.

:func:`command` builds the command line that runs :mod:`course_lib.grading.runner` for one submission:

* ``bwrap`` with new network, PID, IPC and UTS namespaces (no network at all, only a loopback of its own),
  ``--die-with-parent`` and ``--new-session``; a filesystem made of read-only system directories (``/usr``,
  the ``/lib`` and ``/bin`` links, a few files of ``/etc``), the Python installation and the virtual
  environment read-only, the submission's working copy read-write at ``/submission``, and an empty ``/tmp``.
  Nothing else: no ``source/``, no other students, no gradebook, no home directory.
* ``prlimit`` for CPU time, address space, processes and file size; the wall-clock limit is the parent's.
* when the parent is root, ``setpriv`` switches to a uid of its own per worker (``61000 + slot`` by default),
  with no capabilities and ``no_new_privs``, so RLIMIT_NPROC of one submission cannot starve another.

Without bubblewrap (or user namespaces), :func:`available` says why, and the caller refuses to run untrusted
code unless the instructor passes ``--no-sandbox-i-trust-this-code``; then the runner runs directly, with the
same resource limits where ``prlimit`` exists.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .limits import Limits

UID_BASE = 61000
WORKDIR = "/submission"
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "fonts", "alternatives",
             "mime.types", "ssl/certs")


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """(True, "") if bubblewrap can build a sandbox here, else (False, why)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bubblewrap (bwrap) is not installed"
    try:
        probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--proc", "/proc",
                                "--dev", "/dev", "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return False, f"bwrap failed to start: {error}"
    if probe.returncode != 0:
        return False, f"bwrap cannot create namespaces here: {probe.stderr.strip()[:300]}"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return False, "running as root needs setpriv (util-linux) to drop to an unprivileged uid"
    return True, ""


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


def command(workdir: str, limits: Limits, slot: int = 0, sandbox: bool = True,
            course_lib_dir: str | None = None) -> tuple[list[str], dict | None]:
    """The argv that runs the runner on ``workdir``, and the environment to start it with (None: inherit).

    ``course_lib_dir``: a restricted copy of course_lib (:func:`~course_lib.grading.reference.
    restricted_course_lib`) bound over the real one inside the sandbox, so the reference implementations
    are absent there. (Without a sandbox, the runner passes it to the kernel through ``PYTHONPATH``.)
    """
    runner = [sys.executable, "-I", "-m", "course_lib.grading.runner"]
    if not sandbox:
        env = dict(os.environ, **environment(home=os.path.join(workdir, ".home")))
        for key in ("MPLCONFIGDIR", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR",
                    "JUPYTER_DATA_DIR"):
            env[key] = os.path.join(workdir, ".home", key.lower())
        return _prlimit(limits) + runner, env
    roots = _python_roots()
    args = [shutil.which("bwrap"), "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--clearenv"]
    for key, value in environment().items():
        args += ["--setenv", key, value]
    # the empty /tmp first: a course or virtual environment that lives under /tmp is bound on top of it
    args += _system_args() + ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    args += _dirs_for(roots)
    for root in roots:
        args += ["--ro-bind", root, root]
    if course_lib_dir is not None:
        import course_lib

        args += ["--ro-bind", course_lib_dir, os.path.realpath(os.path.dirname(course_lib.__file__))]
    args += ["--perms", "0755", "--dir", WORKDIR, "--bind", workdir, WORKDIR, "--chdir", "/tmp"]
    args += _prlimit(limits)
    if os.geteuid() == 0:
        uid = UID_BASE + slot
        args += [shutil.which("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                 "--bounding-set=-all", "--no-new-privs", "--"]
    return args + runner, None


def prepare_workdir(workdir: str, slot: int) -> None:
    """Give the working copy to the sandbox's uid (root parent) so the kernel can write there."""
    if os.geteuid() != 0:
        return
    uid = UID_BASE + slot
    for dirpath, _, filenames in os.walk(workdir):
        os.chown(dirpath, uid, uid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), uid, uid)
