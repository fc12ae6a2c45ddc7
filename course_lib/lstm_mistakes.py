"""What the common wrong answers of assignment 04 compute, for the hints of its tests (instructor side only).

A test cell names a likely mistake by comparing the student's value with what that mistake gives on the same
inputs (``mistakes=`` of :class:`course_lib.checks.Test`). The test cells call these functions from
``lambda``s only, which the grader's sandbox never runs (this module is a stub there, like every reference
module), so no expected value is computed in the student's kernel.

The sequence question is tested with stand-in step functions (:func:`course_lib.lstm.stand_in_sequence_forward`:
a tanh RNN on the state ``s = [h, c]``); these functions run the same stand-in with one thing done wrong in the
loop over the steps.
"""

from __future__ import annotations

import numpy as np

SEQUENCE_MISTAKES = ("c0_every_step", "no_dh_next")


def _sequence(x, h0, c0, Wx, Wh, b, dh, scale, mistake):
    """h (N, T, H) and the gradients (dx, dh0, dc0, dWx, dWh, db) of the stand-in LSTM layer, step by step."""
    N, T, D = x.shape
    H = h0.shape[1]
    Wx2, Wh2, b2 = scale * Wx[:, : 2 * H], scale * Wh.reshape(2 * H, 2 * H), scale * b[: 2 * H]
    s_prev, h, caches = np.concatenate([h0, c0], axis=1), np.empty((N, T, H)), []
    for t in range(T):
        if mistake == "c0_every_step":
            s_prev = np.concatenate([s_prev[:, :H], c0], axis=1)
        s = np.tanh(x[:, t] @ Wx2 + s_prev @ Wh2 + b2)
        caches.append((x[:, t], s_prev, s))
        h[:, t], s_prev = s[:, :H], s
    dx, dWx2, dWh2, db2 = np.zeros((N, T, D)), np.zeros_like(Wx2), np.zeros_like(Wh2), np.zeros_like(b2)
    dh_next, dc_next = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        x_t, s_in, s = caches[t]
        dh_t = dh[:, t] if mistake == "no_dh_next" else dh[:, t] + dh_next
        da = np.concatenate([dh_t, dc_next], axis=1) * (1 - s**2)
        dx[:, t] = da @ Wx2.T
        ds_prev = da @ Wh2.T
        dWx2 += x_t.T @ da
        dWh2 += s_in.T @ da
        db2 += da.sum(axis=0)
        dh_next, dc_next = ds_prev[:, :H], ds_prev[:, H:]
    dWx, db = np.zeros((D, 4 * H)), np.zeros(4 * H)
    dWx[:, : 2 * H], db[: 2 * H] = scale * dWx2, scale * db2
    return h, (dx, dh_next, dc_next, dWx, scale * dWh2.reshape(H, 4 * H), db)


def sequence_mistaken(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                      b: np.ndarray, dh: np.ndarray, scale: float, mistake: str) -> tuple[np.ndarray, tuple]:
    """``h (N, T, H)`` and the gradients ``(dx, dh0, dc0, dWx, dWh, db)`` of ``sum(h * dh)`` that
    ``lstm_sequence_forward`` / ``lstm_sequence_backward`` return with the test's stand-in steps (of this
    ``scale``) and one of :data:`SEQUENCE_MISTAKES`:

    ``c0_every_step`` the forward pass hands ``c0`` to every step instead of the previous step's cell state;
    ``no_dh_next`` the backward pass hands step t only ``dh[:, t]`` (and ``dc_next``), without the ``dh_prev``
    that step t + 1 returned.
    """
    if mistake not in SEQUENCE_MISTAKES:  # never the right answer
        raise ValueError(f"unknown mistake {mistake!r}")
    return _sequence(*(np.asarray(a, dtype=np.float64) for a in (x, h0, c0, Wx, Wh, b, dh)), scale, mistake)



def exp_sigmoid_report(a: float) -> str:
    """What the hidden test of ``lstm_step_forward`` records (numpy's own wording of the error) when a sigmoid
    written as ``1 / (1 + np.exp(-a))`` meets the pre-activation ``a`` (about +-1000) with every numpy
    floating-point warning raised as an error."""
    try:
        with np.errstate(all="raise"):
            1 / (1 + np.exp(-np.array([a], dtype=np.float64)))
    except FloatingPointError as error:
        return f"numpy reports: {error}"
    raise AssertionError(f"1 / (1 + np.exp(-{a})) raised nothing")
