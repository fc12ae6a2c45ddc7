"""What the common wrong answers of assignment 07 compute, for the hints of its tests (instructor side only).

A test cell names a likely mistake by comparing the student's value with what that mistake gives on the same
inputs (``mistakes=`` of :class:`course_lib.checks.Test`). These functions compute those values: each is a
version of scaled dot-product attention (:mod:`course_lib.attention`) or of the scan of a linear recurrence
(:mod:`course_lib.scan`) with one thing done wrong. The test cells call them from ``lambda``s only, which the
grader's sandbox never runs (this module is a stub there, like every reference module), so no expected value
is computed in the student's kernel and no test cell holds a whole answer a student could copy.

Dimension legend: N batch, T queries (or time steps), S keys, d the width of a query and a key, dv of a value,
D the width of a recurrence's state.
"""

from __future__ import annotations

import numpy as np

FORWARD_MISTAKES = ("no_scale", "mask_after_softmax", "mask_future", "mask_own_key", "softmax_over_queries",
                    "no_max_shift")
BACKWARD_MISTAKES = ("dv_not_transposed", "no_softmax_coupling", "no_scale", "dk_not_transposed")
SCAN_MISTAKES = ("a_not_composed", "a_updated_first", "one_round_short", "exclusive")


def _masked_scores(q: np.ndarray, k: np.ndarray, causal: bool, mistake: str = "") -> np.ndarray:
    """The scores ``(N, T, S)`` with the mask of ``causal`` (or of a mistaken mask): -inf where hidden."""
    scale = 1.0 if mistake == "no_scale" else 1.0 / np.sqrt(q.shape[-1])
    scores = (q @ np.swapaxes(k, -1, -2)) * scale
    if causal and mistake != "mask_after_softmax":
        T, S = scores.shape[-2:]
        t, s = np.arange(T)[:, None], np.arange(S)[None, :]
        allowed = {"mask_future": s >= t, "mask_own_key": s < t}.get(mistake, s <= t)
        scores = np.where(allowed, scores, -np.inf)
    return scores


def attention_forward_mistaken(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool,
                               mistake: str) -> tuple[np.ndarray, np.ndarray]:
    """``(out (N, T, dv), A (N, T, S))`` of scaled dot-product attention with one of :data:`FORWARD_MISTAKES`:

    ``no_scale`` the scores are not divided by sqrt(d);
    ``mask_after_softmax`` the softmax runs over every key, then the future's weights are set to 0 (the rows no
    longer sum to 1);
    ``mask_future`` the mask is on the wrong side: query t sees keys s >= t (the future) instead of s <= t;
    ``mask_own_key`` the mask hides s >= t: query t does not see its own key (row 0 sees nothing: nan);
    ``softmax_over_queries`` the softmax normalises over the queries (axis 1) instead of the keys (axis 2);
    ``no_max_shift`` exp of the scores without subtracting each row's maximum (large scores overflow: nan).
    """
    if mistake not in FORWARD_MISTAKES:  # never the right answer: the hidden tests forbid calls into this module
        raise ValueError(f"unknown mistake {mistake!r}")
    scores = _masked_scores(q, k, causal, mistake)
    axis = 1 if mistake == "softmax_over_queries" else 2
    with np.errstate(all="ignore"):
        top = 0.0 if mistake == "no_max_shift" else np.max(scores, axis=axis, keepdims=True)
        e = np.exp(scores - top)
        A = e / e.sum(axis=axis, keepdims=True)
        if causal and mistake == "mask_after_softmax":
            A = A * np.tril(np.ones(A.shape[-2:]))
        return A @ v, A


def attention_backward_mistaken(dout: np.ndarray, cache: tuple, mistake: str) -> tuple[np.ndarray, ...]:
    """``(dq, dk, dv)`` of scaled dot-product attention from the cache ``(q, k, v, A)``, with one of
    :data:`BACKWARD_MISTAKES`:

    ``dv_not_transposed`` dv = A dout instead of A^T dout (shapes fit only when T = S);
    ``no_softmax_coupling`` dL/dP = A * dL/dA, without subtracting each row's sum of A * dL/dA;
    ``no_scale`` dq and dk without the factor 1/sqrt(d) of the scores;
    ``dk_not_transposed`` dk = dL/dP q / sqrt(d) instead of (dL/dP)^T q / sqrt(d) (shapes fit only when T = S).
    """
    if mistake not in BACKWARD_MISTAKES:
        raise ValueError(f"unknown mistake {mistake!r}")
    q, k, v, A = cache[:4]
    scale = 1.0 if mistake == "no_scale" else 1.0 / np.sqrt(q.shape[-1])
    dv = (A if mistake == "dv_not_transposed" else np.swapaxes(A, -1, -2)) @ dout
    dA = dout @ np.swapaxes(v, -1, -2)
    coupling = 0.0 if mistake == "no_softmax_coupling" else np.sum(A * dA, axis=-1, keepdims=True)
    dP = A * (dA - coupling)
    dq = dP @ k * scale
    dk = (dP if mistake == "dk_not_transposed" else np.swapaxes(dP, -1, -2)) @ q * scale
    return dq, dk, dv


def scan_mistaken(a: np.ndarray, b: np.ndarray, mistake: str) -> np.ndarray:
    """The states ``(N, T, D)`` of ``h_t = a_t * h_{t-1} + b_t`` (h_0 = 0) by a Hillis-Steele scan with one of
    :data:`SCAN_MISTAKES`:

    ``a_not_composed`` each round combines ``B_t + a_t B_{t-off}`` with the step's own ``a_t``: the products of
    the coefficients are never formed;
    ``a_updated_first`` the coefficients ``A`` are composed before ``B``, and ``B``'s update reads the new ones;
    ``one_round_short`` the rounds stop at ``offset < T / 2`` (``floor(log2 T)`` rounds where ``ceil`` are needed);
    ``exclusive`` the states come one step late: ``h[:, t]`` holds ``h_{t-1}`` (and ``h[:, 0]`` is 0).
    """
    if mistake not in SCAN_MISTAKES:
        raise ValueError(f"unknown mistake {mistake!r}")
    A, B = np.array(a, dtype=np.float64), np.array(b, dtype=np.float64)
    T, offset = B.shape[1], 1
    while (2 * offset if mistake == "one_round_short" else offset) < T:
        if mistake == "a_updated_first":
            A[:, offset:] = A[:, offset:] * A[:, :-offset]
            B[:, offset:] = A[:, offset:] * B[:, :-offset] + B[:, offset:]
        else:
            B[:, offset:] = A[:, offset:] * B[:, :-offset] + B[:, offset:]
            if mistake != "a_not_composed":
                A[:, offset:] = A[:, offset:] * A[:, :-offset]
        offset *= 2
    if mistake == "exclusive":
        B = np.concatenate([np.zeros_like(B[:, :1]), B[:, :-1]], axis=1)
    return B
