"""What the book prints, and a submission assembled from it (the helpers of :mod:`test_book_copy`).

"Printed" is every code cell's source of an executed chapter and every listing its cells output: the
``text/plain`` and ``text/html`` of a displayed object (``course_lib.plotting.show_source``), and printed
streams. :func:`definitions` finds every ``def``/``class`` in them (methods too, with their indentation), and
:func:`answer_cell` pastes the ones an assignment's answer cell needs, with the glue a student would write:

* the names the pasted code uses and neither it nor the notebook binds (a helper such as ``_take``, a constant
  such as ``PAD``, an import such as ``Counter``): a printed definition if the book has one, else the binding
  from course_lib's own source, which a student who copies would write in (reported as ``helpers``);
* per assignment, :data:`ALIASES`: a printed definition under another name or signature (``Vocabulary.build``
  for ``build_vocab``) and the few lines that adapt it.
"""

from __future__ import annotations

import ast
import builtins
import html
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
COURSE_LIB = ROOT / "course_lib"
HEADER = re.compile(r"^(\s*)(?:async\s+)?(def|class)\s+(\w+)")


@dataclass
class Definition:
    """A ``def``/``class`` found in the book's printed code."""

    name: str
    code: str  # as printed (a method keeps its indentation)
    where: str  # chapter, cell and part: "lstm cell 9 (output text/plain)"


@dataclass
class Answer:
    """A book name (or several, in the order they are pasted) that answers a solution cell, and the glue."""

    names: list[str]
    before: str = ""  # glue pasted before the definitions (a class header for a method: indent 4)
    after: str = ""  # glue after them (a wrapper with the assignment's name and signature)


@dataclass
class Pasted:
    source: str
    where: list[str] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)


# A printed definition under another name or signature, per assignment and answer cell, and its glue: what a
# student who copies would write. Answers whose solution cell defines the same name need no entry.
ALIASES: dict[str, dict[str, Answer]] = {
    "03_vanishing_gradients": {
        "hidden_grad_norms": Answer(["hidden_state_grads"], after=(
            "def hidden_grad_norms(dh, h, Wh):\n"
            "    g = hidden_state_grads(dh, (None, None, None, Wh, h))\n"
            "    return np.sqrt(np.sum(g * g, axis=(0, 2)))\n")),
    },
    "04_lstm": {
        "lstm_sequence": Answer(["lstm_forward", "lstm_backward"], after=(
            "def lstm_sequence_forward(x, h0, c0, Wx, Wh, b):\n"
            "    h, c, cache = lstm_forward(x, h0, c0, Wx, Wh, b)\n"
            "    return h, cache\n\n\n"
            "def lstm_sequence_backward(dh, caches):\n"
            "    dx, dh0, dc0, dWx, dWh, db = lstm_backward(dh, caches)\n"
            "    return dx, dh0, dc0, dWx, dWh, db\n")),
    },
    "05_imdb_sentiment": {
        "build_vocab": Answer(["build"], before=(
            "class Vocabulary:\n"
            "    def __init__(self, itos, counts=None):\n"
            "        self.itos = list(itos)\n\n"), after=(
            "def build_vocab(token_lists, max_size):\n"
            "    return {w: i for i, w in enumerate(Vocabulary.build(token_lists, max_size).itos)}\n")),
        "encode_batch": Answer(["pad_batch"], after=(
            "def encode_batch(token_lists, vocab, max_len):\n"
            "    return pad_batch([[vocab.get(t, 1) for t in tokens] for tokens in token_lists], max_len)\n")),
        "classifier": Answer(["SentimentRNN"], after="SentimentClassifier = SentimentRNN\n"),
    },
    "06_seq2seq": {
        "corpus_bleu": Answer(["corpus_bleu"], before="", after=(
            "_book_corpus_bleu = corpus_bleu\n\n\n"
            "def corpus_bleu(hypotheses, references, max_n=4):\n"
            "    return float(_book_corpus_bleu(hypotheses, references, max_n)['bleu'])\n")),
    },
    # course_lib.attention's pair takes a boolean mask and caches the scale too; course_lib.scan's parallel_scan
    # is the scan under another name
    "07_after_attention": {
        "attention_forward": Answer(["attention_forward"], after=(
            "_book_attention_forward = attention_forward\n\n\n"
            "def attention_forward(q, k, v, causal):\n"
            "    mask = causal_mask(q.shape[1], k.shape[1]) if causal else None\n"
            "    out, cache = _book_attention_forward(q, k, v, mask)\n"
            "    return out, tuple(cache[:4])\n")),
        "attention_backward": Answer(["attention_backward"], after=(
            "_book_attention_backward = attention_backward\n\n\n"
            "def attention_backward(dout, cache):\n"
            "    q, k, v, A = cache\n"
            "    return _book_attention_backward(dout, (q, k, v, A, 1 / np.sqrt(q.shape[-1])))\n")),
        "scan_forward": Answer(["parallel_scan"], after=(
            "def scan_forward(a, b):\n"
            "    return parallel_scan(a, b)\n")),
    },
}


