"""Tests of course_lib.gradients: per-step gradients vs torch autograd, clipping vs torch, the initialisers,
the spectral-radius construction and the long-range task generators (labels recomputed independently)."""

import numpy as np
import pytest
import torch
from conftest import assert_close, t

from course_lib import gradients as gr
from course_lib import rnn

SHAPES = [(1, 1, 1, 1), (2, 5, 3, 4), (3, 12, 2, 6), (4, 30, 3, 8)]  # N, T, D, H


def torch_hidden_grads(x, h0, Wx, Wh, b, dh):
    """dL/dh_t for L = sum(dh * h), by torch autograd on an explicitly unrolled tanh RNN (retain_grad)."""
    tWx, tWh, tb = t(Wx, True), t(Wh, True), t(b, True)
    h, states = t(h0, True), []
    for step in range(x.shape[1]):
        h = torch.tanh(t(x[:, step]) @ tWx + h @ tWh + tb)
        h.retain_grad()
        states.append(h)
    (torch.stack(states, dim=1) * t(dh)).sum().backward()
    return torch.stack([s.grad for s in states], dim=1)


@pytest.mark.parametrize(("N", "T", "D", "H"), SHAPES)
@pytest.mark.parametrize("loss_on", ["last", "every"])
def test_hidden_state_grads_match_torch_autograd(rng, N, T, D, H, loss_on):
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H)) * 0.5
    Wx, Wh, b = rng.standard_normal((D, H)), gr.recurrent_matrix(H, 1.2, seed=3), rng.standard_normal(H) * 0.1
    dh = rng.standard_normal((N, T, H))
    if loss_on == "last":
        dh[:, :-1] = 0.0
    _, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
    expected = torch_hidden_grads(x, h0, Wx, Wh, b, dh)
    assert_close(gr.hidden_state_grads(dh, cache), expected)
    assert_close(gr.per_step_grad_norms(dh, cache), torch.linalg.vector_norm(expected, dim=(0, 2)))


def test_hidden_state_grads_agree_with_rnn_backward(rng):
    """dL/dh_0 of rnn_backward is one more step of the same recursion."""
    N, T, D, H = 3, 6, 2, 5
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, H)), rng.standard_normal((H, H)) * 0.5, rng.standard_normal(H)
    h, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
    dh = rng.standard_normal(h.shape)
    g = gr.hidden_state_grads(dh, cache)
    _, dh0, *_ = rnn.rnn_backward(dh, cache)
    assert_close(dh0, (g[:, 0] * (1 - h[:, 0] ** 2)) @ Wh.T)


def test_linear_regime_norms_shrink_by_exactly_rho_for_a_scaled_orthogonal_matrix():
    """With tanh' = 1 (a tiny signal) and Wh = rho Q, each step back multiplies the norm by rho."""
    N, T, H, rho = 2, 40, 16, 0.9
    Wh = gr.recurrent_matrix(H, rho, seed=0, kind="orthogonal")
    x = np.zeros((N, T, 1))
    _, cache = rnn.rnn_forward(x, np.zeros((N, H)), np.zeros((1, H)), Wh, np.zeros(H))
    dh = np.zeros((N, T, H))
    dh[:, -1] = np.random.default_rng(0).standard_normal((N, H))
    norms = gr.per_step_grad_norms(dh, cache)
    np.testing.assert_allclose(norms[:-1] / norms[1:], rho, rtol=1e-12)
    assert gr.fitted_rate(norms) == pytest.approx(rho, rel=1e-12)
    assert gr.predicted_rate(Wh) == pytest.approx(rho, rel=1e-12)


@pytest.mark.parametrize("rate", [0.5, 0.93, 1.0, 1.07])
def test_fitted_rate_recovers_a_geometric_sequence(rate):
    k = np.arange(25)[::-1]  # steps back: the last entry is the last step
    norms = 3.0 * rate**k * np.exp(0.01 * np.sin(k))  # a small wobble around the line
    assert gr.fitted_rate(norms) == pytest.approx(rate, rel=1e-3)
    with pytest.raises(ValueError):
        gr.fitted_rate(np.array([1.0, 0.0, 2.0]))


