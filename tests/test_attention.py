"""course_lib.attention: numpy self-attention against PyTorch (float64) and against numerical gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import attention as at
from course_lib.gradcheck import numerical_gradient, rel_error


def qkv(seed=0, N=2, T=4, S=5, d=3, dv=2):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, T, d)), rng.standard_normal((N, S, d)), rng.standard_normal((N, S, dv))


@pytest.mark.parametrize("masked", [False, True])
def test_attention_matches_torch_sdpa(masked):
    q, k, v = qkv()
    mask = at.causal_mask(4, 5) if masked else None
    out, _ = at.attention_forward(q, k, v, mask)
    t = [torch.tensor(a) for a in (q, k, v)]
    expected = torch.nn.functional.scaled_dot_product_attention(
        *t, attn_mask=None if mask is None else torch.tensor(mask))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding"])
def test_attention_backward_matches_numerical_and_torch(mask_kind):
    q, k, v = qkv(1)
    mask = {"none": None, "causal": at.causal_mask(4, 5),
            "padding": at.padding_mask(np.array([5, 2]), 4, 5)}[mask_kind]
    dout = np.random.default_rng(2).standard_normal((2, 4, 2))
    _, cache = at.attention_forward(q, k, v, mask)
    grads = at.attention_backward(dout, cache)
    for x, g in zip((q, k, v), grads, strict=True):
        num = numerical_gradient(lambda: at.attention_forward(q, k, v, mask)[0], x, dout)
        assert rel_error(g, num) < 1e-8
    t = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    torch.nn.functional.scaled_dot_product_attention(
        *t, attn_mask=None if mask is None else torch.tensor(mask)).backward(torch.tensor(dout))
    for g, tt in zip(grads, t, strict=True):
        np.testing.assert_allclose(g, tt.grad.numpy(), rtol=1e-11, atol=1e-13)


def test_causal_mask_keeps_the_future_out():
    q, k, v = qkv(3, T=5, S=5)
    out, _ = at.attention_forward(q, k, v, at.causal_mask(5))
    v2 = v.copy()
    v2[:, 3:] += 100.0  # changing keys/values at positions 3, 4 changes nothing before position 3
    k2 = k.copy()
    k2[:, 3:] -= 7.0
    out2, _ = at.attention_forward(q, k2, v2, at.causal_mask(5))
    np.testing.assert_array_equal(out[:, :3], out2[:, :3])
    assert not np.allclose(out[:, 3:], out2[:, 3:])


def test_fully_masked_row_gives_zeros_not_nan():
    q, k, v = qkv(4)
    mask = np.ones((4, 5), dtype=bool)
    mask[0] = False
    out, cache = at.attention_forward(q, k, v, mask)
    assert np.all(out[:, 0] == 0) and np.isfinite(out).all()
    assert all(np.isfinite(g).all() for g in at.attention_backward(np.ones_like(out), cache))


@pytest.mark.parametrize("self_attention", [True, False])
def test_multi_head_matches_torch_forward_and_backward(self_attention):
    rng = np.random.default_rng(5)
    N, T, S, E, h = 2, 4, 6, 8, 2
    xq = rng.standard_normal((N, T, E))
    xkv = xq if self_attention else rng.standard_normal((N, S, E))
    mask = at.causal_mask(T) if self_attention else at.padding_mask(np.array([6, 3]), T, S)
    params = at.init_multi_head(E, seed=6)
    out, cache = at.multi_head_forward(xq, xkv, params, h, mask)
    module = at.to_torch(params, h)
    tq = torch.tensor(xq, requires_grad=True)
    tkv = tq if self_attention else torch.tensor(xkv, requires_grad=True)
    tmask = torch.tensor(~mask if mask.ndim == 2 else np.repeat(~mask, h, axis=0))  # torch: True = forbidden
    expected, _ = module(tq, tkv, tkv, attn_mask=tmask, need_weights=False)
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-11, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    expected.backward(torch.tensor(dout))
    dxq, dxkv, grads = at.multi_head_backward(dout, cache)
    if self_attention:
        np.testing.assert_allclose(dxq + dxkv, tq.grad.numpy(), rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_allclose(dxq, tq.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dxkv, tkv.grad.numpy(), rtol=1e-10, atol=1e-12)
    w = module.in_proj_weight.grad.numpy()
    b = module.in_proj_bias.grad.numpy()
    for i, name in enumerate("qkv"):
        np.testing.assert_allclose(grads["W" + name], w[i * E:(i + 1) * E].T, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads["b" + name], b[i * E:(i + 1) * E], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["Wo"], module.out_proj.weight.grad.numpy().T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["bo"], module.out_proj.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_multi_head_parameter_gradients_match_numerical():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4))
    params = at.init_multi_head(4, seed=8)
    dout = rng.standard_normal((2, 3, 4))
    _, cache = at.multi_head_forward(x, x, params, 2, at.causal_mask(3))
    _, _, grads = at.multi_head_backward(dout, cache)
    for name, value in params.items():
        num = numerical_gradient(lambda: at.multi_head_forward(x, x, params, 2, at.causal_mask(3))[0], value, dout)
        if name == "bk":  # a key bias adds q . bk to every score of a row: softmax ignores it, the gradient is 0
            np.testing.assert_allclose(grads[name], 0.0, atol=1e-12)
            np.testing.assert_allclose(num, 0.0, atol=1e-9)
        else:
            assert rel_error(grads[name], num) < 1e-7, name


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="multiple of the number of heads"):
        at.multi_head_forward(np.zeros((1, 2, 6)), np.zeros((1, 2, 6)), at.init_multi_head(6), 4)


def test_sinusoidal_positions():
    P = at.sinusoidal_positions(50, 16)
    assert P.shape == (50, 16)
    np.testing.assert_allclose(P[0, 0::2], 0.0)
    np.testing.assert_allclose(P[0, 1::2], 1.0)
    np.testing.assert_allclose(P[7, 2], np.sin(7 / 10000 ** (2 / 16)))
    # the encoding of position t + k is a rotation of that of t, the same for every t (per frequency pair)
    for t in (3, 20):
        a, b = P[t, 2:4], P[t + 5, 2:4]
        angle = 5 / 10000 ** (2 / 16)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        np.testing.assert_allclose(a @ rot, b, atol=1e-12)
    with pytest.raises(ValueError):
        at.sinusoidal_positions(4, 5)
