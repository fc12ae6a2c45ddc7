"""What the common wrong answers of assignment 01 compute, for the hints of its tests (instructor side only).

A test cell names a likely mistake by comparing the student's value with what that mistake gives on the same
inputs (``mistakes=`` of :class:`course_lib.checks.Test`). The test cells call these functions from
``lambda``s only, which the grader's sandbox never runs (this module is a stub there, like every reference
module), so no expected value is computed in the student's kernel.
"""

from __future__ import annotations

import numpy as np

TWO_LAYER_MISTAKES = ("tanh_at_input", "dW2_from_preactivation")


def two_layer_mistaken(params: dict, x: np.ndarray, y: np.ndarray, scale: float, temperature: float,
                       mistake: str) -> dict[str, np.ndarray]:
    """The gradients of question 5's network (as the test's stand-ins compute it: each affine layer's output
    times ``scale``, the scores times ``temperature``) with one of :data:`TWO_LAYER_MISTAKES`:

    ``tanh_at_input`` the tanh's derivative is written with its input a, ``1 - a**2``, instead of ``1 - h**2``;
    ``dW2_from_preactivation`` dW2 is ``a.T @ ds``, from the pre-activation a instead of h = tanh(a).
    """
    if mistake not in TWO_LAYER_MISTAKES:  # never the right answer
        raise ValueError(f"unknown mistake {mistake!r}")
    W1, b1, W2, b2 = (np.asarray(params[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2"))
    x = np.asarray(x, dtype=np.float64)
    a = scale * (x @ W1 + b1)
    h = np.tanh(a)
    z = temperature * scale * (h @ W2 + b2)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    ds = temperature * p / len(y)
    dh = scale * ds @ W2.T
    dW2 = a.T @ ds if mistake == "dW2_from_preactivation" else scale * h.T @ ds
    da = dh * (1 - (a if mistake == "tanh_at_input" else h) ** 2)
    return {"W1": scale * x.T @ da, "b1": scale * da.sum(axis=0), "W2": dW2, "b2": scale * ds.sum(axis=0)}
