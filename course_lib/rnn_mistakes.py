"""What the common wrong answers of assignment 02 compute, for the hints of its tests (instructor side only).

A test cell names a likely mistake by comparing the student's value with what that mistake gives on the same
inputs (``mistakes=`` of :class:`course_lib.checks.Test`). The test cells call these functions from
``lambda``s only, which the grader's sandbox never runs (this module is a stub there, like every reference
module), so no expected value is computed in the student's kernel.
"""

from __future__ import annotations

import numpy as np

SAMPLE_MISTAKES = ("no_max_shift",)


def sample_mistaken(scores: np.ndarray, temperature: float, rng: np.random.Generator, mistake: str) -> np.ndarray:
    """:func:`course_lib.rnn.sample_from_scores` (inverse-CDF draws, one ``rng.random(N)``) with one of
    :data:`SAMPLE_MISTAKES`: ``no_max_shift`` ``np.exp(scores / temperature)`` without subtracting each row's
    maximum first (large scores overflow to inf, and the probabilities become nan)."""
    if mistake not in SAMPLE_MISTAKES:  # never the right answer
        raise ValueError(f"unknown mistake {mistake!r}")
    scores = np.asarray(scores, dtype=np.float64)
    with np.errstate(all="ignore"):
        p = np.exp(scores / temperature)
        p /= p.sum(axis=1, keepdims=True)
        u = rng.random(scores.shape[0])
        return np.minimum((np.cumsum(p, axis=1) <= u[:, None]).sum(axis=1), scores.shape[1] - 1)