@pytest.mark.parametrize("kind", ["gaussian", "orthogonal"])
@pytest.mark.parametrize(("H", "rho"), [(1, 0.5), (8, 0.9), (32, 1.0), (64, 1.3)])
def test_recurrent_matrix_hits_the_target_spectral_radius(H, rho, kind):
    Wh = gr.recurrent_matrix(H, rho, seed=7, kind=kind)
    assert Wh.shape == (H, H)
    eigenvalues = torch.linalg.eigvals(t(Wh))  # an independent eigensolver call
    assert float(eigenvalues.abs().max()) == pytest.approx(rho, rel=1e-10)
    assert gr.spectral_radius(Wh) == pytest.approx(rho, rel=1e-10)
    np.testing.assert_array_equal(Wh, gr.recurrent_matrix(H, rho, seed=7, kind=kind))
    if H > 1:
        assert not np.array_equal(Wh, gr.recurrent_matrix(H, rho, seed=8, kind=kind))


def test_spectral_radius_of_known_matrices():
    assert gr.spectral_radius(np.array([[0.0, -2.0], [2.0, 0.0]])) == pytest.approx(2.0)  # eigenvalues +-2i
    assert gr.spectral_radius(np.diag([0.3, -0.7, 0.5])) == pytest.approx(0.7)
    assert gr.spectral_radius(np.array([[0.0, 100.0], [0.0, 0.0]])) == 0.0  # nilpotent: large norm, radius 0
    with pytest.raises(ValueError):
        gr.spectral_radius(np.ones((2, 3)))


@pytest.mark.parametrize("shape", [1, 5, 32, (3, 7), (7, 3)])
def test_orthogonal_is_orthogonal(shape):
    Q = gr.orthogonal(shape, seed=0)
    rows, cols = (shape, shape) if isinstance(shape, int) else shape
    assert Q.shape == (rows, cols)
    small = min(rows, cols)
    gram = Q @ Q.T if rows <= cols else Q.T @ Q
    assert_close(gram, np.eye(small))
    assert_close(np.linalg.svd(Q, compute_uv=False), np.ones(small))
    assert_close(gr.orthogonal(shape, seed=0, gain=2.5), 2.5 * Q)
    np.testing.assert_array_equal(Q, gr.orthogonal(shape, seed=0))
    if small > 1:
        assert not np.allclose(Q, gr.orthogonal(shape, seed=1))


def test_identity_init():
    np.testing.assert_array_equal(gr.identity(4), np.eye(4))
    np.testing.assert_array_equal(gr.identity(3, scale=0.01), 0.01 * np.eye(3))


# ----------------------------------------------------------------------------------------------------------
# Clipping
# ----------------------------------------------------------------------------------------------------------
def torch_grads(arrays):
    params = [torch.zeros(a.shape, dtype=torch.float64, requires_grad=True) for a in arrays]
    for p, a in zip(params, arrays, strict=True):
        p.grad = t(a)
    return params


# max_norm relative to the true global norm: far below, just below, equal (the eps case), above, far above
@pytest.mark.parametrize("ratio", [0.01, 0.5, 1.0, 1.5, 100.0])
def test_clip_by_global_norm_matches_torch(rng, ratio):
    arrays = [rng.standard_normal((3, 4)), rng.standard_normal(4) * 10, rng.standard_normal((2, 2, 2))]
    norm = np.sqrt(sum(np.sum(a * a) for a in arrays))
    max_norm = ratio * norm
    before = [a.copy() for a in arrays]
    clipped, total = gr.clip_by_global_norm(arrays, max_norm)
    params = torch_grads(arrays)
    torch_total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    assert total == pytest.approx(float(torch_total), rel=1e-14)
    for mine, p in zip(clipped, params, strict=True):
        assert_close(mine, p.grad, rtol=1e-14, atol=0)
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)  # inputs untouched
    if ratio > 1:  # below the threshold: returned exactly as they were
        for mine, a in zip(clipped, arrays, strict=True):
            np.testing.assert_array_equal(mine, a)
    else:  # clipped to max_norm / (1 + eps / norm): slightly below max_norm, as torch does
        new_norm = np.sqrt(sum(np.sum(c * c) for c in clipped))
        assert new_norm == pytest.approx(max_norm * norm / (norm + 1e-6), rel=1e-13)
        assert new_norm < max_norm


