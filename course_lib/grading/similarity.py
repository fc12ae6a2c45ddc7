"""Copying made visible: which submissions' own code is a near-copy of another's, or of the reference code.

``python -m course_lib.grading similarity ASSIGNMENT`` (in the course directory; ``autograde`` writes the same
report) compares the code each student wrote -- every code cell of the submitted notebooks that is not one of
the instructor's cells -- with every other submission and with two references: the assignment's solution
(``source/``) and the functions of ``course_lib`` that the solution cells define (same names). It writes
``reports/<assignment>/similarity.csv`` for the instructor to review and changes no score.

The method is document fingerprinting by winnowing, in the spirit of MOSS (Schleimer, Wilkerson and Aiken,
"Winnowing: local algorithms for document fingerprinting", SIGMOD 2003), on a canonical form of the code:

1. each top-level function or class is a unit, compared only with the unit of the same name (the other
   top-level code is one unit); :func:`canonical` drops comments, docstrings, formatting and no-op lines
   (``pass``, ``x = x``, ``assert True``, ``if False:``, a constant stored in a name never read) and puts the
   independent statements of each block in one order (the dependencies are the names read and written);
2. it is tokenized and normalised: every identifier becomes ``V`` (so renaming changes nothing), except
   keywords, builtins, attribute names and keyword arguments (``.sum``, ``axis=``: they carry the method);
   numbers become ``N``, strings ``S``;
3. each run of :data:`K` tokens is hashed and, in each window of :data:`WINDOW` hashes, the smallest kept;
   the released notebook's fingerprints (what every student was given) are removed from each unit;
4. a unit's similarity is the share of the smaller unit's fingerprints the other has (against a reference:
   of the student's unit); a pair's **similarity** is the same share over the units both define with at least
   :data:`MIN_UNIT` fingerprints: 0.6 means that 60 % of the comparable code of the smaller answer is, after
   renaming, reordering and reformatting, token for token in the other.

**What a score means, measured** (``benchmarks/bench_similarity.py`` on ``tests/similarity_corpus``: per
assignment, 3 honest answers (4 for 07) written independently from the released notebooks, each scoring full
marks, and 7 copies of them or of the solution -- renamed, reordered, reformatted, with comments and no-op lines;
2 of the 7 copy only the longer half of the cells): honest answers score 0.03-0.31 against each other and 0.00-0.35
against the solution or course_lib, and no pair that is not a copy exceeds 0.44; whole copies score 0.99-1.00,
partial copies 0.26-0.81. One function alone separates better: honest functions reach at most 0.77 (a
canonical ``for t in range(T)`` loop), copied ones at least 0.99. Before this canonical form (tokens of the whole
notebook) the corpus of 01-06 gave honest pairs up to 0.39 and copies 0.16-1.00: 31 of 78 copies found.

**The rule** (:func:`compare`): a pair is listed when a function of at least :data:`MIN_UNIT` fingerprints is
a near-copy on its own (:data:`UNIT_THRESHOLD`, column ``copied_functions``), or when its similarity is at least
the threshold (:data:`THRESHOLD`) with at least :data:`MIN_SHARED` fingerprints in common. On the corpus: 91 of
91 copies listed, 0 of 313 honest pairs (precision and recall 1.00 for every assignment). Functions whose
solution has fewer than :data:`MIN_UNIT` fingerprints of its own (``out = x @ W + b``; 01's affine layers, 02's
``rnn_step_forward``, 05's ``tokenize``) are too short to tell a copy from an honest answer: they are not
compared, and ``similarity.csv`` says so in a row of kind ``too short to tell`` (for the whole assignment
when no function is long enough, and then no pair is listed). Code rewritten by hand (other control flow,
other library calls) is not a near-copy and is not found; three or four honest answers per assignment cannot show the
rare honest coincidence of a large class, so a listed pair is for the instructor to review, never a verdict.
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
UNIT_THRESHOLD = 0.9  # a function at least this similar on its own is a copied function
MIN_UNIT = 16  # a function with fewer fingerprints of its own is too short to tell a copy from an honest answer
MIN_SHARED = 8  # fewer shared fingerprints than this: too little code to call it a copy
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
    depth = 0
    stream = [tok for tok in stream if tok.type not in SKIP]
    for i, tok in enumerate(stream):
        depth += tok.string in "([{" if tok.type == tokenize.OP else 0
        depth -= tok.string in ")]}" if tok.type == tokenize.OP else 0
        keyword_arg = depth > 0 and i + 1 < len(stream) and stream[i + 1].string == "="
        if tok.type == tokenize.STRING and previous == tokenize.NEWLINE:
            previous = "docstring"
            continue  # a docstring or a bare string statement
        if tok.type == tokenize.NEWLINE and previous == "docstring":
            previous = tokenize.NEWLINE
            continue
        if tok.type == tokenize.NAME:
            out.append(tok.string if after_dot or keyword_arg or tok.string in KEPT_NAMES else "V")
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


def _winnow(stream: list[str]) -> set[int]:
    """Winnowed hashes of the K-token runs of a token stream."""
    hashes = [int.from_bytes(hashlib.blake2b(" ".join(stream[i:i + K]).encode(), digest_size=8).digest(), "big")
              for i in range(len(stream) - K + 1)]
    if len(hashes) <= WINDOW:
        return set(hashes)
    return {min(hashes[start:start + WINDOW]) for start in range(len(hashes) - WINDOW + 1)}


def fingerprints(source: str) -> set[int]:
    """Winnowed hashes of the K-token runs of ``source``, all of its units together, after :func:`canonical`."""
    return set().union(*_prints(source).values())


# -- canonical form: what a disguise does not change -----------------------------------------------------------

PURE_CALLS = {"len", "range", "float", "int", "max", "min", "sum", "tuple", "list", "zip", "dict", "abs",
              "enumerate", "reversed", "sorted", "bool", "str", "set", "map", "isinstance", "round"}


MUTATORS = {"append", "extend", "insert", "update", "pop", "remove", "add", "fill", "sort", "setdefault", "clear",
            "iternext", "backward", "step", "zero_grad", "put", "resize"}


def _effects(node: ast.AST) -> tuple[set[str], set[str], bool]:
    """(names read, names written, whether it must keep its place) of a statement: a compound statement, a
    return or a call of a function of the notebook keeps its place; a method that changes its object
    (:data:`MUTATORS`, ``name_``, or any called as a statement of its own) writes the object."""
    read, written = set(), set()
    fixed = not isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr))
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (written if isinstance(n.ctx, ast.Store) else read).add(n.id)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id not in PURE_CALLS:
            fixed = True
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and (
                n.func.attr in MUTATORS or n.func.attr.endswith("_") or isinstance(node, ast.Expr)) or (
                isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, ast.Store)):
            base = n.func.value if isinstance(n, ast.Call) else n.value
            while isinstance(base, (ast.Subscript, ast.Attribute, ast.Call)):
                base = base.func if isinstance(base, ast.Call) else base.value
            if isinstance(base, ast.Name) and base.id not in {"np", "torch", "nn", "math"}:
                written.add(base.id)
    return read, written, fixed


def _no_op(node: ast.stmt, loaded: set[str]) -> bool:
    """A statement that changes nothing: ``pass``, a bare constant or name (docstrings too), ``assert True``,
    ``x = x``, or a constant stored in a name that is never read."""
    if isinstance(node, ast.Pass) or isinstance(node, ast.Expr) and isinstance(node.value, (ast.Constant, ast.Name)):
        return True
    if isinstance(node, ast.Assert) and isinstance(node.test, ast.Constant) and node.test.value:
        return True
    if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
        same = isinstance(node.value, ast.Name) and all(t.id == node.value.id for t in node.targets)
        dead = isinstance(node.value, ast.Constant) and not any(t.id in loaded for t in node.targets)
        return same or dead
    return False


def _canonical_block(body: list[ast.stmt], loaded: set[str]) -> list[ast.stmt]:
    """The statements of a block without no-ops, nested blocks canonical too, in a canonical order: among the
    statements whose dependencies are placed, the one with the smallest normalised text goes first, so two
    orders of independent statements give one text."""
    kept = []
    for node in body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Constant):  # ``if False:`` and friends
            kept += _canonical_block(node.body if node.test.value else node.orelse, loaded)
        elif not _no_op(node, loaded):
            for field in ("body", "orelse", "finalbody"):
                if isinstance(getattr(node, field, None), list) and getattr(node, field):
                    setattr(node, field, _canonical_block(getattr(node, field), loaded) or [ast.Pass()])
            kept.append(node)
    effects = [_effects(node) for node in kept]
    keys = [" ".join(tokens(ast.unparse(node))) for node in kept]
    after = [{i for i in range(j) if effects[i][2] or effects[j][2] or effects[i][1] & (effects[j][0] | effects[j][1])
              or effects[j][1] & effects[i][0]} for j in range(len(kept))]
    order: list[int] = []
    while len(order) < len(kept):
        ready = [j for j in range(len(kept)) if j not in order and after[j] <= set(order)]
        order.append(min(ready, key=lambda j: (keys[j], j)))
    return [kept[j] for j in order]


def canonical(source: str) -> dict[str, list[str]]:
    """Unit name -> normalised tokens of its canonical form: each top-level function or class of ``source`` is a
    unit (named by its name), the other top-level code is the unit ``<module>``. Comments, docstrings, no-op
    lines and formatting go, independent statements get one order, then :func:`tokens` renames every name.
    Code that does not parse is compared by its tokens as one unit ``<unparsed>``."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except (SyntaxError, ValueError):
        return {"<unparsed>": tokens(source)} if source.strip() else {}
    units: dict[str, list[ast.stmt]] = {}
    for node in tree.body:
        named = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        units.setdefault(node.name if named else "<module>", []).append(node)
    out = {}
    for name, nodes in units.items():
        loaded = {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)
                  and not isinstance(n.ctx, ast.Store)}
        body = _canonical_block(nodes, loaded)
        if body:
            out[name] = tokens(ast.unparse(ast.Module(body=body, type_ignores=[])))
    return out


