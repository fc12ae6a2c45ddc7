"""Reformat the code cells of MyST chapters whose lines run past the page's column (88 characters).

Usage: ``python tools/fit_code_cells.py book/CHAPTER.md ...``. Each code cell with a line longer than 88
characters is passed through ``ruff format --line-length 88`` (cell options and cells with IPython magics are
left alone). Long string literals and comments are not split by the formatter: ``tests/test_book.py`` names
any line that still does not fit, to be shortened by hand.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

WIDTH = 88
CELL = re.compile(r"(```\{code-cell\}[^\n]*\n)(.*?)(```)", re.S)
OPTIONS = re.compile(r"(---\n.*?\n---\n|(?::[\w-]+:[^\n]*\n)+)", re.S)


def fit(text: str, ruff: str) -> str:
    out, pos = [], 0
    for match in CELL.finditer(text):
        cell = match.group(2)
        header = OPTIONS.match(cell)
        options = header.group(0) if header else ""
        body = cell[len(options):]
        too_long = any(len(line) > WIDTH for line in body.splitlines())
        if too_long and not re.search(r"^\s*[%!]", body, re.M):
            run = subprocess.run([ruff, "format", "--line-length", str(WIDTH), "--stdin-filename", "cell.py", "-"],
                                 input=body, capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(f"ruff could not format a cell:\n{run.stderr}")
            body = run.stdout
        out.append(text[pos:match.start(2)] + options + body)
        pos = match.end(2)
    out.append(text[pos:])
    return "".join(out)


def main(paths: list[str]) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    for path in map(Path, paths):
        path.write_text(fit(path.read_text(), ruff))


if __name__ == "__main__":
    main(sys.argv[1:])
