"""Tests of course_lib.rnn against torch.nn.RNN (float64) and centered numerical gradients."""

import numpy as np
import pytest
import torch
from conftest import assert_close, t

from course_lib import rnn
from course_lib.gradcheck import numerical_gradient, rel_error

SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (3, 7, 2, 4), (4, 1, 3, 3)]  # N, T, D, H


def random_params(rng, D, H, scale=0.5):
    return rng.standard_normal((D, H)) * scale, rng.standard_normal((H, H)) * scale, rng.standard_normal(H) * 0.1


@pytest.mark.parametrize(("N", "T", "D", "H"), SHAPES)
def test_forward_and_backward_match_torch(rng, N, T, D, H):
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = random_params(rng, D, H)
    h, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
    dh = rng.standard_normal(h.shape)
    dx, dh0, dWx, dWh, db = rnn.rnn_backward(dh, cache)

    module = rnn.to_torch(Wx, Wh, b)
    tx, th0 = t(x, True), t(h0[None], True)
    out, hn = module(tx, th0)
    out.backward(t(dh))
    assert_close(h, out)
    assert_close(h[:, -1], hn[0])
    assert_close(dx, tx.grad)
    assert_close(dh0, th0.grad[0])
    assert_close(dWx, module.weight_ih_l0.grad.T)
    assert_close(dWh, module.weight_hh_l0.grad.T)
    assert_close(db, module.bias_ih_l0.grad)


@pytest.mark.parametrize(("N", "T", "D", "H"), SHAPES[:3])
def test_sequence_backward_matches_numerical_gradient(rng, N, T, D, H):
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = random_params(rng, D, H)
    h, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
    dh = rng.standard_normal(h.shape)
    grads = dict(zip(["x", "h0", "Wx", "Wh", "b"], rnn.rnn_backward(dh, cache), strict=True))
    f = lambda: rnn.rnn_forward(x, h0, Wx, Wh, b)[0]  # noqa: E731
    # Whole sequences chain T steps of rounding error; 1e-7 still holds with margin at these lengths.
    for name, value in [("x", x), ("h0", h0), ("Wx", Wx), ("Wh", Wh), ("b", b)]:
        assert rel_error(grads[name], numerical_gradient(f, value, dh)) < 1e-7, name


def test_step_functions_agree_with_sequence_functions(rng):
    N, T, D, H = 2, 4, 3, 5
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = random_params(rng, D, H)
    h_seq, _ = rnn.rnn_forward(x, h0, Wx, Wh, b)
    h, caches = h0, []
    for step in range(T):
        h, cache = rnn.rnn_step_forward(x[:, step], h, Wx, Wh, b)
        caches.append(cache)
        assert_close(h, h_seq[:, step])
    dh = rng.standard_normal((N, H))
    dx, dh_prev, dWx, dWh, db = rnn.rnn_step_backward(dh, caches[-1])
    h_prev = h_seq[:, -2].copy()
    f = lambda: rnn.rnn_step_forward(x[:, -1], h_prev, Wx, Wh, b)[0]  # noqa: E731
    assert rel_error(dh_prev, numerical_gradient(f, h_prev, dh)) < 1e-7
    assert rel_error(dWh, numerical_gradient(f, Wh, dh)) < 1e-7
    assert rel_error(db, numerical_gradient(f, b, dh)) < 1e-7


def test_torch_round_trip(rng):
    Wx, Wh, b = random_params(rng, 3, 4)
    Wx2, Wh2, b2 = rnn.from_torch(rnn.to_torch(Wx, Wh, b))
    np.testing.assert_array_equal(Wx, Wx2)
    np.testing.assert_array_equal(Wh, Wh2)
    np.testing.assert_array_equal(b, b2)
    module = torch.nn.RNN(3, 4, batch_first=True).double()
    Wx, Wh, b = rnn.from_torch(module)
    assert_close(b, (module.bias_ih_l0 + module.bias_hh_l0).detach())


def test_forward_rejects_mismatched_shapes(rng):
    with pytest.raises(ValueError, match="shapes"):
        rnn.rnn_forward(np.zeros((2, 3, 4)), np.zeros((2, 5)), np.zeros((3, 5)), np.zeros((5, 5)), np.zeros(5))
