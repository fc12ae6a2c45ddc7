r"""Self-attention in numpy: scaled dot-product attention, masks, multi-head attention, positional encodings.

Dimension legend: N batch, T query positions, S key/value positions, E model width, h heads, d = E / h the width
of one head. Queries ``q (N, T, d)``, keys ``k (N, S, d)``, values ``v (N, S, dv)``; batch-major like the rest
of the course. A mask is a boolean array, ``True`` where a query may look at a key, of shape ``(T, S)`` (the
same for every sequence, e.g. causal) or ``(N, T, S)`` (e.g. padding).

Scaled dot-product attention (Vaswani et al. 2017):

.. math::

    A = \mathrm{softmax}\!\left(\frac{q k^\top}{\sqrt{d}} + M\right), \qquad \mathrm{out} = A v,

with :math:`M_{ts} = 0` where the mask allows and :math:`-\infty` where it forbids. Its backward pass, with
:math:`g = \partial L / \partial \mathrm{out}`:

.. math::

    \frac{\partial L}{\partial v} = A^\top g, \quad
    \frac{\partial L}{\partial A} = g v^\top, \quad
    \frac{\partial L}{\partial S} = A \odot \Big(\frac{\partial L}{\partial A}
        - \mathrm{rowsum}\big(A \odot \tfrac{\partial L}{\partial A}\big)\Big), \quad
    \frac{\partial L}{\partial q} = \frac{\partial L}{\partial S} \frac{k}{\sqrt d}, \quad
    \frac{\partial L}{\partial k} = \Big(\frac{\partial L}{\partial S}\Big)^{\!\top} \frac{q}{\sqrt d}.

Multi-head attention projects the inputs with ``Wq, Wk, Wv (E, E)`` and biases ``(E,)``, splits the width into
``h`` heads of ``d`` columns each, attends within each head, concatenates and projects with ``Wo (E, E)``, ``bo``.
Weights multiply from the right (``x @ W + b``), as everywhere in the course; :func:`to_torch` gives the
``torch.nn.MultiheadAttention(E, h, batch_first=True)`` with the same function.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def causal_mask(T: int, S: int | None = None) -> np.ndarray:
    """``(T, S)`` boolean mask: query t may look at keys 0..t (and no later one)."""
    S = T if S is None else S
    return np.tril(np.ones((T, S), dtype=bool))


def padding_mask(lengths: np.ndarray, T: int, S: int) -> np.ndarray:
    """``(N, T, S)`` boolean mask: every query may look at the first ``lengths[n]`` keys of sequence n."""
    keys = np.arange(S)[None, None, :] < np.asarray(lengths)[:, None, None]  # (N, 1, S)
    return np.broadcast_to(keys, (len(lengths), T, S)).copy()


def softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``, shifted by the maximum; a row whose entries are all ``-inf`` gives zeros."""
    top = np.max(scores, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(scores - top)
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


# ----------------------------------------------------------------------------------------------------------
# Scaled dot-product attention
# ----------------------------------------------------------------------------------------------------------
def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None):
    """Scaled dot-product attention of ``q (..., T, d)`` over ``k (..., S, d)``, ``v (..., S, dv)``.

    Leading axes (batch, heads) are broadcast. ``mask``: boolean ``(T, S)`` or broadcastable to the scores'
    shape ``(..., T, S)``, True where allowed. Returns ``out (..., T, dv)`` and the cache.
    """
    scale = 1.0 / np.sqrt(q.shape[-1])
    scores = (q @ np.swapaxes(k, -1, -2)) * scale  # (..., T, S)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores)  # (..., T, S)
    return weights @ v, (q, k, v, weights, scale)