def _prints(source: str) -> dict[str, set[int]]:
    return {name: _winnow(stream) for name, stream in canonical(source).items()}


@dataclass
class Match:
    student: str
    other: str  # another student, or "solution:<notebook>" / "course_lib (<module>.<name>, ...)"
    kind: str  # "student" or "reference"
    similarity: float
    shared: int
    size: int  # fingerprints of the student's code in the units compared
    copied: str = ""  # the functions that are near-copies on their own (similarity >= UNIT_THRESHOLD)
    flagged: bool = True  # False: returned by ``compare(..., everything=True)`` only


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


def too_short(solution: str, base: str) -> list[str]:
    """The units of the solution with fewer than MIN_UNIT fingerprints of their own (beyond the released stubs):
    honest answers to them are as alike as copies, so they are not compared."""
    given = _prints(base)
    return sorted(name for name, prints in _prints(solution).items()
                  if len(prints - given.get(name, set())) < MIN_UNIT)


def _score(a: dict[str, set[int]], b: dict[str, set[int]], skip: set[str], reference: bool
           ) -> tuple[int, int, list[str]]:
    """(shared, size, copied units) over the units both define with at least MIN_UNIT fingerprints each, not
    in ``skip``; a unit is copied when its own similarity is at least UNIT_THRESHOLD."""
    shared = size = 0
    copied = []
    for name in sorted(set(a) & set(b) - skip):
        if min(len(a[name]), len(b[name])) < MIN_UNIT:
            continue
        common = len(a[name] & b[name])
        unit = len(a[name]) if reference else min(len(a[name]), len(b[name]))
        shared, size = shared + common, size + unit
        if common >= UNIT_THRESHOLD * unit:
            copied.append(name)
    return shared, size, copied