def test_clip_by_global_norm_keeps_dict_keys_and_handles_zero_gradients(rng):
    grads = {"Wx": rng.standard_normal((2, 3)) * 100, "b": rng.standard_normal(3)}
    clipped, total = gr.clip_by_global_norm(grads, 1.0)
    assert list(clipped) == ["Wx", "b"]
    assert total == pytest.approx(np.sqrt(np.sum(grads["Wx"] ** 2) + np.sum(grads["b"] ** 2)))
    direction = np.concatenate([g.ravel() for g in grads.values()]) / total
    new = np.concatenate([g.ravel() for g in clipped.values()])
    assert_close(new / np.linalg.norm(new), direction)  # same direction, shorter
    zero, total = gr.clip_by_global_norm([np.zeros(3)], 1.0)
    assert total == 0.0 and np.all(zero[0] == 0.0)
    with pytest.raises(ValueError):
        gr.clip_by_global_norm([np.ones(2)], 0.0)


@pytest.mark.parametrize("ratio", [0.1, 1.0, 3.0])
def test_torch_clip_grad_norm_matches_torch_utils(rng, ratio):
    arrays = [rng.standard_normal((5, 3)), rng.standard_normal(3)]
    max_norm = ratio * np.sqrt(sum(np.sum(a * a) for a in arrays))
    mine, ref = torch_grads(arrays), torch_grads(arrays)
    extra = torch.zeros(2, requires_grad=True)  # a parameter without a gradient is skipped by both
    total = gr.clip_grad_norm_([*mine, extra], max_norm)
    ref_total = torch.nn.utils.clip_grad_norm_([*ref, extra], max_norm)
    assert_close(total, ref_total, rtol=1e-15, atol=0)
    for a, b in zip(mine, ref, strict=True):
        assert_close(a.grad, b.grad, rtol=1e-15, atol=0)
    assert extra.grad is None


def test_torch_clip_grad_norm_on_a_model_matches_numpy():
    torch.manual_seed(0)
    model = torch.nn.RNN(3, 4, batch_first=True).double()
    out, _ = model(torch.randn(2, 5, 3, dtype=torch.float64))
    (out**2).sum().mul(50).backward()
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    clipped, total = gr.clip_by_global_norm(grads, 0.5)
    torch_total = gr.clip_grad_norm_(model.parameters(), 0.5)
    assert total == pytest.approx(float(torch_total), rel=1e-14)
    for c, p in zip(clipped, model.parameters(), strict=True):
        assert_close(c, p.grad, rtol=1e-14, atol=0)


# ----------------------------------------------------------------------------------------------------------
# Task generators
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [2, 3, 10, 101])
def test_adding_problem_labels_and_layout(T):
    n = 500
    x, y = gr.adding_problem(n, T, seed=5)
    assert x.shape == (n, T, 2) and y.shape == (n,)
    assert x.dtype == np.float64 and y.dtype == np.float64
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers)) <= {0.0, 1.0}
    half = T // 2
    for i in range(n):  # an independent computation of each label, one sequence at a time
        marked = [step for step in range(T) if markers[i, step] == 1.0]
        assert len(marked) == 2
        assert marked[0] < half <= marked[1]
        assert y[i] == values[i, marked[0]] + values[i, marked[1]]


def test_adding_problem_is_seeded_and_spreads_its_markers():
    x1, y1 = gr.adding_problem(200, 20, seed=0)
    x2, y2 = gr.adding_problem(200, 20, seed=0)
    x3, y3 = gr.adding_problem(200, 20, seed=1)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3) and not np.array_equal(y1, y3)
    positions = np.nonzero(x1[..., 1])[1]
    assert set(positions) == set(range(20))  # every step is marked somewhere in 200 sequences
    # the target's mean is 1 (two uniform values): a loose statistical check with 200 000 sequences
    _, y = gr.adding_problem(200_000, 4, seed=2)
    assert abs(y.mean() - 1.0) < 0.01


