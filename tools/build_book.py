"""Build the course website into _build/html, executing every chapter, with warnings as errors.

Run by ``make book`` and by the book test. Two steps:

1. The student (release) version of every assignment is generated with nbgrader from
   ``assignments/source`` into ``_build/student/<id>.ipynb``; each chapter links it with the ``{download}``
   role, so the site publishes the notebooks students work on (solutions and hidden tests removed).
2. Jupyter Book builds the site with ``-W``. It caches each chapter's execution keyed on the chapter's own
   text, so a change in course_lib alone would leave stale outputs and figures; this script drops the
   execution cache whenever course_lib's source changes. Sphinx, for its part, skips pages whose source did
   not change, which would keep those stale outputs and let a page that failed in one build pass silently in
   the next; so every page is re-read each time (``--all``), which costs seconds with a warm execution cache.
   Pages are read, and so executed, by ``--jobs`` processes at once (default 2, at most one per core), each
   kernel limited to its share of the cores' threads.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
STUDENT = BUILD / "student"
BIN = Path(sys.executable).parent


def tree_hash(*folders: Path, pattern: str = "*") -> str:
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(p for p in folder.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts):
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")  # nbgrader shells out to alembic
    # A non-inline backend (e.g. MPLBACKEND=Agg on a CI machine) would make the chapters' figures vanish.
    env.pop("MPLBACKEND", None)
    for var in ("NBGRADER_DB_URL", "NBGRADER_EXCHANGE"):
        env.pop(var, None)
    return env


def generate_student_notebooks() -> None:
    """nbgrader generate_assignment for every assignment, into _build/student (skipped when unchanged)."""
    source = ROOT / "assignments" / "source"
    stamp = STUDENT / ".source.sha256"
    current = tree_hash(source, ROOT / "assignments" / "nbgrader_config.py")
    if stamp.exists() and stamp.read_text() == current:
        return
    shutil.rmtree(STUDENT, ignore_errors=True)
    STUDENT.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        shutil.copy(ROOT / "assignments" / "nbgrader_config.py", course)
        shutil.copytree(source, course / "source")
        for folder in sorted(p for p in (course / "source").iterdir() if p.is_dir()):
            subprocess.run(
                [str(BIN / "nbgrader"), "generate_assignment", folder.name, "--force", "--log-level=WARN"],
                cwd=course, env=tool_env(), check=True,
            )
            for nb in (course / "release" / folder.name).glob("*.ipynb"):
                shutil.copy(nb, STUDENT / nb.name)
    stamp.write_text(current)


# `jupyter-book build` has no option for Sphinx's parallel reading, which myst-nb and the theme support: the
# chapters are read, and so executed, by `jobs` processes at once. This runs its command line with that setting.
JUPYTER_BOOK = (
    "import functools, sys; import jupyter_book.sphinx as s; from jupyter_book.cli.main import main; "
    "s.build_sphinx = functools.partial(s.build_sphinx, jobs=int(sys.argv.pop(1))); main()"
)


def create_execution_cache(path: Path) -> None:
    """Create the execution cache's database before the reading processes start.

    Each process creates it on first use when it is missing; with two of them starting on an empty cache, both
    found no database and both created its tables, and one build failed with "table nbproject already exists"
    (seen in a CI run from a fresh clone). Created here, once, before they start, there is nothing to race for.
    """
    from jupyter_cache.cache.db import create_db  # installed with jupyter-book (myst-nb)

    path.mkdir(parents=True, exist_ok=True)
    create_db(path).dispose()


def build(strict: bool = True, jobs: int = 2) -> int:
    BUILD.mkdir(exist_ok=True)
    generate_student_notebooks()
    stamp = BUILD / ".course_lib.sha256"
    current = tree_hash(ROOT / "course_lib", pattern="*.py")
    if not stamp.exists() or stamp.read_text() != current:
        shutil.rmtree(BUILD / ".jupyter_cache", ignore_errors=True)
    create_execution_cache(BUILD / ".jupyter_cache")
    jobs = max(1, min(jobs, os.cpu_count() or 1))
    cmd = [str(BIN / "python"), "-c", JUPYTER_BOOK, str(jobs), "build", str(ROOT), "--path-output", str(ROOT), "--all"]
    if strict:
        cmd += ["-W", "--keep-going"]
    env = tool_env()
    if jobs > 1:  # each chapter's kernel gets its share of the cores (torch would otherwise start one thread per
        # core in every kernel, and oversubscribed threads spin against each other)
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if result.returncode == 0:
        stamp.write_text(current)
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-strict", action="store_true", help="do not turn warnings into errors")
    parser.add_argument("--jobs", type=int, default=2,
                        help="chapters executed at once (default 2, at most the number of cores)")
    args = parser.parse_args(argv)
    return build(strict=not args.no_strict, jobs=args.jobs)


if __name__ == "__main__":
    sys.exit(main())