def chapters() -> list[str]:
    """The chapters of the table of contents (book/<name>), intro and references left out."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [Path(f).name for f in files if Path(f).name not in ("intro", "references")]


def _texts(cell) -> list[tuple[str, str]]:
    """(part, text) of everything a cell shows: its source and its outputs' listings."""
    found = [("source", cell.source)]
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            found.append((f"output {out.get('name')}", out.get("text", "")))
        data = out.get("data", {})
        if "text/plain" in data:
            found.append(("output text/plain", data["text/plain"]))
        if "text/html" in data:
            text = re.sub(r"<style.*?</style>", "", data["text/html"], flags=re.S | re.I)
            text = re.sub(r"<br\s*/?>", "\n", text, flags=re.I)
            found.append(("output text/html", html.unescape(re.sub(r"<[^>]+>", "", text))))
    return found


def printed(executed: Path, names: list[str]) -> list[tuple[str, str]]:
    """(where, text) of every printed piece of code of the executed chapters ``names``, in book order."""
    pieces = []
    for name in names:
        nb = nbformat.read(executed / f"{name}.ipynb", as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                pieces += [(f"{name} cell {i} ({part})", text) for part, text in _texts(cell)]
    return pieces


def _blocks(text: str):
    """Every def/class block of ``text``: (name, block with its indentation)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = HEADER.match(line)
        if not match:
            continue
        indent = len(match.group(1))
        start = i
        while start > 0 and lines[start - 1].strip().startswith("@") and \
                len(lines[start - 1]) - len(lines[start - 1].lstrip()) == indent:
            start -= 1
        depth, end = 0, i
        while end < len(lines):  # the header, over as many lines as its brackets take
            depth += sum(lines[end].count(c) for c in "([{") - sum(lines[end].count(c) for c in ")]}")
            end += 1
            if depth <= 0 and lines[end - 1].rstrip().endswith(":"):
                break
        while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
            end += 1
        block = "\n".join(lines[start:end]).rstrip() + "\n"
        try:
            ast.parse(textwrap.dedent(block))
        except SyntaxError:
            continue
        yield match.group(3), block


def definitions(pieces: list[tuple[str, str]]) -> dict[str, list[Definition]]:
    """name -> every printed definition of that name (identical code counted once), in book order."""
    found: dict[str, list[Definition]] = {}
    for where, text in pieces:
        for name, block in _blocks(text):
            if not any(d.code == block for d in found.get(name, [])):
                found.setdefault(name, []).append(Definition(name, block, where))
    return found


class _Names(ast.NodeVisitor):
    """Names a piece of code loads and binds (annotations skipped: pasted under ``from __future__``)."""

    def __init__(self):
        self.loaded, self.bound = set(), set()

    def visit_Name(self, node):
        (self.loaded if isinstance(node.ctx, ast.Load) else self.bound).add(node.id)

    def visit_arg(self, node):
        self.bound.add(node.arg)

    def _function(self, node):
        self.bound.add(node.name)
        for d in node.decorator_list:
            self.visit(d)
        self.visit(node.args)
        for stmt in node.body:
            self.visit(stmt)

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_arguments(self, node):
        for a in node.posonlyargs + node.args + node.kwonlyargs + [node.vararg, node.kwarg]:
            if a is not None:
                self.bound.add(a.arg)
        for d in node.defaults + [d for d in node.kw_defaults if d is not None]:
            self.visit(d)

    def visit_ClassDef(self, node):
        self.bound.add(node.name)
        for n in node.bases + node.decorator_list:
            self.visit(n)
        for stmt in node.body:
            self.visit(stmt)

    def visit_AnnAssign(self, node):
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_Import(self, node):
        self.bound.update((a.asname or a.name).split(".")[0] for a in node.names)

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node):
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)


def free_names(code: str) -> set[str]:
    names = _Names()
    names.visit(ast.parse(code))
    return names.loaded - names.bound - set(dir(builtins))


def bound_names(code: str) -> set[str]:
    """Names bound at the top level of ``code`` (IPython magics dropped)."""
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    names = _Names()
    for stmt in ast.parse(code).body:
        names.visit(stmt)
    return names.bound


def course_lib_binding(name: str) -> str | None:
    """The top-level statement of a course_lib module that binds ``name`` (a def, class, constant or import)."""
    for path in sorted(COURSE_LIB.glob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
                return "\n".join(text.splitlines()[start:node.end_lineno]) + "\n"
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [n for t in targets for n in ([t] if isinstance(t, ast.Name) else getattr(t, "elts", []))]
                if any(isinstance(n, ast.Name) and n.id == name for n in names):
                    return ast.get_source_segment(text, node) + "\n"
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not (  # course_lib's own: found where defined
                    isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("course_lib"))):
                if any((a.asname or a.name).split(".")[0] == name for a in node.names):
                    return ast.get_source_segment(text, node) + "\n"
    return None


def answer_cell(gid: str, defined: list[str], book: dict[str, list[Definition]], known: set[str],
                alias: Answer | None) -> Pasted | None:
    """The answer cell ``gid`` pasted from the book (None: the book prints none of its names).

    ``defined``: the names the solution cell defines; ``known``: the names the notebook binds elsewhere."""
    answer = alias or Answer(defined)
    chosen = [book[n][0] for n in answer.names if n in book]
    if not chosen:
        return None
    body = answer.before + "\n".join(d.code if answer.before else textwrap.dedent(d.code) for d in chosen)
    body += "\n\n" + answer.after if answer.after else ""
    helpers: list[str] = []
    helper_code: list[str] = []
    missing = sorted(free_names(textwrap.dedent(body)) - known)
    seen = set(missing)
    while missing:  # helpers, and the helpers those use
        name = missing.pop(0)
        if name in book:
            code, origin = textwrap.dedent(book[name][0].code), book[name][0].where
        else:
            code, origin = course_lib_binding(name), "course_lib (not printed)"
        if code is None:
            helpers.append(f"{name}: found nowhere")
            continue
        helpers.append(f"{name} from {origin}")
        if code not in helper_code:  # PAD and UNK: one statement
            helper_code.insert(0, code)
        for more in sorted(free_names(code) - known - seen):
            seen.add(more)
            missing.append(more)
    stubs = [f"def {n}(*args, **kwargs):\n    raise NotImplementedError()\n" for n in defined
             if n not in bound_names(textwrap.dedent(body))]
    source = "from __future__ import annotations\n\n" + "\n".join(helper_code + [body] + stubs)
    return Pasted(source, [d.where for d in chosen], helpers)
