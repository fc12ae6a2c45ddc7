"""Display helpers shared by the chapters: figures (matplotlib) and highlighted source listings.

Plotting functions draw on an ``Axes`` they are given and return it.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable, Sequence

import numpy as np


class SourceListing:
    """What :func:`show_source` returns: a docstring rendered as Markdown, then the code without it.

    Jupyter and the book (myst-nb, ``nb_render_markdown_format: myst``) display it through
    ``_repr_markdown_``: the docstring, as a block quote, with its math typeset, then the highlighted code.
    ``doc`` is the docstring's Markdown, ``code`` the source without docstrings, ``name`` the qualified name.
    """

    def __init__(self, name: str, doc: str, code: str):
        self.name, self.doc, self.code = name, doc, code

    def _repr_markdown_(self) -> str:
        fence = "````" if "```" in self.code else "```"
        quoted = "\n".join(f"> {line}" if line else ">" for line in self.doc.splitlines())
        code = f"{fence}python\n{self.code.rstrip()}\n{fence}\n"
        return f"{quoted}\n\n{code}" if self.doc else code

    def __repr__(self) -> str:
        return self.code


def show_source(obj, doc: bool = True) -> SourceListing:
    """The source of a course_lib function, method or class, for a notebook or the book.

    The docstring is rendered as text and math (reST roles, ``.. math::`` blocks and Args/Returns sections
    become Markdown, see :func:`rst_to_markdown`), followed by the highlighted code without its docstring. The
    docstrings of nested methods become a ``#`` comment with their first line. ``doc=False`` leaves the
    docstring out (for a page whose prose already says what it says).
    """
    code = textwrap.dedent(inspect.getsource(obj))
    text = inspect.getdoc(obj) if doc and obj.__doc__ else None
    return SourceListing(obj.__qualname__, rst_to_markdown(text) if text else "", _strip_docstrings(code))


def _strip_docstrings(code: str) -> str:
    """``code`` without the docstring of its outer definition; nested docstrings shrink to a comment."""
    tree = ast.parse(code)
    lines = code.splitlines()
    cuts = []  # (first line, last line, replacement lines), 0-based inclusive
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or not node.body:
            continue
        first = node.body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            continue
        start, end = first.lineno - 1, first.end_lineno - 1
        if start == node.lineno - 1:  # ``def f(): "doc"`` on one line: leave it
            continue
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        keep = [] if node is tree.body[0] else [f"{indent}# {_first_line(first.value.value)}"]
        if len(node.body) == 1:
            keep.append(f"{indent}...")
        cuts.append((start, end, keep))
    for start, end, keep in sorted(cuts, reverse=True):
        lines[start : end + 1] = keep
    return "\n".join(lines).rstrip() + "\n"


def _first_line(doc: str) -> str:
    line = inspect.cleandoc(doc).splitlines()[0] if doc.strip() else ""
    return re.sub(r"(?::[a-z]+:)?`+~?([^`]+?)`+", r"\1", line)


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Yields|Raises|Attributes|Examples?|Notes?|"
                      r"See also|Warnings?|References):\s*$")
_ITEM = re.compile(r"^([A-Za-z_*][\w.*]*(?:\s*,\s*[A-Za-z_*][\w.*]*)*)(\s*\([^)]*\))?:\s+(.*)$")
_INLINE = re.compile(r":(?P<role>[a-z]+):`(?P<body>[^`]+)`|``(?P<code>.+?)``(?!`)|`(?P<plain>[^`]+)`", re.S)


def _inline(text: str) -> str:
    """reST inline markup to Markdown: roles, literals, math; ``$`` in plain text escaped."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(text[pos : m.start()].replace("$", r"\$"))
        if m["role"] == "math":
            out.append(f"${m['body'].strip()}$")
        elif m["role"]:
            body = m["body"]
            target = re.match(r"^(.*?)\s*<(.+)>$", body)
            body = target[1] if target else body.split(".")[-1] if body.startswith("~") else body
            out.append(f"`{body}`")
        else:
            body = m["code"] if m["code"] is not None else m["plain"]
            out.append(f"`` {body} ``" if "`" in body else f"`{body}`")
        pos = m.end()
    out.append(text[pos:].replace("$", r"\$"))
    return "".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], i: int, base: int) -> tuple[list[str], int]:
    """The lines after ``i`` indented deeper than ``base`` (blank lines included), dedented; and the next index."""
    j = i
    while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
        j += 1
    while j > i and not lines[j - 1].strip():
        j -= 1
    return textwrap.dedent("\n".join(lines[i:j])).strip("\n").splitlines(), j


