"""Diagrams of recurrent networks drawn with matplotlib: the unrolled graph and the input/output taxonomy.

Each function draws on the ``Axes`` it is given and returns it, like :mod:`course_lib.plotting`. Boxes are
coloured by role: inputs :math:`x_t` blue, hidden states :math:`h_t` orange, outputs :math:`y_t` (or scores
:math:`s_t`) green; time runs from left to right.

* :func:`draw_unrolled` draws one tanh RNN folded and unrolled over a few steps (and, with ``backward=True``,
  the two paths by which backpropagation through time reaches each state).
* :func:`draw_io_pattern` draws one of the four shapes of sequence problems (:data:`IO_PATTERNS`), and
  :func:`draw_io_taxonomy` all four side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

X_COLOR, H_COLOR, S_COLOR, DEC_COLOR = "#dbe9f6", "#fde6c8", "#d8f0d2", "#f3d9ec"


def _node(ax, xy, text, color, fontsize=13, pad=0.45):
    """A labelled rounded box centred on ``xy``."""
    ax.text(*xy, text, ha="center", va="center", fontsize=fontsize,
            bbox=dict(boxstyle=f"round,pad={pad}", fc=color, ec="k", lw=1))


def _arrow(ax, start, end, label=None, color="k", rad=0.0, label_offset=(0.0, 0.0), ls="-", shrink=17,
           fontsize=11):
    """An arrow from ``start`` to ``end`` (curved by ``rad``), with an optional label at its middle."""
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color=color, lw=1.4, ls=ls,
                                 shrinkA=shrink, shrinkB=shrink, connectionstyle=f"arc3,rad={rad}"))
    if label:
        mid = ((start[0] + end[0]) / 2 + label_offset[0], (start[1] + end[1]) / 2 + label_offset[1])
        ax.text(*mid, label, ha="center", va="center", fontsize=fontsize, color=color)


def draw_unrolled(ax, T: int = 4, backward: bool = False):
    """A recurrent network folded (left) and unrolled over ``T`` steps (right).

    Every step receives :math:`x_t` through :math:`W_x` and :math:`h_{t-1}` through :math:`W_h` and emits
    :math:`s_t` through :math:`W_{\\mathrm{out}}`. With ``backward=True`` the folded cell is left out and dashed
    red arrows show the gradient reaching each state from its own loss :math:`L_t` and from the next state.
    Returns the Axes.
    """
    from matplotlib.patches import FancyArrowPatch

    if not backward:  # the folded cell
        _node(ax, (0.6, 0), "$x_t$", X_COLOR)
        _node(ax, (0.6, 1.3), "$h_t$", H_COLOR)
        _node(ax, (0.6, 2.6), "$s_t$", S_COLOR)
        _arrow(ax, (0.6, 0), (0.6, 1.3), "$W_x$", label_offset=(-0.3, 0))
        _arrow(ax, (0.6, 1.3), (0.6, 2.6), "$W_{out}$", label_offset=(-0.38, 0))
        ax.add_patch(FancyArrowPatch((0.85, 1.45), (0.85, 1.15), arrowstyle="-|>", mutation_scale=14, lw=1.4,
                                     connectionstyle="arc3,rad=-2.2"))
        ax.text(1.12, 1.72, "$W_h$", fontsize=11, va="center")
        ax.annotate("", xy=(2.6, 1.3), xytext=(1.75, 1.3), arrowprops=dict(arrowstyle="-|>", lw=1.4))
        ax.text(2.17, 1.5, "unroll", fontsize=11, ha="center")
    x0 = 3.2
    _node(ax, (x0, 1.3), "$h_0$", H_COLOR)
    for t in range(1, T + 1):
        xc = x0 + 1.45 * t
        _node(ax, (xc, 0), f"$x_{t}$", X_COLOR)
        _node(ax, (xc, 1.3), f"$h_{t}$", H_COLOR)
        _node(ax, (xc, 2.6), f"$s_{t}$", S_COLOR)
        _arrow(ax, (xc - 1.45, 1.3), (xc, 1.3), "$W_h$", label_offset=(0, 0.22))
        _arrow(ax, (xc, 0), (xc, 1.3), "$W_x$", label_offset=(-0.3, 0))
        _arrow(ax, (xc, 1.3), (xc, 2.6), "$W_{out}$", label_offset=(-0.38, 0))
        if backward:
            ax.text(xc + 0.5, 2.6, f"$L_{t}$", fontsize=12, va="center", color="C3")
            _arrow(ax, (xc + 0.02, 2.6), (xc + 0.02, 1.3), color="C3", rad=-0.35, ls="--")
            _arrow(ax, (xc, 1.3), (xc - 1.45, 1.3), color="C3", rad=-0.35, ls="--")
    ax.set_xlim(-0.1 if not backward else 2.7, x0 + 1.45 * T + 0.7)
    ax.set_ylim(-0.5, 3.1)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


# Which steps of a pattern read an input and which emit an output, over its steps 0..n-1; "decoder" marks the
# steps that belong to a decoder (a second network that starts from the encoder's last state).
IO_PATTERNS: dict[str, dict] = {
    "one-to-many": dict(steps=4, inputs=[0], outputs=[0, 1, 2, 3], fed_back=True,
                        example="captioning; generating text"),
    "many-to-one": dict(steps=4, inputs=[0, 1, 2, 3], outputs=[3], example="sentiment of a review"),
    "aligned many-to-many": dict(steps=4, inputs=[0, 1, 2, 3], outputs=[0, 1, 2, 3],
                                 example="next character; forecasting"),
    "unaligned many-to-many": dict(steps=6, inputs=[0, 1, 2], outputs=[3, 4, 5], decoder=[3, 4, 5],
                                   fed_back=True, example="translation (encoder-decoder)"),
}


def draw_io_pattern(ax, kind: str, title: bool = True):
    """One shape of sequence problem: inputs (blue) below, hidden states (orange, pink for a decoder) in the
    middle, outputs (green) above, time from left to right.

    Args:
        ax: a matplotlib Axes.
        kind: a key of :data:`IO_PATTERNS`: ``"one-to-many"``, ``"many-to-one"``, ``"aligned many-to-many"``
            or ``"unaligned many-to-many"``. Where the pattern feeds its outputs back (generation, a decoder),
            a dashed arrow takes each output to the next step's input.
        title: write the pattern's name and example above the drawing.

    Returns:
        The Axes.

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind not in IO_PATTERNS:
        raise ValueError(f"unknown pattern {kind!r}; choose one of {sorted(IO_PATTERNS)}")
    spec = IO_PATTERNS[kind]
    n, dec = spec["steps"], set(spec.get("decoder", []))
    dx, y_in, y_h, y_out = 1.0, 0.0, 1.1, 2.2
    small = dict(fontsize=10, pad=0.3)
    for t in range(n):
        xc = t * dx
        _node(ax, (xc, y_h), "$h$", DEC_COLOR if t in dec else H_COLOR, **small)
        if t > 0:
            _arrow(ax, (xc - dx, y_h), (xc, y_h), shrink=9)
        if t in spec["inputs"]:
            _node(ax, (xc, y_in), "$x$", X_COLOR, **small)
            _arrow(ax, (xc, y_in), (xc, y_h), shrink=9)
        if t in spec["outputs"]:
            _node(ax, (xc, y_out), "$y$", S_COLOR, **small)
            _arrow(ax, (xc, y_h), (xc, y_out), shrink=9)
            if spec.get("fed_back") and t + 1 < n:
                _arrow(ax, (xc + 0.12, y_out - 0.1), (xc + dx - 0.12, y_h + 0.12), color="0.45", ls="--",
                       shrink=6)
    if title:
        ax.set_title(f"{kind}\n{spec['example']}", fontsize=10)
    ax.set_xlim(-0.6, max(n, 4) * dx - 0.4)
    ax.set_ylim(-0.5, 2.7)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def draw_io_taxonomy(axes: Sequence):
    """The four shapes of :data:`IO_PATTERNS`, one per Axes of ``axes`` (four of them). Returns ``axes``."""
    axes = list(axes)
    if len(axes) != len(IO_PATTERNS):
        raise ValueError(f"draw_io_taxonomy needs {len(IO_PATTERNS)} Axes, got {len(axes)}")
    for ax, kind in zip(axes, IO_PATTERNS, strict=True):
        draw_io_pattern(ax, kind)
    return axes
