"""Display helpers shared by the chapters: figures (matplotlib) and highlighted source listings.

Plotting functions draw on an ``Axes`` they are given and return it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np


def show_source(obj):
    """The source of a course_lib function or class, as a syntax-highlighted block for a notebook or the book."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


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