_BULLET = re.compile(r"^([*+-]|\d+[.)]) ")


def _plain(line: str) -> bool:
    """Whether ``line`` continues a paragraph: not blank, not a directive, section or literal-block opener."""
    s = line.strip()
    return bool(s) and not s.startswith(".. ") and not s.endswith("::") and not _SECTION.match(s)


def rst_to_markdown(doc: str) -> str:
    """A course_lib docstring (reST, Google sections) as Markdown that Jupyter and MyST render.

    ``:math:`x``` becomes ``$x$``; a ``.. math::`` block one ``$$`` block per equation; ``:func:`f``` and
    ````x```` become code; ``Args:``/``Returns:`` sections a bold label and a list; a literal block
    (``::`` or ``.. code-block::``) a fenced block.
    """
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    i = in_item = 0  # in_item: the indent of continuation lines inside a list item
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        base = _indent(line)
        math = re.match(r"^\.\.\s+math::\s*(.*)$", stripped)
        code_block = re.match(r"^\.\.\s+(?:code-block|code|sourcecode)::\s*(\S*)", stripped)
        if not stripped:
            out.append("")
            i += 1
        elif math:
            body, i = _block(lines, i + 1, base)
            body = [b for b in body if not b.strip().startswith(":")]  # directive options (:label:, :nowrap:)
            equations = "\n".join(([math[1]] if math[1] else []) + body).strip().split("\n\n")
            for eq in equations:
                if eq.strip():
                    out += ["", "$$", eq.strip("\n"), "$$", ""]
        elif code_block or (stripped.endswith("::") and not stripped.startswith("..")):
            body, i = _block(lines, i + 1, base)
            if code_block:
                lang = code_block[1] or "text"
            else:
                text = stripped[:-2].rstrip()
                if text:
                    out.append(_inline(text + ":"))
                lang = "python" if body and body[0].lstrip().startswith(">>>") else "text"
            out += ["", f"```{lang}", *body, "```", ""]
        elif stripped.startswith(".. "):  # another directive: keep its text, drop the markup
            head = re.sub(r"^\.\.\s+[\w-]+::\s*", "", stripped)
            body, i = _block(lines, i + 1, base)
            out += [_inline(head)] + [_inline(b.strip()) for b in body]
        elif _SECTION.match(stripped) and i + 1 < len(lines):
            out += ["", f"**{_SECTION.match(stripped)[1]}**", ""]
            body, i = _block(lines, i + 1, base)
            out += _section(body)
        else:  # a paragraph (or list item): its lines up to a blank line or another construct
            para = []
            while i < len(lines) and _plain(lines[i]) and (not para or not _BULLET.match(lines[i].strip())):
                bullet = _BULLET.match(lines[i].strip())
                if bullet:
                    in_item = len(bullet[0])
                elif _indent(lines[i]) == 0 or (not para and out and not out[-1]):
                    in_item = 0
                para.append((0 if bullet else in_item, lines[i].strip()))
                i += 1
            text = _inline("\n".join(t for _, t in para)).split("\n")
            out += [" " * pad + t for (pad, _), t in zip(para, text, strict=True)]
    md = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", md).strip("\n")