def attention_backward(dout: np.ndarray, cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``dq, dk, dv`` of scaled dot-product attention, from ``dout (..., T, dv)`` and the cache."""
    q, k, v, weights, scale = cache
    dv = np.swapaxes(weights, -1, -2) @ dout  # (..., S, dv)
    dweights = dout @ np.swapaxes(v, -1, -2)  # (..., T, S)
    dscores = weights * (dweights - np.sum(weights * dweights, axis=-1, keepdims=True))  # masked entries: 0
    dq = (dscores @ k) * scale
    dk = (np.swapaxes(dscores, -1, -2) @ q) * scale
    return dq, dk, dv


# ----------------------------------------------------------------------------------------------------------
# Multi-head attention
# ----------------------------------------------------------------------------------------------------------
class MultiHeadCache(NamedTuple):
    xq: np.ndarray  # (N, T, E) the queries' inputs
    xkv: np.ndarray  # (N, S, E) the keys' and values' inputs
    params: dict
    heads: int
    attn: tuple  # the cache of attention_forward over (N, h, T, d)
    concat: np.ndarray  # (N, T, E) the heads' outputs side by side, before Wo


def init_multi_head(E: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Parameters of multi-head attention of width ``E``: uniform in +-1/sqrt(E) (like PyTorch's projections)."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(E)
    params = {name: rng.uniform(-bound, bound, (E, E)) for name in ("Wq", "Wk", "Wv", "Wo")}
    params.update({name: rng.uniform(-bound, bound, E) for name in ("bq", "bk", "bv", "bo")})
    return params


def split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """``(N, T, E)`` -> ``(N, h, T, E/h)``: head j holds columns ``j*d .. (j+1)*d - 1``."""
    N, T, E = x.shape
    return x.reshape(N, T, heads, E // heads).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """``(N, h, T, d)`` -> ``(N, T, h*d)``, the inverse of :func:`split_heads`."""
    N, h, T, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(N, T, h * d)


def multi_head_forward(xq: np.ndarray, xkv: np.ndarray, params: dict, heads: int,
                       mask: np.ndarray | None = None):
    """Multi-head attention of ``xq (N, T, E)`` over ``xkv (N, S, E)`` (the same array for self-attention).

    ``mask``: ``(T, S)`` or ``(N, T, S)``, True where allowed (broadcast over heads). Returns ``(N, T, E)``, cache.
    """
    E = xq.shape[-1]
    if E % heads:
        raise ValueError(f"the width {E} is not a multiple of the number of heads {heads}")
    p = params
    q = split_heads(xq @ p["Wq"] + p["bq"], heads)  # (N, h, T, d)
    k = split_heads(xkv @ p["Wk"] + p["bk"], heads)  # (N, h, S, d)
    v = split_heads(xkv @ p["Wv"] + p["bv"], heads)
    if mask is not None and mask.ndim == 3:
        mask = mask[:, None]  # (N, 1, T, S): the same for every head
    heads_out, attn = attention_forward(q, k, v, mask)
    concat = merge_heads(heads_out)  # (N, T, E)
    return concat @ p["Wo"] + p["bo"], MultiHeadCache(xq, xkv, p, heads, attn, concat)


def multi_head_backward(dout: np.ndarray, cache: MultiHeadCache):
    """Gradients of multi-head attention: ``dxq (N, T, E)``, ``dxkv (N, S, E)`` and a dict of parameter grads.

    For self-attention (``xq`` and ``xkv`` the same array) the input's gradient is ``dxq + dxkv``.
    """
    p, h = cache.params, cache.heads
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731  (N, T, E) -> (N*T, E)
    grads = {"Wo": flat(cache.concat).T @ flat(dout), "bo": dout.sum(axis=(0, 1))}
    dq, dk, dv = attention_backward(split_heads(dout @ p["Wo"].T, h), cache.attn)
    dq, dk, dv = merge_heads(dq), merge_heads(dk), merge_heads(dv)  # (N, T|S, E)
    dxq = dq @ p["Wq"].T
    dxkv = dk @ p["Wk"].T + dv @ p["Wv"].T
    for name, d, x in (("q", dq, cache.xq), ("k", dk, cache.xkv), ("v", dv, cache.xkv)):
        grads["W" + name] = flat(x).T @ flat(d)
        grads["b" + name] = d.sum(axis=(0, 1))
    return dxq, dxkv, grads


def to_torch(params: dict, heads: int, dtype=None):
    """A ``torch.nn.MultiheadAttention(E, heads, batch_first=True)`` computing :func:`multi_head_forward`."""
    import torch

    E = params["Wq"].shape[0]
    dtype = dtype or torch.float64
    module = torch.nn.MultiheadAttention(E, heads, batch_first=True, dtype=dtype)
    with torch.no_grad():
        module.in_proj_weight.copy_(torch.as_tensor(np.concatenate([params[w].T for w in ("Wq", "Wk", "Wv")])))
        module.in_proj_bias.copy_(torch.as_tensor(np.concatenate([params[b] for b in ("bq", "bk", "bv")])))
        module.out_proj.weight.copy_(torch.as_tensor(params["Wo"].T))
        module.out_proj.bias.copy_(torch.as_tensor(params["bo"]))
    return module


# ----------------------------------------------------------------------------------------------------------
# Positional encodings
# ----------------------------------------------------------------------------------------------------------
def sinusoidal_positions(T: int, E: int, base: float = 10000.0) -> np.ndarray:
    r"""``(T, E)`` sinusoidal positional encodings (Vaswani et al. 2017), ``E`` even.

    .. math::

        P_{t, 2i} = \sin(t / \mathrm{base}^{2i/E}), \qquad P_{t, 2i+1} = \cos(t / \mathrm{base}^{2i/E})
    """
    if E % 2:
        raise ValueError(f"the width must be even, got {E}")
    angles = np.arange(T)[:, None] / base ** (np.arange(0, E, 2) / E)[None, :]  # (T, E/2)
    enc = np.empty((T, E))
    enc[:, 0::2], enc[:, 1::2] = np.sin(angles), np.cos(angles)
    return enc
