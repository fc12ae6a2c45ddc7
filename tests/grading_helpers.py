"""Shared helpers of the grading tests: a throwaway nbgrader course and notebook edits."""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
import sys
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


def make_course(folder: Path, assignment: str = ASSIGNMENT) -> Path:
    """A fresh course directory with the assignment generated (gradebook filled)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "assignments" / "nbgrader_config.py", folder)
    shutil.copytree(ROOT / "assignments" / "source" / assignment, folder / "source" / assignment)
    run(folder, "nbgrader", "generate_assignment", assignment, "--force")
    return folder


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
