"""Shared helpers of the grading tests: a throwaway nbgrader course and notebook edits."""

from __future__ import annotations

import atexit
import copy
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_feedforward"
SOURCE_NB = ROOT / "assignments" / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e.get("PATH", "")  # alembic, jupyter
    for key in ("NBGRADER_DB_URL", "NBGRADER_EXCHANGE"):
        e.pop(key, None)
    return e


def run(course: Path, *args: str, check: bool = True, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m <args>`` in the course directory."""
    result = subprocess.run([sys.executable, "-m", *args], cwd=course, env={**env(), **(extra_env or {})},
                            capture_output=True, text=True, timeout=3600)
    if check:
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


# What the grading tests share within one pytest session (CI makes about fifty courses): a generated course per
# set of assignments, and the sandboxed grader's cache of reference records. Both are keyed on content.
_SESSION: dict[str, object] = {}
_SESSION_LOCK = threading.Lock()


def _session_dir() -> Path:
    with _SESSION_LOCK:
        if "dir" not in _SESSION:
            folder = Path(tempfile.mkdtemp(prefix="grading-tests-"))
            atexit.register(shutil.rmtree, folder, True)
            _SESSION["dir"] = folder
        return _SESSION["dir"]


def _sources_digest(assignments: tuple[str, ...]) -> str:
    """sha256 of nbgrader_config.py and every file of the assignments' source folders."""
    digest = hashlib.sha256((ROOT / "assignments" / "nbgrader_config.py").read_bytes())
    for assignment in assignments:
        digest.update(f"\0{assignment}\0".encode())
        for rel, sha in tree_hashes(ROOT / "assignments" / "source" / assignment).items():
            digest.update(f"{rel}\0{sha}\0".encode())
    return digest.hexdigest()[:24]


def generated_course(assignments: tuple[str, ...]) -> Path:
    """A course directory with ``assignments`` generated (``nbgrader generate_assignment``, gradebook filled),
    made once per session and per content of their sources (a generate takes several seconds): copy it, never
    grade in it. The copy is the course ``generate_assignment`` makes (the gradebook holds no path)."""
    key = _sources_digest(assignments)
    with _SESSION_LOCK:
        lock = _SESSION.setdefault(f"lock {key}", threading.Lock())
    with lock:  # two threads may make two different templates at once, never the same one twice
        folder = _session_dir() / "courses" / key
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            shutil.copy(ROOT / "assignments" / "nbgrader_config.py", folder)
            for assignment in assignments:
                shutil.copytree(ROOT / "assignments" / "source" / assignment, folder / "source" / assignment)
                run(folder, "nbgrader", "generate_assignment", assignment, "--force")
            (folder / ".complete").touch()
        return folder


def share_reference_cache(course: Path, how: str = "shared") -> None:
    """Give the course the session's cache of reference records (``.grading/reference``, keyed by the grader on
    the source notebook, its test cells, course_lib's code and the inputs' key), so that the sandboxed reference
    run of an assignment's source is made once per session, not once per course. ``how``: "shared" links the
    course's cache to the session's (what it computes is shared too); "copied" copies the records made so far
    into the course's own cache (a test that hashes every file of the course sees them as files); "own" leaves
    the course without (the grader makes its own reference run)."""
    assert how in ("shared", "copied", "own"), how
    shared = _session_dir() / "reference"
    shared.mkdir(mode=0o700, exist_ok=True)
    cache = course / ".grading" / "reference"
    if how == "own" or cache.exists() or cache.is_symlink():
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    if how == "shared":
        cache.symlink_to(shared, target_is_directory=True)
    else:
        shutil.copytree(shared, cache)


def copy_course(template: Path, folder: Path, references: str = "shared") -> Path:
    """``folder`` made a copy of the generated course ``template`` (without its marker), with the session's
    reference records as :func:`share_reference_cache` ``references`` says."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))
    share_reference_cache(folder, references)
    return folder


def make_course(folder: Path, assignment: str = ASSIGNMENT, references: str = "shared") -> Path:
    """A fresh course directory with the assignment generated (gradebook filled)."""
    return copy_course(generated_course((assignment,)), folder, references)


def make_full_course(folder: Path, assignments: list[str] | tuple[str, ...]) -> Path:
    """A fresh course directory with every assignment of ``assignments`` generated, in that order."""
    return copy_course(generated_course(tuple(assignments)), folder)


def grade_three_ways(folder: Path, assignment: str, student: str, nb, check_path: Path) -> dict:
    """One submission graded by plain ``nbgrader autograde --student`` and by the sandboxed grader (each in a fresh
    course of its own under ``folder``), and by ``python -m course_lib.check`` on ``check_path``: the three side by
    side, two at a time (each runs one kernel). Returns {"nbgrader": scores, "sandbox": scores, "check": the
    check's CompletedProcess}."""
    from concurrent.futures import ThreadPoolExecutor

    text = nbformat.writes(nb)  # written once here: the threads below share bytes, not the notebook object
    data = (text if text.endswith("\n") else text + "\n").encode("utf-8")  # as nbformat.write writes it

    def plain():
        course = make_course(folder / "course", assignment)
        submit(course, student, data, assignment)
        run(course, "nbgrader", "autograde", assignment, "--student", student, "--force")
        return scores(f"sqlite:///{course / 'gradebook.db'}", assignment)[student]

    def sandboxed():
        course = make_course(folder / "sandboxed", assignment)
        submit(course, student, data, assignment)
        run(course, "course_lib.grading", "autograde", assignment, "--student", student, "--quiet")
        return scores(f"sqlite:///{course / 'gradebook.db'}", assignment)[student]

    def check():
        check_path.write_bytes(data)
        return subprocess.run([sys.executable, "-m", "course_lib.check", str(check_path)], capture_output=True,
                              text=True, timeout=900, cwd=ROOT)

    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(job) for name, job in (("nbgrader", plain), ("sandbox", sandboxed),
                                                             ("check", check))}
        return {name: future.result() for name, future in futures.items()}


def source_nb():
    return nbformat.read(SOURCE_NB, as_version=4)


def release_nb(course: Path):
    return nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def index_of(nb, gid: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if grade_id(c) == gid)


def with_source(nb, gid: str, source: str):
    nb = copy.deepcopy(nb)
    nb.cells[index_of(nb, gid)].source = source
    return nb


def insert_after(nb, gid: str | None, source: str, metadata: dict | None = None):
    """A new code cell after the cell ``gid`` (at the top if None)."""
    nb = copy.deepcopy(nb)
    cell = nbformat.v4.new_code_cell(source, metadata=metadata or {})
    nb.cells.insert(0 if gid is None else index_of(nb, gid) + 1, cell)
    return nb


def submit(course: Path, student: str, content, assignment: str = ASSIGNMENT) -> None:
    """Put a notebook (or raw bytes, for malformed files) at submitted/<student>/<assignment>/."""
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        nbformat.write(content, path)


def tree_hashes(folder: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> digest), skipping paths under ``exclude``."""
    hashes = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not any(rel == e or rel.startswith(e.rstrip("/") + "/") for e in exclude):
            hashes[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def gradebook_rows(db_url: str, assignment: str = ASSIGNMENT) -> dict[str, dict[str, tuple]]:
    """student -> grade_id -> (auto_score, manual_score, needs_manual_grade, max_score)."""
    from nbgrader.api import Gradebook

    rows = {}
    with Gradebook(db_url) as gb:
        for sub in gb.find_assignment(assignment).submissions:
            rows[sub.student.id] = {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade, g.max_score)
                                    for nb in sub.notebooks for g in nb.grades}
    return rows


def key_users() -> dict[int, int]:
    """uid -> number of kernel keys it owns on the host (/proc/key-users; {} where there is none)."""
    counts = {}
    try:
        with open("/proc/key-users") as f:
            for line in f:
                uid, rest = line.split(":", 1)
                counts[int(uid)] = int(rest.split()[2].split("/")[0])
    except OSError:
        pass
    return counts


def scores(db_url: str, assignment: str = ASSIGNMENT) -> dict[str, dict[str, float]]:
    """student -> grade_id -> score."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        return {sub.student.id: {g.name: g.score for nb in sub.notebooks for g in nb.grades}
                for sub in gb.find_assignment(assignment).submissions}


class PostgresServer:
    """A throwaway PostgreSQL server on 127.0.0.1 (initdb + pg_ctl), run as an unprivileged user.

    As root it runs as the ``postgres`` system user (the server refuses to run as root); otherwise as the
    current user. ``available()`` says whether the binaries are installed.
    """

    def __init__(self):
        import glob
        import pwd
        import socket
        import tempfile

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))  # Debian keeps the server tools here
        initdb = bins[-1] if bins else shutil.which("initdb")
        self.bin = Path(os.path.realpath(initdb)).parent if initdb else None
        self.dir = Path(tempfile.mkdtemp(prefix="pg-"))
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    @staticmethod
    def available() -> bool:
        import glob

        return bool(shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb"))

    def _run(self, *args: str) -> None:
        subprocess.run(self.prefix + list(args), check=True, capture_output=True, timeout=120, cwd=self.dir)

    def start(self) -> str:
        data = self.dir / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "grader", "--no-sync")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.dir}", "start")
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "grader", "gradebook")
        return f"postgresql+psycopg2://grader@127.0.0.1:{self.port}/gradebook"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
