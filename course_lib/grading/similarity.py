"""Copying made visible: which submissions' own code is a near-copy of another's, or of the reference code.

``python -m course_lib.grading similarity ASSIGNMENT`` (in the course directory; ``autograde`` writes the same
report) compares the code each student wrote -- every code cell of the submitted notebooks that is not one of
the instructor's cells -- with every other submission and with two references: the assignment's solution
(``source/``) and the functions of ``course_lib`` that the solution cells define (same names). It writes
``reports/<assignment>/similarity.csv`` for the instructor to review and changes no score.

The method is document fingerprinting by winnowing, in the spirit of MOSS (Schleimer, Wilkerson and Aiken,
"Winnowing: local algorithms for document fingerprinting", SIGMOD 2003):

1. code is tokenized with Python's own tokenizer and normalised: every identifier becomes ``V`` (so renaming
   variables changes nothing), except keywords, builtins and attribute names (``.sum``, ``.reshape``: they carry
   the method); numbers become ``N``, strings ``S``; comments and docstrings go;
2. each run of :data:`K` consecutive tokens is hashed, and in each window of :data:`WINDOW` consecutive hashes
   the smallest is kept: any common run of at least ``K + WINDOW - 1`` tokens yields a common fingerprint,
   wherever it sits in the cell (reordered statements keep their fingerprints);
3. fingerprints of the released notebook (signatures, stubs, instructor cells) are removed from every
   submission, so what two students were given does not count as copied;
4. the similarity of two submissions is the share of the smaller one's fingerprints that the other has; of a
   submission and a reference (the solution notebook's solution cells; the course_lib functions, together),
   the share of the submission's fingerprints found in the reference.

A pair at or above the threshold (default 0.6) with at least :data:`MIN_FINGERPRINTS` fingerprints is listed.
Short, canonical answers (``return x @ W + b``) are too small to be told apart and are not reported; code that
was rewritten by hand (other control flow, other library calls) is not a near-copy and is not found.
"""

from __future__ import annotations

import ast
import builtins
import csv
import hashlib
import io
import keyword
import os
import pkgutil
import tokenize
from dataclasses import dataclass
from pathlib import Path

K = 10  # tokens per hashed run
WINDOW = 5  # hashes per winnowing window
MIN_FINGERPRINTS = 8  # fewer than this: too little code to call it a copy
THRESHOLD = 0.6
KEPT_NAMES = set(keyword.kwlist) | set(dir(builtins))
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}


