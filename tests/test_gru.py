"""Tests of course_lib.gru against torch.nn.GRU (float64) and centered numerical gradients."""

import numpy as np
import pytest
import torch
from conftest import assert_close, t

from course_lib import gru
from course_lib.gradcheck import numerical_gradient, rel_error

SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (3, 7, 2, 4), (4, 1, 3, 3), (1, 6, 5, 2)]  # N, T, D, H
NAMES = ["x", "h0", "Wx", "Wh", "bx", "bh"]


def random_params(rng, D, H, scale=0.5):
    return (rng.standard_normal((D, 3 * H)) * scale, rng.standard_normal((H, 3 * H)) * scale,
            rng.standard_normal(3 * H) * 0.5, rng.standard_normal(3 * H) * 0.5)


@pytest.mark.parametrize(("N", "T", "D", "H"), SHAPES)
def test_forward_and_backward_match_torch(rng, N, T, D, H):
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, bx, bh = random_params(rng, D, H)
    h, cache = gru.gru_forward(x, h0, Wx, Wh, bx, bh)
    dh = rng.standard_normal(h.shape)
    dx, dh0, dWx, dWh, dbx, dbh = gru.gru_backward(dh, cache)

    module = gru.to_torch(Wx, Wh, bx, bh)
    tx, th0 = t(x, True), t(h0[None], True)
    out, hn = module(tx, th0)
    out.backward(t(dh))
    assert_close(h, out)
    assert_close(h[:, -1], hn[0])
    assert_close(dx, tx.grad)
    assert_close(dh0, th0.grad[0])
    assert_close(dWx, module.weight_ih_l0.grad.T)
    assert_close(dWh, module.weight_hh_l0.grad.T)
    assert_close(dbx, module.bias_ih_l0.grad)
    assert_close(dbh, module.bias_hh_l0.grad)


@pytest.mark.parametrize(("N", "T", "D", "H"), SHAPES[:3])
def test_sequence_backward_matches_numerical_gradient(rng, N, T, D, H):
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, bx, bh = random_params(rng, D, H)
    h, cache = gru.gru_forward(x, h0, Wx, Wh, bx, bh)
    dh = rng.standard_normal(h.shape)
    grads = dict(zip(NAMES, gru.gru_backward(dh, cache), strict=True))
    f = lambda: gru.gru_forward(x, h0, Wx, Wh, bx, bh)[0]  # noqa: E731
    # The bound is the per-step 1e-7: with T <= 7 steps the chained rounding error stays near 1e-10.
    for name, value in zip(NAMES, [x, h0, Wx, Wh, bx, bh], strict=True):
        assert rel_error(grads[name], numerical_gradient(f, value, dh)) < 1e-7, name


@pytest.mark.parametrize(("N", "D", "H"), [(1, 1, 1), (3, 4, 5), (2, 3, 2)])
def test_step_backward_matches_numerical_gradient_and_torch(rng, N, D, H):
    x, h_prev = rng.standard_normal((N, D)), rng.standard_normal((N, H))
    Wx, Wh, bx, bh = random_params(rng, D, H)
    h, cache = gru.gru_step_forward(x, h_prev, Wx, Wh, bx, bh)
    dh = rng.standard_normal((N, H))
    grads = dict(zip(["x", "h_prev", "Wx", "Wh", "bx", "bh"], gru.gru_step_backward(dh, cache), strict=True))
    f = lambda: gru.gru_step_forward(x, h_prev, Wx, Wh, bx, bh)[0]  # noqa: E731
    for name, value in [("x", x), ("h_prev", h_prev), ("Wx", Wx), ("Wh", Wh), ("bx", bx), ("bh", bh)]:
        assert rel_error(grads[name], numerical_gradient(f, value, dh)) < 1e-7, name

    cell = torch.nn.GRUCell(D, H).double()
    with torch.no_grad():
        cell.weight_ih.copy_(t(Wx.T))
        cell.weight_hh.copy_(t(Wh.T))
        cell.bias_ih.copy_(t(bx))
        cell.bias_hh.copy_(t(bh))
    tx, th = t(x, True), t(h_prev, True)
    h_t = cell(tx, th)
    h_t.backward(t(dh))
    assert_close(h, h_t)
    for name, ref in [("x", tx.grad), ("h_prev", th.grad), ("Wx", cell.weight_ih.grad.T),
                      ("Wh", cell.weight_hh.grad.T), ("bx", cell.bias_ih.grad), ("bh", cell.bias_hh.grad)]:
        assert_close(grads[name], ref)


def test_step_functions_agree_with_sequence_functions(rng):
    N, T, D, H = 2, 4, 3, 5
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    params = random_params(rng, D, H)
    dh = rng.standard_normal((N, T, H))
    h_seq, seq_cache = gru.gru_forward(x, h0, *params)
    h, caches = h0, []
    for step in range(T):
        h, cache = gru.gru_step_forward(x[:, step], h, *params)
        caches.append(cache)
        assert_close(h, h_seq[:, step])
    dx = np.empty_like(x)
    sums = [np.zeros_like(p) for p in params]
    dh_next = np.zeros((N, H))
    for step in reversed(range(T)):
        dx[:, step], dh_next, *dparams = gru.gru_step_backward(dh[:, step] + dh_next, caches[step])
        sums = [s + d for s, d in zip(sums, dparams, strict=True)]
    for mine, ref in zip([dx, dh_next, *sums], gru.gru_backward(dh, seq_cache), strict=True):
        assert_close(mine, ref)


def test_float32_stays_float32_and_is_close_to_float64(rng):
    N, T, D, H = 4, 6, 3, 5
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    params = random_params(rng, D, H)
    h64, cache64 = gru.gru_forward(x, h0, *params)
    h32, cache32 = gru.gru_forward(*[a.astype(np.float32) for a in (x, h0, *params)])
    dh = rng.standard_normal(h64.shape)
    grads32 = gru.gru_backward(dh.astype(np.float32), cache32)
    assert h32.dtype == np.float32 and all(g.dtype == np.float32 for g in grads32)
    np.testing.assert_allclose(h32, h64, atol=1e-5)
    for g32, g64 in zip(grads32, gru.gru_backward(dh, cache64), strict=True):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


def test_gate_activations_are_the_gates(rng):
    N, T, D, H = 2, 3, 4, 3
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, bx, bh = random_params(rng, D, H)
    h, cache = gru.gru_forward(x, h0, Wx, Wh, bx, bh)
    gates = gru.gate_activations(cache)
    assert set(gates) == {"reset", "update", "candidate"}
    u, v = x[:, 2] @ Wx + bx, h[:, 1] @ Wh + bh
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    r = sig(u[:, :H] + v[:, :H])
    assert_close(gates["reset"][:, 2], r)
    assert_close(gates["update"][:, 2], sig(u[:, H:2 * H] + v[:, H:2 * H]))
    assert_close(gates["candidate"][:, 2], np.tanh(u[:, 2 * H:] + r * v[:, 2 * H:]))


def test_torch_round_trip(rng):
    params = random_params(rng, 3, 4)
    for mine, back in zip(params, gru.from_torch(gru.to_torch(*params)), strict=True):
        np.testing.assert_array_equal(mine, back)
    module = torch.nn.GRU(3, 4, batch_first=True).double()
    x, h0 = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 4))
    out, _ = module(t(x), t(h0[None]))
    h, _ = gru.gru_forward(x, h0, *gru.from_torch(module))
    assert_close(h, out)
    with pytest.raises(ValueError, match="single-layer"):
        gru.from_torch(torch.nn.GRU(3, 4, bidirectional=True))


def test_forward_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        gru.gru_forward(np.zeros((2, 3, 4)), np.zeros((2, 5)), np.zeros((4, 15)), np.zeros((5, 10)),
                        np.zeros(15), np.zeros(15))


@pytest.mark.parametrize(("D", "H"), [(1, 1), (4, 5), (3, 2)])
def test_step_bias_gradients_differ_only_in_the_candidate_block_by_the_reset_gate(rng, D, H):
    """The gru page's derivation: du and dv agree in the r and z blocks; in the n block dv = du * r. With one
    example (N = 1) the bias gradients are du and dv themselves."""
    x, h_prev = rng.standard_normal((1, D)), rng.standard_normal((1, H))
    _, cache = gru.gru_step_forward(x, h_prev, *random_params(rng, D, H))
    *_, dbx, dbh = gru.gru_step_backward(rng.standard_normal((1, H)), cache)
    r = cache[4]  # (1, H): the reset gate
    np.testing.assert_array_equal(dbx[: 2 * H], dbh[: 2 * H])
    np.testing.assert_allclose(dbh[2 * H :], dbx[2 * H :] * r[0], rtol=1e-14, atol=0)
    assert not np.allclose(dbx[2 * H :], dbh[2 * H :]), "a non-trivial reset gate makes the n blocks differ"
