"""Build the course website into _build/html, executing every chapter, with warnings as errors.

Run by ``make book`` and by the book test. Jupyter Book caches each chapter's execution keyed on the
chapter's own text, so a change in course_lib alone would leave stale outputs and figures; this script
drops the execution cache whenever course_lib's source changes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def course_lib_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "course_lib").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build(output: Path, strict: bool = True) -> int:
    output.mkdir(parents=True, exist_ok=True)
    stamp = output / ".course_lib.sha256"
    current = course_lib_hash()
    if not stamp.exists() or stamp.read_text() != current:
        shutil.rmtree(output / ".jupyter_cache", ignore_errors=True)
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "--path-output", str(output.parent)]
    if output.name != "_build":
        raise SystemExit("the output folder must be named _build (Jupyter Book appends the name itself)")
    if strict:
        cmd += ["-W", "--keep-going"]
    env = dict(os.environ)
    # A non-inline backend (e.g. MPLBACKEND=Agg on a CI machine) would make the chapters' figures vanish.
    env.pop("MPLBACKEND", None)
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if result.returncode == 0:
        stamp.write_text(current)
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "_build", help="build folder (named _build)")
    parser.add_argument("--no-strict", action="store_true", help="do not turn warnings into errors")
    args = parser.parse_args(argv)
    return build(args.output.resolve(), strict=not args.no_strict)


if __name__ == "__main__":
    sys.exit(main())