def _section(body: list[str]) -> list[str]:
    """The lines of an Args/Returns section as a Markdown list: one item per line at the first indent."""
    if not body:
        return []
    literal = [k for k, b in enumerate(body) if b.strip().endswith("::") or b.lstrip().startswith(">>>")]
    if literal:  # an Example section: render it as a paragraph with its literal blocks
        return rst_to_markdown("\n".join(body)).splitlines()
    top = min(_indent(b) for b in body if b.strip())
    items: list[list[str]] = []
    for b in body:
        if not b.strip():
            continue
        if _indent(b) == top or not items:
            items.append([b.strip()])
        else:
            items[-1].append(b.strip())
    out = []
    for item in items:
        text = " ".join(item)
        m = _ITEM.match(text)
        if m:
            note = " " + _inline(m[2].strip()) if m[2] else ""
            out.append(f"- `{m[1]}`{note}: {_inline(m[3])}")
        else:
            out.append(f"- {_inline(text)}")
    if len(items) == 1 and not _ITEM.match(" ".join(items[0])):
        return [out[0][2:]]  # one unnamed item (``Returns: the loss``): a sentence, not a list
    return out


def plot_decision_boundary(
    ax,
    predict: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    resolution: int = 300,
    margin: float = 0.15,
    cmap: str = "viridis",
):
    """Shade the label ``predict`` gives every point of a grid covering ``x``, then scatter ``(x, y)``.

    Args:
        ax: a matplotlib Axes.
        predict: maps ``(M, 2)`` points to ``(M,)`` integer labels.
        x: ``(N, 2)`` points; y: ``(N,)`` integer labels.
        resolution: grid points per side.
        margin: extra room around the data, as a fraction of its range.
    """
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = margin * (hi - lo)
    g0, g1 = np.meshgrid(
        np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
        np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution),
    )
    grid = np.stack([g0.ravel(), g1.ravel()], axis=1)  # (resolution**2, 2)
    labels = predict(grid).reshape(g0.shape)
    n_classes = int(max(labels.max(), y.max())) + 1
    levels = np.arange(n_classes + 1) - 0.5
    ax.contourf(g0, g1, labels, levels=levels, cmap=cmap, alpha=0.3)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap=cmap, vmin=0, vmax=n_classes - 1, s=12, edgecolors="k", linewidths=0.3)
    ax.set_aspect("equal")
    return ax