@pytest.mark.parametrize(("lag", "length", "n_symbols"), [(1, 1, 2), (5, 1, 8), (20, 3, 4), (50, 10, 8)])
def test_copy_task_labels_and_layout(lag, length, n_symbols):
    n = 300
    x, y = gr.copy_task(n, lag, length=length, n_symbols=n_symbols, seed=11)
    assert x.shape == (n, 2 * length + lag) and y.shape == (n, length)
    assert x.dtype == np.int64 and y.dtype == np.int64
    blank, delimiter = 0, n_symbols + 1
    for i in range(n):  # rebuild each sequence from its label, independently of the generator
        expected = list(y[i]) + [blank] * (lag - 1) + [delimiter] + [blank] * length
        assert list(x[i]) == expected
        assert all(1 <= s <= n_symbols for s in y[i])
    assert set(np.unique(y)) == set(range(1, n_symbols + 1))  # every symbol occurs


def test_copy_task_is_seeded():
    a = gr.copy_task(100, 10, length=2, seed=3)
    b = gr.copy_task(100, 10, length=2, seed=3)
    c = gr.copy_task(100, 10, length=2, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    with pytest.raises(ValueError):
        gr.copy_task(10, 0)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_torch_hidden_state_grads_of_an_nn_rnn(rng, nonlinearity):
    N, T, D, H = 3, 9, 2, 5
    torch.manual_seed(0)
    module = torch.nn.RNN(D, H, nonlinearity=nonlinearity, batch_first=True).double()
    x, h0, dh = rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), rng.standard_normal((N, T, H))
    g = gr.torch_hidden_state_grads(module, t(x), t(dh), t(h0))
    assert all(p.grad is None for p in module.parameters())
    # reference 1: torch's fused nn.RNN; dL/dh0 is one more step of the recursion from g[:, 0]
    th0 = t(h0[None], True)
    out, _ = module(t(x), th0)
    (out * t(dh)).sum().backward()
    Wh = module.weight_hh_l0.detach().numpy().T
    h1 = out[:, 0].detach().numpy()
    slope = 1 - h1**2 if nonlinearity == "tanh" else (h1 > 0).astype(float)
    assert_close(th0.grad[0], (g[:, 0].numpy() * slope) @ Wh.T)
    if nonlinearity == "tanh":  # reference 2: the numpy recursion on course_lib.rnn's forward
        _, cache = rnn.rnn_forward(x, h0, *rnn.from_torch(module))
        assert_close(g, gr.hidden_state_grads(dh, cache))


def test_mean_field_rate_is_rho_in_the_linear_regime_and_smaller_when_saturated():
    Wh = gr.recurrent_matrix(16, 0.9, seed=0, kind="orthogonal")  # ||Wh||_F^2 / H = rho^2 exactly
    assert gr.mean_field_rate(Wh, np.zeros((2, 5, 16))) == pytest.approx(0.9, rel=1e-12)
    h = np.full((2, 5, 16), 0.5)  # every slope 1 - h^2 = 0.75
    assert gr.mean_field_rate(Wh, h) == pytest.approx(0.9 * 0.75, rel=1e-12)


def test_copy_task_distractors_fill_the_gap_from_their_own_alphabet():
    x, y = gr.copy_task(50, lag=7, length=2, n_symbols=5, seed=3, n_distractors=4)
    x0, y0 = gr.copy_task(50, lag=7, length=2, n_symbols=5, seed=3)
    np.testing.assert_array_equal(y, y0)  # the same symbols to remember
    np.testing.assert_array_equal(x[:, :2], y)
    gap = x[:, 2 : 2 + 6]  # the lag - 1 steps before the delimiter
    assert gap.min() >= 5 + 2 and gap.max() <= 5 + 1 + 4
    assert len(np.unique(gap)) == 4
    assert np.all(x[:, 8] == 6) and np.all(x[:, 9:] == 0)  # delimiter, then blanks
    with pytest.raises(ValueError):
        gr.copy_task(5, 3, n_distractors=-1)


def test_elementwise_clipping_at_zero_freezes_the_weights():
    frozen = gr.train_adding_problem(6, hidden=4, steps=4, batch_size=3, lr=0.0)
    clipped = gr.train_adding_problem(6, hidden=4, steps=4, batch_size=3, lr=0.5, clip_value=0.0)
    np.testing.assert_allclose(clipped.losses, frozen.losses, rtol=1e-6)