def compare(students: dict[str, str], references: dict[str, str], base: str, threshold: float = THRESHOLD,
            min_shared: int = MIN_SHARED, skip: set[str] = frozenset(), everything: bool = False) -> list[Match]:
    """Near-copies among ``students`` (id -> their code) and against ``references`` (name -> code): pairs with
    a copied function (:func:`_score`), or whose similarity is at least ``threshold`` with at least
    ``min_shared`` fingerprints in common. ``skip``: units not compared (:func:`too_short`); ``everything``:
    every pair with something to compare, flagged or not (for calibration)."""
    given = _prints(base)
    prints = {s: {name: p - given.get(name, set()) for name, p in _prints(code).items()}
              for s, code in students.items()}
    refs = {name: _prints(code) for name, code in references.items()}
    matches = []

    def add(a, other, kind, b):
        shared, size, copied = _score(prints[a], b, set(skip), kind == "reference")
        flagged = bool(copied) or shared >= min_shared and shared / max(size, 1) >= threshold
        if size and (everything or flagged):
            matches.append(Match(a, other, kind, shared / size, shared, size, " ".join(copied), flagged))

    ids = sorted(prints)
    for i, a in enumerate(ids):
        for name, ref in refs.items():
            add(a, name, "reference", ref)
        for b in ids[i + 1:]:
            add(a, b, "student", prints[b])
    return sorted(matches, key=lambda m: (-bool(m.copied), -m.similarity, m.student, m.other))


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
    base = "\n\n".join(given)
    solutions = "\n\n".join(v for k, v in references.items() if k.startswith("solution:"))
    short = too_short(solutions, base)
    matches = compare(code, references, base, threshold, skip=set(short))
    folder = folder or os.path.join(coursedir.root, "reports", assignment)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "similarity.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "similar_to", "kind", "similarity", "shared_fingerprints",
                         "student_fingerprints", "copied_functions"])
        for m in matches:
            writer.writerow([csv_cell(m.student), csv_cell(m.other), m.kind, f"{m.similarity:.2f}", m.shared,
                             m.size, m.copied])
        if short:  # said, not silently left out
            whole = not set(canonical(solutions)) - set(short)
            writer.writerow(["", " ".join(short), "too short to tell: the whole assignment, no pair is listed"
                             if whole else "too short to tell: these functions are not compared", "", "", "", ""])
    return path, matches
