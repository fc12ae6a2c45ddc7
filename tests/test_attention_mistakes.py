"""The wrong versions behind assignment 07's hints (course_lib/attention_mistakes.py): each computes the shapes of
the right answer and values that differ from it, so that a hint can only name the mistake it describes; the
mistakes whose shapes fit only when T = S are checked there."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import attention, scan
from course_lib import attention_mistakes as am


def inputs(T=5, S=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, T, 3)), rng.standard_normal((2, S, 3)), rng.standard_normal((2, S, 2))


@pytest.mark.parametrize("mistake", am.FORWARD_MISTAKES)
def test_each_forward_mistake_differs_from_the_reference(mistake):
    q, k, v = inputs()
    if mistake == "no_max_shift":
        q = q * 3000.0  # only large scores tell it apart: exp overflows
    out, cache = attention.attention_forward(q, k, v, attention.causal_mask(5))
    wrong_out, wrong_A = am.attention_forward_mistaken(q, k, v, True, mistake)
    assert wrong_out.shape == out.shape and wrong_A.shape == cache[3].shape
    assert not np.allclose(np.nan_to_num(wrong_out), out), mistake


def test_without_a_mask_the_mask_mistakes_are_the_reference():
    q, k, v = inputs(T=4, S=6)
    out, cache = attention.attention_forward(q, k, v)
    for mistake in ("mask_after_softmax", "mask_future", "mask_own_key"):
        wrong_out, wrong_A = am.attention_forward_mistaken(q, k, v, False, mistake)
        np.testing.assert_allclose(wrong_A, cache[3], rtol=1e-12)


@pytest.mark.parametrize("mistake", am.BACKWARD_MISTAKES)
def test_each_backward_mistake_differs_from_the_reference(mistake):
    q, k, v = inputs()
    out, cache = attention.attention_forward(q, k, v, attention.causal_mask(5))
    dout = np.random.default_rng(1).standard_normal(out.shape)
    right = attention.attention_backward(dout, cache)
    wrong = am.attention_backward_mistaken(dout, cache[:4], mistake)
    assert [w.shape for w in wrong] == [r.shape for r in right]
    assert any(not np.allclose(w, r) for w, r in zip(wrong, right, strict=True)), mistake


@pytest.mark.parametrize("mistake", am.SCAN_MISTAKES)
@pytest.mark.parametrize("T", [9, 16])
def test_each_scan_mistake_differs_from_the_loop(mistake, T):
    rng = np.random.default_rng(T)
    a, b = rng.uniform(0.3, 1.0, (2, T, 3)), rng.standard_normal((2, T, 3))
    a_before, b_before = a.copy(), b.copy()
    wrong = am.scan_mistaken(a, b, mistake)
    assert wrong.shape == b.shape and not np.allclose(wrong, scan.linear_recurrence_loop(a, b))
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)


def test_an_unknown_mistake_is_refused():
    q, k, v = inputs()
    with pytest.raises(ValueError):
        am.attention_forward_mistaken(q, k, v, True, "right")
    with pytest.raises(ValueError):
        am.attention_backward_mistaken(v, (q, k, v, None), "right")
    with pytest.raises(ValueError):
        am.scan_mistaken(q, k, "right")
