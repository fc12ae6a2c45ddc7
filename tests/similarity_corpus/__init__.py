"""A labelled corpus for the similarity report: honest answers and disguised copies, per assignment.

``a<assignment>.py`` (``a01_feedforward.py`` for ``assignments/source/01_feedforward``) defines ``HONEST``:
student -> {grade_id of a solution cell: the student's whole cell}. Each was written independently from the
released notebook's instructions, the way different students write (loops or vectorised, other names and
decomposition, other numpy calls, comments), and each scores full marks on its question with the in-process
checker (``tests/test_similarity.py::test_honest_answer_scores_full_marks``, slow).

:func:`copies` derives the copies from them by a fixed recipe: a whole answer of another student or of the
reference solution, or some of its cells inside the copier's own answer, disguised by :func:`disguise` --
renamed variables, independent statements reordered, reformatted, comments and no-op lines added. :func:`pairs`
labels every pair the report could list: ``copy`` (a copy and what it copied) or ``honest`` (two honest
answers, an honest answer and the reference, a copy and an answer it did not copy).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import random
import re
import tokenize
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[1] / "assignments" / "source"
REFERENCE = "reference"
NAMES = ["val", "tmp", "res", "arr", "acc", "buf", "item", "part", "cur", "nxt", "total", "work", "mat", "vec",
         "out_", "data", "aux", "z0", "q1", "w2", "k3", "m4", "elem", "chunk", "piece", "store", "temp2", "xs"]
COMMENTS = ["# compute this part", "# TODO check shapes", "# as in the lecture", "# step", "# helper",
            "# the main computation", "# see the chapter"]
NOOPS = ["pass", "_ = None", "assert True", "unused_{i} = 0"]


def assignments() -> list[str]:
    return sorted(path.stem[1:] for path in HERE.glob("a*.py"))


def honest(assignment: str) -> dict[str, dict[str, str]]:
    path = HERE / f"a{assignment}.py"
    spec = importlib.util.spec_from_file_location(f"similarity_corpus_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.HONEST


def _solution_cells(assignment: str) -> dict[str, str]:
    """grade_id -> source of the autograded solution cells (the manually graded ones are not in the corpus)."""
    nb = nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4)
    return {c.metadata.nbgrader.grade_id: c.source for c in nb.cells if c.cell_type == "code"
            and c.metadata.get("nbgrader", {}).get("solution") and not c.metadata.nbgrader.get("grade")}


def reference(assignment: str) -> dict[str, str]:
    """The solution cells without the solution markers."""
    return {gid: "\n".join(line for line in src.splitlines() if "### BEGIN SOLUTION" not in line
                           and "### END SOLUTION" not in line) for gid, src in _solution_cells(assignment).items()}


def released(assignment: str) -> str:
    """The released stubs of the solution cells, as nbgrader writes them."""
    stub = r"\1# YOUR CODE HERE\n\1raise NotImplementedError()"
    return "\n\n".join(re.sub(r"( *)### BEGIN SOLUTION.*?### END SOLUTION", stub, src, flags=re.S)
                       for src in _solution_cells(assignment).values())


def notebook(cells: dict[str, str], assignment: str) -> str:
    """A student's code as the report reads it: the answered cells, in the notebook's order."""
    order = list(_solution_cells(assignment))
    return "\n\n".join(cells[gid] for gid in order if gid in cells)


# -- disguises ------------------------------------------------------------------------------------------------

def _locals(tree: ast.AST) -> set[str]:
    """Names a copier may rename: parameters without defaults, assigned names, loop and comprehension targets."""
    names: set[str] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.Lambda)):
            args = fn.args.posonlyargs + fn.args.args
            names |= {a.arg for a in args[:len(args) - len(fn.args.defaults)]}
            for node in ast.walk(fn):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
                elif isinstance(node, ast.FunctionDef) and node is not fn:
                    names.add(node.name)
    return names - {"self", "_"}


def rename(source: str, rng: random.Random) -> str:
    """Every local name replaced by another one, formatting kept (keyword arguments and attributes untouched)."""
    pool = [n for n in NAMES]
    rng.shuffle(pool)
    mapping = {old: f"{pool[i % len(pool)]}{'' if i < len(pool) else i}"
               for i, old in enumerate(sorted(_locals(ast.parse(source))))}
    toks = list(tokenize.generate_tokens(io.StringIO(source).readline))
    out, depth = [], 0
    for i, tok in enumerate(toks):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        keyword_arg = depth > 0 and i + 1 < len(toks) and toks[i + 1].string == "=" and toks[i - 1].string in "(,"
        if (tok.type == tokenize.NAME and tok.string in mapping and not keyword_arg
                and not (i and toks[i - 1].string == ".")):
            tok = tok._replace(string=mapping[tok.string])
        out.append(tok)
    return tokenize.untokenize(out)


def _names(node: ast.AST) -> tuple[set[str], set[str], bool]:
    """(names read, names written, whether the statement must keep its place) of a simple statement."""
    read, written, barrier = set(), set(), False
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (written if isinstance(n.ctx, ast.Store) else read).add(n.id)
        elif isinstance(n, ast.Call):
            if isinstance(n.func, ast.Name) and n.func.id not in {"len", "range", "float", "int", "max", "min",
                                                                  "sum", "tuple", "list", "zip", "dict", "abs"}:
                barrier = True
            elif isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) and \
                    n.func.value.id not in {"np", "torch", "nn"}:
                written.add(n.func.value.id)  # a method may change its object
        elif isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, ast.Store):
            base = n
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                written.add(base.id)
    return read, written, barrier or not isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr))


def reorder(source: str, rng: random.Random, passes: int = 3) -> str:
    """Swaps adjacent statements of a block that do not depend on each other (each on lines of its own)."""
    lines = source.splitlines()
    for _ in range(passes):
        tree = ast.parse("\n".join(lines))
        swaps = []
        for block in ast.walk(tree):
            body = getattr(block, "body", None)
            if not isinstance(body, list):
                continue
            for a, b in zip(body, body[1:], strict=False):
                ra, wa, xa = _names(a)
                rb, wb, xb = _names(b)
                if xa or xb or wa & (rb | wb) or wb & ra or a.end_lineno >= b.lineno:
                    continue
                if isinstance(a, ast.Expr) and isinstance(a.value, ast.Constant):
                    continue  # a docstring stays first
                swaps.append((a.lineno - 1, a.end_lineno, b.lineno - 1, b.end_lineno))
        rng.shuffle(swaps)
        done: set[int] = set()
        for a0, a1, b0, b1 in sorted(swaps[:max(1, len(swaps) // 2)], reverse=True):
            if done & set(range(a0, b1)) or a1 != b0:
                continue
            lines[a0:b1] = lines[b0:b1] + lines[a0:a1]
            done |= set(range(a0, b1))
    return "\n".join(lines) + "\n"


def insert_lines(source: str, rng: random.Random, choices: list[str], share: float) -> str:
    """Inserts lines chosen from ``choices`` before about ``share`` of the statements inside functions."""
    tree = ast.parse(source)
    starts = {}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.stmt) and node is not fn and node.col_offset > 0:
                    starts.setdefault(node.lineno - 1, node.col_offset)
    lines = source.splitlines()
    for i, (line, indent) in enumerate(sorted(starts.items(), reverse=True)):
        if rng.random() < share and lines[line][:indent].strip() == "" and not lines[line].lstrip().startswith(
                ("elif", "else", "except", "finally")):
            text = rng.choice(choices).format(i=i)
            lines.insert(line, " " * indent + text)
    return "\n".join(lines) + "\n"


def disguise(source: str, seed: int, level: str) -> str:
    """``light``: renamed, comments added; ``medium``: also reordered, no-op lines; ``heavy``: also reformatted
    (``ast.unparse``: other quotes, spacing and line breaks)."""
    rng = random.Random(seed)
    out = rename(source, rng)
    if level in ("medium", "heavy"):
        out = reorder(out, rng)
    if level == "heavy":
        out = ast.unparse(ast.parse(out)) + "\n"
    if level in ("medium", "heavy"):
        out = insert_lines(out, rng, NOOPS, 0.3)
    return insert_lines(out, rng, COMMENTS, 0.25)


def copies(assignment: str) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """copier -> (their cells, grade_id -> whose work the cell is): whole answers at three levels of disguise,
    the reference lightly and heavily disguised, and two partial copies (the longer half of the cells, heavily
    disguised, in an otherwise honest answer)."""
    answers = dict(honest(assignment), **{REFERENCE: reference(assignment)})
    s = sorted(honest(assignment))
    plans = [(f"copy_{s[0]}", s[0], "light", None), (f"copy_{s[1]}", s[1], "medium", None),
             (f"copy_{s[2]}", s[2], "heavy", None), ("copy_ref_light", REFERENCE, "light", None),
             ("copy_ref_heavy", REFERENCE, "heavy", None), (f"part_{s[1]}_from_{s[0]}", s[0], "heavy", s[1]),
             (f"part_{s[2]}_from_ref", REFERENCE, "heavy", s[2])]
    out = {}
    for k, (name, source, level, own) in enumerate(plans):
        cells = answers[source]
        copied = set(cells)
        if own is not None:  # the longer half of the cells copied, the others the copier's own
            copied = set(sorted(cells, key=lambda gid: -len(cells[gid]))[:max(1, len(cells) // 2)])
            cells = {gid: (cells[gid] if gid in copied else answers[own][gid]) for gid in answers[own]}
        out[name] = ({gid: disguise(src, 1000 * k + j, level) if gid in copied else src
                      for j, (gid, src) in enumerate(cells.items())},
                     {gid: source if gid in copied else own for gid in cells})
    return out


def answers(assignment: str) -> dict[str, dict[str, str]]:
    """Everyone's cells: honest students, copiers and the reference."""
    return dict(honest(assignment), **{n: cells for n, (cells, _) in copies(assignment).items()},
                **{REFERENCE: reference(assignment)})


