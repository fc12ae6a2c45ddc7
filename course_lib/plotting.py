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