def plot_curves(ax, curves: dict[str, Sequence[float]], xlabel: str = "epoch", ylabel: str = "", logy=False):
    """Plot named curves against their index (epochs or steps), with a legend."""
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def draw_lstm_cell(ax):
    """Draw the LSTM cell: the cell-state line on top, the four gate layers below, the pointwise operations.

    Yellow boxes are layers with weights (a sigmoid or a tanh of :math:`x_t W_x + h_{t-1} W_h + b`); circles are
    elementwise operations. Returns the Axes.
    """
    from matplotlib.patches import Circle, FancyBboxPatch

    arrow = dict(arrowstyle="-|>", color="0.15", lw=1.4, shrinkA=0, shrinkB=0)
    line = dict(color="0.15", lw=1.4, solid_capstyle="round")
    ax.add_patch(FancyBboxPatch((0.2, 0.2), 10.0, 6.2, boxstyle="round,pad=0.1,rounding_size=0.4",
                                fc="#eef3fb", ec="#6b8ec7", lw=1.5))

    def node(x, y, text):
        ax.add_patch(Circle((x, y), 0.32, fc="#f7d6d0", ec="#b04a3a", lw=1.2, zorder=3))
        ax.text(x, y, text, ha="center", va="center", fontsize=12, zorder=4)

    def layer(x, y, text, name):
        ax.add_patch(FancyBboxPatch((x - 0.45, y - 0.32), 0.9, 0.64, boxstyle="round,pad=0.02",
                                    fc="#fbe7a1", ec="#b08a1a", lw=1.2, zorder=3))
        ax.text(x, y, text, ha="center", va="center", fontsize=11, zorder=4)
        ax.text(x + 0.5, y + 0.55, name, ha="left", va="center", fontsize=11, color="#7a5c00")

    y_c, y_gate, y_in = 5.5, 2.4, 0.9
    gates = {"f": 2.3, "i": 4.1, "g": 5.7, "o": 7.5}
    # cell state: c_{t-1} -> x f -> + (i g) -> c_t
    ax.annotate("", xy=(2.3 - 0.32, y_c), xytext=(-0.9, y_c), arrowprops=arrow)
    ax.annotate("", xy=(4.9 - 0.32, y_c), xytext=(2.3 + 0.32, y_c), arrowprops=arrow)
    ax.annotate("", xy=(11.2, y_c), xytext=(4.9 + 0.32, y_c), arrowprops=arrow)
    node(2.3, y_c, r"$\times$")
    node(4.9, y_c, "+")
    ax.text(-1.0, y_c + 0.35, r"$c_{t-1}$", fontsize=13, ha="left")
    ax.text(10.6, y_c + 0.35, r"$c_t$", fontsize=13, ha="left")
    # h_{t-1} and x_t feed every gate layer
    ax.plot([-0.9, gates["o"]], [y_in, y_in], **line)
    ax.annotate("", xy=(1.0, y_in), xytext=(1.0, -0.9), arrowprops=arrow)
    ax.text(-1.0, y_in + 0.25, r"$h_{t-1}$", fontsize=13, ha="left")
    ax.text(1.15, -0.85, r"$x_t$", fontsize=13, ha="left")
    for x in gates.values():
        ax.annotate("", xy=(x, y_gate - 0.32), xytext=(x, y_in), arrowprops=arrow)
    layer(gates["f"], y_gate, r"$\sigma$", r"$f_t$")
    layer(gates["i"], y_gate, r"$\sigma$", r"$i_t$")
    layer(gates["g"], y_gate, "tanh", r"$g_t$")
    layer(gates["o"], y_gate, r"$\sigma$", r"$o_t$")
    # forget gate scales the old cell state
    ax.annotate("", xy=(2.3, y_c - 0.32), xytext=(2.3, y_gate + 0.32), arrowprops=arrow)
    # input gate times candidate, added to the cell state
    y_ig = 4.0
    node(4.9, y_ig, r"$\times$")
    ax.plot([4.1, 4.1], [y_gate + 0.32, y_ig], **line)
    ax.annotate("", xy=(4.9 - 0.32, y_ig), xytext=(4.1, y_ig), arrowprops=arrow)
    ax.plot([5.7, 5.7], [y_gate + 0.32, y_ig], **line)
    ax.annotate("", xy=(4.9 + 0.32, y_ig), xytext=(5.7, y_ig), arrowprops=arrow)
    ax.annotate("", xy=(4.9, y_c - 0.32), xytext=(4.9, y_ig + 0.32), arrowprops=arrow)
    # output: o_t * tanh(c_t)
    x_out = 9.0
    ax.add_patch(FancyBboxPatch((x_out - 0.45, 4.0 - 0.28), 0.9, 0.56, boxstyle="round,pad=0.02",
                                fc="#f7d6d0", ec="#b04a3a", lw=1.2, zorder=3))
    ax.text(x_out, 4.0, "tanh", ha="center", va="center", fontsize=11, zorder=4)
    ax.annotate("", xy=(x_out, 4.0 + 0.28), xytext=(x_out, y_c), arrowprops=arrow)
    node(x_out, y_gate, r"$\times$")
    ax.annotate("", xy=(x_out, y_gate + 0.32), xytext=(x_out, 4.0 - 0.28), arrowprops=arrow)
    ax.annotate("", xy=(x_out - 0.32, y_gate), xytext=(gates["o"] + 0.45, y_gate), arrowprops=arrow)
    ax.plot([x_out, x_out], [y_gate - 0.32, y_in], **line)
    ax.annotate("", xy=(11.2, y_in), xytext=(x_out, y_in), arrowprops=arrow)
    ax.plot([x_out + 0.6, x_out + 0.6], [y_in, 6.6], **line)
    ax.annotate("", xy=(x_out + 0.6, 7.3), xytext=(x_out + 0.6, 6.6), arrowprops=arrow)
    ax.text(10.6, y_in + 0.25, r"$h_t$", fontsize=13, ha="left")
    ax.text(x_out + 0.75, 7.0, r"$h_t$", fontsize=13, ha="left")
    ax.set_xlim(-1.2, 11.8)
    ax.set_ylim(-1.2, 7.5)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax
