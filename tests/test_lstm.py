"""Tests of course_lib.lstm against torch.nn.LSTM (float64) and centered numerical gradients."""

import numpy as np
import pytest
import torch
from conftest import assert_close, t

from course_lib import lstm
from course_lib.gradcheck import numerical_gradient, rel_error

SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (3, 7, 2, 4), (4, 1, 3, 3), (1, 6, 5, 2)]  # N, T, D, H


def random_params(rng, D, H, scale=0.5):
    return (rng.standard_normal((D, 4 * H)) * scale, rng.standard_normal((H, 4 * H)) * scale,
            rng.standard_normal(4 * H) * 0.5)


def random_inputs(rng, N, T, D, H):
    return rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))


@pytest.mark.parametrize(("N", "T", "D", "H"), SHAPES)
def test_forward_and_backward_match_torch(rng, N, T, D, H):
    x, h0, c0 = random_inputs(rng, N, T, D, H)
    Wx, Wh, b = random_params(rng, D, H)
    h, c, cache = lstm.lstm_forward(x, h0, c0, Wx, Wh, b)
    dh, dc_last = rng.standard_normal(h.shape), rng.standard_normal((N, H))
    dx, dh0, dc0, dWx, dWh, db = lstm.lstm_backward(dh, cache, dc_last)

    module = lstm.to_torch(Wx, Wh, b)
    tx, th0, tc0 = t(x, True), t(h0[None], True), t(c0[None], True)
    out, (hn, cn) = module(tx, (th0, tc0))
    torch.autograd.backward([out, cn[0]], [t(dh), t(dc_last)])
    assert_close(h, out)
    assert_close(h[:, -1], hn[0])
    assert_close(c[:, -1], cn[0])
    assert_close(dx, tx.grad)
    assert_close(dh0, th0.grad[0])
    assert_close(dc0, tc0.grad[0])
    assert_close(dWx, module.weight_ih_l0.grad.T)
    assert_close(dWh, module.weight_hh_l0.grad.T)
    assert_close(db, module.bias_ih_l0.grad)
    assert_close(db, module.bias_hh_l0.grad)


def test_backward_without_cell_gradient_matches_torch(rng):
    N, T, D, H = 3, 5, 2, 4
    x, h0, c0 = random_inputs(rng, N, T, D, H)
    Wx, Wh, b = random_params(rng, D, H)
    h, _, cache = lstm.lstm_forward(x, h0, c0, Wx, Wh, b)
    dh = rng.standard_normal(h.shape)
    dx, dh0, dc0, dWx, dWh, db = lstm.lstm_backward(dh, cache)
    module = lstm.to_torch(Wx, Wh, b)
    th0, tc0 = t(h0[None], True), t(c0[None], True)
    module(t(x), (th0, tc0))[0].backward(t(dh))
    assert_close(dh0, th0.grad[0])
    assert_close(dc0, tc0.grad[0])
    assert_close(dWh, module.weight_hh_l0.grad.T)


@pytest.mark.parametrize(("N", "T", "D", "H"), SHAPES[:3])
def test_sequence_backward_matches_numerical_gradient(rng, N, T, D, H):
    x, h0, c0 = random_inputs(rng, N, T, D, H)
    Wx, Wh, b = random_params(rng, D, H)
    h, c, cache = lstm.lstm_forward(x, h0, c0, Wx, Wh, b)
    dh, dc_last = rng.standard_normal(h.shape), rng.standard_normal((N, H))
    grads = dict(zip(["x", "h0", "c0", "Wx", "Wh", "b"], lstm.lstm_backward(dh, cache, dc_last), strict=True))

    def f():
        h_, c_, _ = lstm.lstm_forward(x, h0, c0, Wx, Wh, b)
        return np.sum(h_ * dh) + np.sum(c_[:, -1] * dc_last)

    # The bound is the per-step 1e-7: with T <= 7 steps the rounding error of the chained steps (about
    # T * 1e-16 / h relative to f) stays near 1e-10, far below it.
    for name, value in [("x", x), ("h0", h0), ("c0", c0), ("Wx", Wx), ("Wh", Wh), ("b", b)]:
        assert rel_error(grads[name], numerical_gradient(f, value)) < 1e-7, name


@pytest.mark.parametrize(("N", "D", "H"), [(1, 1, 1), (3, 4, 5), (2, 3, 2)])
def test_step_backward_matches_numerical_gradient_and_torch(rng, N, D, H):
    x, h_prev, c_prev = rng.standard_normal((N, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wx, Wh, b = random_params(rng, D, H)
    h, c, cache = lstm.lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b)
    dh, dc = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    grads = dict(zip(["x", "h_prev", "c_prev", "Wx", "Wh", "b"], lstm.lstm_step_backward(dh, dc, cache), strict=True))

    def f():
        h_, c_, _ = lstm.lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b)
        return np.sum(h_ * dh) + np.sum(c_ * dc)

    for name, value in [("x", x), ("h_prev", h_prev), ("c_prev", c_prev), ("Wx", Wx), ("Wh", Wh), ("b", b)]:
        assert rel_error(grads[name], numerical_gradient(f, value)) < 1e-7, name

    cell = torch.nn.LSTMCell(D, H).double()
    with torch.no_grad():
        cell.weight_ih.copy_(t(Wx.T))
        cell.weight_hh.copy_(t(Wh.T))
        cell.bias_ih.copy_(t(b))
        cell.bias_hh.zero_()
    tx, th, tc = t(x, True), t(h_prev, True), t(c_prev, True)
    h_t, c_t = cell(tx, (th, tc))
    torch.autograd.backward([h_t, c_t], [t(dh), t(dc)])
    assert_close(h, h_t)
    assert_close(c, c_t)
    for name, ref in [("x", tx.grad), ("h_prev", th.grad), ("c_prev", tc.grad), ("Wx", cell.weight_ih.grad.T),
                      ("Wh", cell.weight_hh.grad.T), ("b", cell.bias_ih.grad)]:
        assert_close(grads[name], ref)


def test_step_functions_agree_with_sequence_functions(rng):
    N, T, D, H = 2, 4, 3, 5
    x, h0, c0 = random_inputs(rng, N, T, D, H)
    Wx, Wh, b = random_params(rng, D, H)
    dh = rng.standard_normal((N, T, H))
    h_seq, c_seq, seq_cache = lstm.lstm_forward(x, h0, c0, Wx, Wh, b)
    h, c, caches = h0, c0, []
    for step in range(T):
        h, c, cache = lstm.lstm_step_forward(x[:, step], h, c, Wx, Wh, b)
        caches.append(cache)
        assert_close(h, h_seq[:, step])
        assert_close(c, c_seq[:, step])
    # backpropagation through time written with the step function gives the same gradients
    dx = np.empty_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dh_next, dc_next = np.zeros((N, H)), np.zeros((N, H))
    for step in reversed(range(T)):
        dx[:, step], dh_next, dc_next, dWx_t, dWh_t, db_t = lstm.lstm_step_backward(
            dh[:, step] + dh_next, dc_next, caches[step])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    for mine, ref in zip([dx, dh_next, dc_next, dWx, dWh, db], lstm.lstm_backward(dh, seq_cache), strict=True):
        assert_close(mine, ref)


def test_float32_stays_float32_and_is_close_to_float64(rng):
    N, T, D, H = 4, 6, 3, 5
    x, h0, c0 = random_inputs(rng, N, T, D, H)
    params = random_params(rng, D, H)
    h64, _, cache64 = lstm.lstm_forward(x, h0, c0, *params)
    f32 = [a.astype(np.float32) for a in (x, h0, c0, *params)]
    h32, c32, cache32 = lstm.lstm_forward(*f32)
    dh = rng.standard_normal(h64.shape)
    grads32 = lstm.lstm_backward(dh.astype(np.float32), cache32)
    assert h32.dtype == c32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads32)
    np.testing.assert_allclose(h32, h64, atol=1e-5)
    for g32, g64 in zip(grads32, lstm.lstm_backward(dh, cache64), strict=True):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


def test_gate_activations_are_the_gates(rng):
    N, T, D, H = 2, 3, 4, 3
    x, h0, c0 = random_inputs(rng, N, T, D, H)
    Wx, Wh, b = random_params(rng, D, H)
    h, c, cache = lstm.lstm_forward(x, h0, c0, Wx, Wh, b)
    gates = lstm.gate_activations(cache)
    assert set(gates) == {"input", "forget", "candidate", "output", "cell"}
    assert all(v.shape == (N, T, H) for v in gates.values())
    # recompute the gates of step 1 directly from their definitions
    a = x[:, 1] @ Wx + h[:, 0] @ Wh + b
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert_close(gates["input"][:, 1], sig(a[:, :H]))
    assert_close(gates["forget"][:, 1], sig(a[:, H:2 * H]))
    assert_close(gates["candidate"][:, 1], np.tanh(a[:, 2 * H:3 * H]))
    assert_close(gates["output"][:, 1], sig(a[:, 3 * H:]))
    assert_close(gates["cell"], c)


def test_sigmoid_is_stable_and_correct():
    z = np.array([-1000.0, -30.0, -1.0, 0.0, 2.0, 1000.0])
    with np.errstate(all="raise"):
        s = lstm.sigmoid(z)
    assert_close(s, torch.sigmoid(t(z)))


def test_torch_round_trip(rng):
    Wx, Wh, b = random_params(rng, 3, 4)
    Wx2, Wh2, b2 = lstm.from_torch(lstm.to_torch(Wx, Wh, b))
    np.testing.assert_array_equal(Wx, Wx2)
    np.testing.assert_array_equal(Wh, Wh2)
    np.testing.assert_array_equal(b, b2)
    module = torch.nn.LSTM(3, 4, batch_first=True).double()
    Wx, Wh, b = lstm.from_torch(module)
    assert_close(b, (module.bias_ih_l0 + module.bias_hh_l0).detach())
    # the converted weights reproduce the module's output, with both of its biases in use
    x, h0, c0 = random_inputs(rng, 2, 3, 3, 4)
    out, (hn, cn) = module(t(x), (t(h0[None]), t(c0[None])))
    h, c, _ = lstm.lstm_forward(x, h0, c0, Wx, Wh, b)
    assert_close(h, out)
    assert_close(c[:, -1], cn[0])
    with pytest.raises(ValueError, match="single-layer"):
        lstm.from_torch(torch.nn.LSTM(3, 4, num_layers=2))


def test_forward_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        lstm.lstm_forward(np.zeros((2, 3, 4)), np.zeros((2, 5)), np.zeros((2, 5)), np.zeros((4, 5)),
                          np.zeros((5, 20)), np.zeros(20))


def test_stand_in_is_a_tanh_rnn_on_h_and_c_with_matching_gradients(rng):
    """Assignment 4's stand-in: h of the tanh RNN on [h, c]; its backward pass and classifier loss agree with
    numerical gradients (relative error below 1e-7; tanh of small inputs, float64)."""
    from course_lib.rnn import rnn_forward

    N, T, D, H, C = 2, 3, 3, 2, 3
    x, h0, c0 = random_inputs(rng, N, T, D, H)
    Wx, Wh, b = random_params(rng, D, H)
    h, cache = lstm.stand_in_sequence_forward(x, h0, c0, Wx, Wh, b)
    s = rnn_forward(x, np.concatenate([h0, c0], axis=1), Wx[:, :2 * H], Wh.reshape(2 * H, 2 * H), b[:2 * H])[0]
    assert h.shape == (N, T, H)
    assert_close(h, s[:, :, :H])
    dh = rng.standard_normal((N, T, H))
    grads = lstm.stand_in_sequence_backward(dh, cache)
    for value, name in zip((x, h0, c0, Wx, Wh, b), ["x", "h0", "c0", "Wx", "Wh", "b"], strict=True):
        args = dict(x=x, h0=h0, c0=c0, Wx=Wx, Wh=Wh, b=b)
        num = numerical_gradient(lambda a=args: lstm.stand_in_sequence_forward(**a)[0], value, dh)
        got = grads[["x", "h0", "c0", "Wx", "Wh", "b"].index(name)]
        assert got.shape == value.shape
        assert rel_error(got, num) < 1e-7, name
    params = {"Wx": Wx, "Wh": Wh, "b": b, "Wy": rng.standard_normal((H, C)), "by": rng.standard_normal(C)}
    y = rng.integers(0, C, N)
    loss = lstm.stand_in_classifier_loss(params, x, y)
    scores = lstm.stand_in_sequence_forward(x, np.zeros((N, H)), np.zeros((N, H)), Wx, Wh, b)[0][:, -1] \
        @ params["Wy"] + params["by"]
    shifted = scores - scores.max(axis=1, keepdims=True)
    assert loss == pytest.approx(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(N), y]), rel=1e-12)
