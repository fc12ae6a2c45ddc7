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


# ----------------------------------------------------------------------------------------------------------
# temporal softmax loss, sampling, clipping
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("N", "T", "V"), [(1, 1, 2), (3, 5, 7), (4, 2, 10)])
def test_temporal_softmax_loss_matches_torch_cross_entropy_with_mask(rng, N, T, V):
    x = rng.standard_normal((N, T, V)) * 2
    y = rng.integers(0, V, (N, T))
    mask = rng.random((N, T)) < 0.7
    mask[0, 0] = True  # at least one step counts
    y_padded = np.where(mask, y, -1)  # padding holds an invalid label, which must be ignored
    loss, dx = rnn.temporal_softmax_loss(x, y_padded, mask)
    tx = t(x, True)
    target = torch.tensor(np.where(mask, y, -100))
    ref = torch.nn.functional.cross_entropy(tx.reshape(-1, V), target.reshape(-1), ignore_index=-100)
    ref.backward()
    assert_close(loss, ref.item())
    assert_close(dx, tx.grad)
    assert np.all(dx[~mask] == 0)


def test_temporal_softmax_loss_gradient_matches_numerical(rng):
    N, T, V = 3, 4, 5
    x, y = rng.standard_normal((N, T, V)), rng.integers(0, V, (N, T))
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)  # three lengths, padded
    _, dx = rnn.temporal_softmax_loss(x, y, mask)
    num = numerical_gradient(lambda: rnn.temporal_softmax_loss(x, y, mask)[0], x)
    assert rel_error(dx, num) < 1e-7


def test_temporal_softmax_loss_without_mask_is_the_plain_mean_and_rejects_bad_input(rng):
    x, y = rng.standard_normal((2, 3, 4)), rng.integers(0, 4, (2, 3))
    loss, _ = rnn.temporal_softmax_loss(x, y)
    ref = torch.nn.functional.cross_entropy(t(x).reshape(-1, 4), torch.tensor(y).reshape(-1))
    assert_close(loss, ref.item())
    assert rnn.temporal_softmax_loss(x, y, np.zeros((2, 3), bool))[0] == 0.0
    with pytest.raises(ValueError, match="targets"):
        rnn.temporal_softmax_loss(x, np.full((2, 3), 4), None)
    with pytest.raises(ValueError, match="mask"):
        rnn.temporal_softmax_loss(x, y, np.ones((3, 2), bool))