def pairs(assignment: str) -> list[tuple[str, str, str]]:
    """(a, b, label) for every pair of answers: ``copy`` when some cell of both is the same person's work (a
    copy and what it copied, two copies of the same answer), else ``honest``; a partial copier's own cells are
    theirs, so a partial copier and the honest answer that is their other half are not a pair."""
    origin = {name: {gid: name for gid in cells} for name, cells in honest(assignment).items()}
    origin[REFERENCE] = {gid: REFERENCE for gid in reference(assignment)}
    origin.update({name: who for name, (_, who) in copies(assignment).items()})
    names = sorted(origin)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if a.startswith("part_") and a.split("_")[1] == b or b.startswith("part_") and b.split("_")[1] == a:
                continue
            same = any(origin[a][g] == origin[b].get(g) for g in origin[a])
            out.append((a, b, "copy" if same else "honest"))
    return out


def measure(assignment: str, **options) -> dict:
    """Every labelled pair of the corpus scored by :mod:`course_lib.grading.similarity` as the report scores it
    (the references: the solution notebook and the course_lib functions of the same names), with ``options``
    handed to ``compare`` (by default every pair is returned). Returns ``pairs``: [(a, b, label, group,
    similarity, shared, flagged)], group one of ``honest-honest``, ``honest-reference`` (an honest answer and
    the solution or course_lib), ``copy`` and ``other`` (a copy and an answer it did not copy); ``too_short``."""
    from course_lib.grading import similarity as sim

    everyone = answers(assignment)
    base = released(assignment)
    solution = notebook(everyone.pop(REFERENCE), assignment)
    names = {node.name for node in ast.parse(solution).body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    library = sim.reference_sources(names)
    references = {REFERENCE: solution, "course_lib": "\n\n".join(library.values())}
    skip = set(sim.too_short(solution, base))
    options = {"skip": skip, "everything": True, **options}
    found = {frozenset((m.student, m.other)): m for m in sim.compare(
        {name: notebook(cells, assignment) for name, cells in everyone.items()}, references, base, **options)}
    honest_ids = set(honest(assignment))
    labelled = pairs(assignment) + [(a, "course_lib", "honest") for a in sorted(honest_ids)]
    out = []
    for a, b, label in labelled:
        m = found.get(frozenset((a, b)))
        if label == "copy":
            group = "copy"
        elif {a, b} <= honest_ids:
            group = "honest-honest"
        elif {a, b} & honest_ids and {a, b} & {REFERENCE, "course_lib"}:
            group = "honest-reference"
        else:
            group = "other"
        out.append((a, b, label, group, m.similarity if m else 0.0, m.shared if m else 0, bool(m and m.flagged)))
    return {"pairs": out, "too_short": sorted(skip)}