def tokens(source: str) -> list[str]:
    """The normalised token stream of Python ``source`` (notebook magics and shell lines dropped)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    text = "\n".join(lines) + "\n"
    out: list[str] = []
    try:
        stream = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return text.split()  # not Python: compare its words
    previous = tokenize.NEWLINE
    after_dot = False
    for tok in stream:
        if tok.type in SKIP:
            continue
        if tok.type == tokenize.STRING and previous == tokenize.NEWLINE:
            previous = "docstring"
            continue  # a docstring or a bare string statement
        if tok.type == tokenize.NEWLINE and previous == "docstring":
            previous = tokenize.NEWLINE
            continue
        if tok.type == tokenize.NAME:
            out.append(tok.string if after_dot or tok.string in KEPT_NAMES else "V")
        elif tok.type == tokenize.NUMBER:
            out.append("N")
        elif tok.type == tokenize.STRING:
            out.append("S")
        elif tok.type == tokenize.NEWLINE:
            out.append(";")
        else:
            out.append(tok.string)
        after_dot = tok.string == "."
        previous = tok.type
    return out


def fingerprints(source: str) -> set[int]:
    """Winnowed hashes of the K-token runs of ``source``."""
    stream = tokens(source)
    hashes = [int.from_bytes(hashlib.blake2b(" ".join(stream[i:i + K]).encode(), digest_size=8).digest(), "big")
              for i in range(len(stream) - K + 1)]
    if len(hashes) <= WINDOW:
        return set(hashes)
    kept = set()
    for start in range(len(hashes) - WINDOW + 1):
        window = hashes[start:start + WINDOW]
        kept.add(min(window))
    return kept


@dataclass
class Match:
    student: str
    other: str  # another student, or "solution:<notebook>" / "course_lib (<module>.<name>, ...)"
    kind: str  # "student" or "reference"
    similarity: float
    shared: int
    size: int  # fingerprints of the student's code


def reference_sources(names: set[str]) -> dict[str, str]:
    """``course_lib:<module>.<name>`` -> source of every course_lib function or class named in ``names``."""
    import course_lib

    found = {}
    root = Path(course_lib.__file__).parent
    for info in pkgutil.walk_packages([str(root)], prefix="course_lib."):
        path = root.joinpath(*info.name.split(".")[1:])
        path = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
        try:
            text = path.read_text()
            tree = ast.parse(text)
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in names:
                found[f"course_lib:{info.name.removeprefix('course_lib.')}.{node.name}"] = (
                    ast.get_source_segment(text, node) or "")
    return found


def compare(students: dict[str, str], references: dict[str, str], base: str,
            threshold: float = THRESHOLD) -> list[Match]:
    """Near-copies among ``students`` (id -> their code) and against ``references`` (name -> code)."""
    given = fingerprints(base)
    prints = {s: fingerprints(code) - given for s, code in students.items()}
    refs = {name: fingerprints(code) for name, code in references.items()}
    matches = []
    ids = sorted(prints)
    for i, a in enumerate(ids):
        for name, ref in refs.items():
            size = len(prints[a])
            shared = len(prints[a] & ref)
            if size >= MIN_FINGERPRINTS and shared / size >= threshold:
                matches.append(Match(a, name, "reference", shared / size, shared, size))
        for b in ids[i + 1:]:
            size = min(len(prints[a]), len(prints[b]))
            shared = len(prints[a] & prints[b])
            if size >= MIN_FINGERPRINTS and shared / size >= threshold:
                matches.append(Match(a, b, "student", shared / size, shared, size))
    return sorted(matches, key=lambda m: (-m.similarity, m.student, m.other))


def _student_code(nb, instructor: set[str]) -> str:
    """The code cells of ``nb`` that are not instructor cells, joined."""
    cells = [c.source for c in nb.cells if c.get("cell_type") == "code" and c.source.strip() not in instructor]
    return "\n\n".join(cells)


def similarity_report(root, assignment: str, folder: str | None = None, threshold: float = THRESHOLD,
                      db_url: str | None = None) -> tuple[str, list[Match]]:
    """Write ``similarity.csv`` for ``assignment`` of the course in ``root``; (its path, the matches)."""
    import nbformat
    from nbgrader.api import MissingEntry

    from .pool import GradingError, load_course, submissions
    from .prepare import load_source_info, read_notebook
    from .summary import csv_cell

    _, coursedir = load_course(root, db_url)
    try:
        infos = load_source_info(coursedir.db_url, assignment)
    except MissingEntry:
        raise GradingError(f"assignment {assignment!r} is not in the gradebook: run "
                           f"`nbgrader generate_assignment {assignment}` first") from None
    source_dir = coursedir.format_path(coursedir.source_directory, ".", assignment)
    instructor, given, references, names = set(), [], {}, set()
    for name, info in sorted(infos.items()):
        for cell in info.sources.values():
            given.append(cell["source"])
            if cell["locked"]:
                instructor.add(cell["source"].strip())
        names.update(info.student_names)
        solution = nbformat.read(os.path.join(source_dir, f"{name}.ipynb"), as_version=4)
        references[f"solution:{name}"] = "\n\n".join(
            c.source for c in solution.cells
            if c.get("cell_type") == "code" and c.metadata.get("nbgrader", {}).get("grade_id") in info.solutions)
    library = reference_sources(names)
    if library:
        references["course_lib (" + ", ".join(n.removeprefix("course_lib:") for n in sorted(library)) + ")"] = (
            "\n\n".join(library.values()))
    code = {}
    for student in submissions(coursedir, assignment, None):
        parts = []
        for name in sorted(infos):
            path = os.path.join(coursedir.format_path(coursedir.submitted_directory, student, assignment),
                                f"{name}.ipynb")
            try:
                parts.append(_student_code(read_notebook(path), instructor))
            except (ValueError, OSError):  # missing or malformed: nothing to compare
                continue
        code[student] = "\n\n".join(parts)
    matches = compare(code, references, "\n\n".join(given), threshold)
    folder = folder or os.path.join(coursedir.root, "reports", assignment)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "similarity.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "similar_to", "kind", "similarity", "shared_fingerprints",
                         "student_fingerprints"])
        for m in matches:
            writer.writerow([csv_cell(m.student), csv_cell(m.other), m.kind, f"{m.similarity:.2f}", m.shared,
                             m.size])
    return path, matches