def test_sampling_is_deterministic_given_the_seed_and_greedy_at_zero_temperature(rng):
    scores = rng.standard_normal((5, 8))
    a = rnn.sample_from_scores(scores, 1.0, np.random.default_rng(7))
    b = rnn.sample_from_scores(scores, 1.0, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(rnn.sample_from_scores(scores, 0.0), scores.argmax(axis=1))
    assert rnn.sample_from_scores(scores[0], 0.0) == scores[0].argmax()
    with pytest.raises(ValueError, match="temperature"):
        rnn.sample_from_scores(scores, -1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        rnn.sample_from_scores(scores, 1.0)


def test_sampling_frequencies_follow_the_tempered_softmax():
    scores = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    many = np.tile(scores, (40_000, 1))  # 40,000 independent draws, one per row
    for temperature in [0.5, 1.0, 2.0]:
        draws = rnn.sample_from_scores(many, temperature, np.random.default_rng(0))
        freq = np.bincount(draws, minlength=4) / len(draws)
        p = np.exp(scores / temperature)
        p /= p.sum()
        # 40,000 draws: the standard error of each frequency is below 0.0025; 0.01 is 4 of them
        np.testing.assert_allclose(freq, p, atol=0.01)
    # low temperatures concentrate on the argmax, high ones flatten towards uniform
    cold = rnn.sample_from_scores(many, 0.05, np.random.default_rng(1))
    hot = rnn.sample_from_scores(many, 100.0, np.random.default_rng(1))
    assert np.mean(cold == 0) > 0.99
    np.testing.assert_allclose(np.bincount(hot, minlength=4) / len(hot), 0.25, atol=0.01)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sequence_functions_keep_the_dtype(rng, dtype):
    N, T, D, H = 2, 3, 4, 5
    x, h0 = rng.standard_normal((N, T, D)).astype(dtype), rng.standard_normal((N, H)).astype(dtype)
    Wx, Wh, b = (a.astype(dtype) for a in random_params(rng, D, H))
    h, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
    assert h.dtype == dtype
    assert all(g.dtype == dtype for g in rnn.rnn_backward(np.ones_like(h), cache))


def test_backward_does_not_modify_its_inputs(rng):
    N, T, D, H = 2, 4, 3, 5
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = random_params(rng, D, H)
    h, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
    dh = rng.standard_normal(h.shape)
    copies = [a.copy() for a in (x, h0, Wx, Wh, b, h, dh)]
    first = rnn.rnn_backward(dh, cache)
    second = rnn.rnn_backward(dh, cache)  # the cache must survive a first backward pass unchanged
    for a, c in zip((x, h0, Wx, Wh, b, h, dh), copies, strict=True):
        np.testing.assert_array_equal(a, c)
    for g1, g2 in zip(first, second, strict=True):
        np.testing.assert_array_equal(g1, g2)


def test_carrying_the_state_over_chunks_equals_one_long_forward_pass(rng):
    """Truncated BPTT's forward half: chunk after chunk with the last state carried is the full sequence."""
    N, T, D, H = 2, 12, 3, 4
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = random_params(rng, D, H)
    full, _ = rnn.rnn_forward(x, h0, Wx, Wh, b)
    h, chunks = h0, []
    for start in range(0, T, 5):  # chunks of 5, 5 and 2 steps
        out, _ = rnn.rnn_forward(x[:, start : start + 5], h, Wx, Wh, b)
        chunks.append(out)
        h = out[:, -1]
    assert_close(np.concatenate(chunks, axis=1), full)


@pytest.mark.parametrize("k1, k2", [(1, 1), (3, 3), (4, 7), (1, 5), (5, 20)])
def test_truncated_bptt_grads_match_a_direct_per_loss_truncation(rng, k1, k2):
    """Each loss in window [start, end) reaches back to the window's start and no further: summing, loss by
    loss, the gradient of a window that starts there and holds only that loss gives the same answer."""
    N, T, D, H = 2, 13, 3, 4
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = random_params(rng, D, H)
    dh = rng.standard_normal((N, T, H))
    h, _ = rnn.rnn_forward(x, h0, Wx, Wh, b)
    expected = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
    for step in range(T):
        end = min(T, (step // k1 + 1) * k1)  # the window whose last k1 steps hold this step
        start = max(0, end - k2)
        _, cache = rnn.rnn_forward(x[:, start : step + 1], h0 if start == 0 else h[:, start - 1], Wx, Wh, b)
        one = np.zeros((N, step + 1 - start, H))
        one[:, -1] = dh[:, step]
        for acc, g in zip(expected, rnn.rnn_backward(one, cache)[2:], strict=True):
            acc += g
    for got, want in zip(rnn.truncated_bptt_grads(x, h0, Wx, Wh, b, dh, k1, k2), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_truncated_bptt_with_a_long_window_is_full_bptt(rng):
    N, T, D, H = 2, 9, 3, 4
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = random_params(rng, D, H)
    dh = rng.standard_normal((N, T, H))
    _, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
    full = rnn.rnn_backward(dh, cache)[2:]
    for got, want in zip(rnn.truncated_bptt_grads(x, h0, Wx, Wh, b, dh, k1=1, k2=T), full, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="k1 <= k2"):
        rnn.truncated_bptt_grads(x, h0, Wx, Wh, b, dh, k1=4, k2=2)
