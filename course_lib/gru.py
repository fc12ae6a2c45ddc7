r"""The gated recurrent unit (GRU) in numpy, in PyTorch's formulation: step and whole-sequence passes.

Dimension legend: N batch, T time steps, D input features, H hidden units. Inputs are batch-major
``(N, T, D)``, hidden states ``(N, T, H)``; weights ``Wx (D, 3H)``, ``Wh (H, 3H)`` and two biases
``bx (3H,)``, ``bh (3H,)``, whose column blocks are the reset gate :math:`r`, the update gate :math:`z` and the
candidate :math:`n`, in PyTorch's order:

.. math::

    \begin{aligned}
    r_t &= \sigma(x_t W_{xr} + b_{xr} + h_{t-1} W_{hr} + b_{hr}) \\
    z_t &= \sigma(x_t W_{xz} + b_{xz} + h_{t-1} W_{hz} + b_{hz}) \\
    n_t &= \tanh\big(x_t W_{xn} + b_{xn} + r_t \odot (h_{t-1} W_{hn} + b_{hn})\big) \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
    \end{aligned}

The reset gate multiplies :math:`h_{t-1} W_{hn} + b_{hn}` *after* the product (Cho et al. put it before), which
is why the two biases cannot be merged into one. This is ``torch.nn.GRU(D, H, batch_first=True)`` with
``weight_ih_l0 = Wx.T``, ``weight_hh_l0 = Wh.T``, ``bias_ih_l0 = bx`` and ``bias_hh_l0 = bh``.

As in :mod:`course_lib.lstm`, the sequence functions precompute the input projection of all steps, do one
``(N, H) x (H, 3H)`` product and a few in-place elementwise operations per step, and compute the weight and
input gradients with one product each after the backward loop.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from course_lib.lstm import _gate_scale, sigmoid
from course_lib.rnn import torch_layer

GATE_NAMES = ("reset", "update", "candidate")  # the column blocks r, z, n of Wx, Wh, bx and bh


# ----------------------------------------------------------------------------------------------------------
# One time step: the readable version
# ----------------------------------------------------------------------------------------------------------
def gru_step_forward(
    x: np.ndarray, h_prev: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, bx: np.ndarray, bh: np.ndarray
) -> tuple[np.ndarray, tuple]:
    r"""One time step of a GRU (PyTorch's formulation).

    .. math::

        \begin{aligned}
        u &= x W_x + b_x, \quad v = h_{\mathrm{prev}} W_h + b_h, \quad
        r = \sigma(u^r + v^r), \quad z = \sigma(u^z + v^z), \\
        n &= \tanh(u^n + r \odot v^n), \quad h = (1 - z) \odot n + z \odot h_{\mathrm{prev}}
        \end{aligned}

    Args:
        x: input at this step, ``(N, D)``.
        h_prev: previous hidden state, ``(N, H)``.
        Wx: ``(D, 3H)``; Wh: ``(H, 3H)``; bx: ``(3H,)``; bh: ``(3H,)``; gate blocks ``r, z, n``.

    Returns:
        h: next hidden state ``(N, H)``; cache: ``(x, h_prev, Wx, Wh, r, z, n, vn)`` for
        :func:`gru_step_backward` (``vn`` is :math:`v^n = h_{\mathrm{prev}} W_{hn} + b_{hn}`).
    """
    H = h_prev.shape[1]
    u = x @ Wx + bx  # (N, 3H)
    v = h_prev @ Wh + bh  # (N, 3H)
    r = sigmoid(u[:, :H] + v[:, :H])
    z = sigmoid(u[:, H : 2 * H] + v[:, H : 2 * H])
    vn = v[:, 2 * H :]
    n = np.tanh(u[:, 2 * H :] + r * vn)
    h = (1.0 - z) * n + z * h_prev
    return h, (x, h_prev, Wx, Wh, r, z, n, vn)


def gru_step_backward(dh: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    r"""Backward pass of :func:`gru_step_forward`.

    The input and hidden pre-activations share the gradients of the gates but differ in the candidate block:

    .. math::

        \begin{aligned}
        du^n &= dh \odot (1 - z) \odot (1 - n^2), \quad dv^n = du^n \odot r, \\
        du^r = dv^r &= du^n \odot v^n \odot r (1 - r), \\
        du^z = dv^z &= dh \odot (h_{\mathrm{prev}} - n) \odot z (1 - z), \\
        dx &= du\, W_x^\top, \quad dh_{\mathrm{prev}} = dh \odot z + dv\, W_h^\top, \\
        dW_x &= x^\top du, \quad dW_h = h_{\mathrm{prev}}^\top dv, \quad db_x = \textstyle\sum_n du_n, \quad
        db_h = \textstyle\sum_n dv_n
        \end{aligned}

    Args:
        dh: upstream gradient of the next hidden state, ``(N, H)``.
        cache: from :func:`gru_step_forward`.

    Returns:
        dx ``(N, D)``, dh_prev ``(N, H)``, dWx ``(D, 3H)``, dWh ``(H, 3H)``, dbx ``(3H,)``, dbh ``(3H,)``.
    """
    x, h_prev, Wx, Wh, r, z, n, vn = cache
    dun = dh * (1.0 - z) * (1.0 - n * n)
    dur = dun * vn * r * (1.0 - r)
    duz = dh * (h_prev - n) * z * (1.0 - z)
    du = np.concatenate([dur, duz, dun], axis=1)  # (N, 3H)
    dv = np.concatenate([dur, duz, dun * r], axis=1)  # (N, 3H)
    dh_prev = dh * z + dv @ Wh.T
    dx, dWx, dWh = du @ Wx.T, x.T @ du, h_prev.T @ dv
    return dx, dh_prev, dWx, dWh, du.sum(axis=0), dv.sum(axis=0)


# ----------------------------------------------------------------------------------------------------------
# Whole sequences: the fast version
# ----------------------------------------------------------------------------------------------------------
class GRUCache(NamedTuple):
    """What :func:`gru_backward` needs; ``gates`` also serves for plotting (see :func:`gate_activations`)."""

    x: np.ndarray  # (N, T, D)
    h0: np.ndarray  # (N, H)
    Wx: np.ndarray  # (D, 3H)
    Wh: np.ndarray  # (H, 3H)
    h: np.ndarray  # (N, T, H)
    gates: np.ndarray  # (N, T, 3H): r, z, n after their nonlinearities
    vn: np.ndarray  # (N, T, H): h_{t-1} W_hn + b_hn


def gru_forward(
    x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, bx: np.ndarray, bh: np.ndarray
) -> tuple[np.ndarray, GRUCache]:
    r"""Run a GRU over whole sequences.

    .. math::

        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}, \qquad t = 1, \dots, T

    with the gates of :func:`gru_step_forward`. The computation keeps the dtype of its inputs.

    Args:
        x: inputs, ``(N, T, D)``.
        h0: initial hidden state, ``(N, H)``.
        Wx: ``(D, 3H)``; Wh: ``(H, 3H)``; bx: ``(3H,)``; bh: ``(3H,)``; gate blocks ``r, z, n``.

    Returns:
        h: hidden states of every step, ``(N, T, H)``; cache: for :func:`gru_backward`.
    """
    N, T, D = x.shape
    H = Wh.shape[0]
    if Wx.shape != (D, 3 * H) or Wh.shape != (H, 3 * H) or bx.shape != (3 * H,) or bh.shape != (3 * H,) \
            or h0.shape != (N, H):
        raise ValueError(
            f"shapes do not fit: x {x.shape}, h0 {h0.shape}, Wx {Wx.shape}, Wh {Wh.shape}, bx {bx.shape}, "
            f"bh {bh.shape}"
        )
    dtype = np.result_type(x, h0, Wx, Wh, bx, bh)
    scale, shift = _gate_scale(H, 3, (2,), dtype)
    # r and z are sigmoids: their columns are halved (exactly) so that tanh(.) / 2 + 1/2 evaluates them
    Whs = (Wh * scale).astype(dtype, copy=False)
    bhs = (bh * scale).astype(dtype, copy=False)
    gates = (x.reshape(N * T, D) @ (Wx * scale).astype(dtype, copy=False)).reshape(N, T, 3 * H)  # (N, T, 3H)
    gates += (bx * scale).astype(dtype, copy=False)
    h = np.empty((N, T, H), dtype=dtype)
    vn = np.empty((N, T, H), dtype=dtype)
    v = np.empty((N, 3 * H), dtype=dtype)
    tmp = np.empty((N, H), dtype=dtype)
    h_prev = h0.astype(dtype, copy=False)
    for t in range(T):
        a = gates[:, t]  # (N, 3H) view
        np.matmul(h_prev, Whs, out=v)
        v += bhs
        rz = a[:, : 2 * H]
        rz += v[:, : 2 * H]
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5  # now [r, z]
        r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
        vn_t = vn[:, t]
        vn_t[...] = v[:, 2 * H :]
        np.multiply(r, vn_t, out=tmp)
        n += tmp
        np.tanh(n, out=n)
        np.subtract(h_prev, n, out=tmp)
        tmp *= z
        np.add(n, tmp, out=h[:, t])  # n + z (h_prev - n)
        h_prev = h[:, t]
    return h, GRUCache(x, h0, Wx, Wh, h, gates, vn)


def gru_backward(
    dh: np.ndarray, cache: GRUCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Backpropagation through time for :func:`gru_forward`.

    ``dh[:, t]`` is the gradient reaching :math:`h_t` from outside the recurrence. From :math:`t = T` down to 1,
    :math:`\bar{dh}_t = dh_t + \bar{dh}_{t+1} \odot z_{t+1} + dv_{t+1} W_h^\top`, and the pre-activation
    gradients :math:`du_t, dv_t` are those of :func:`gru_step_backward`; all their factors that do not depend on
    :math:`\bar{dh}_t` are computed for every step before the loop.

    Args:
        dh: upstream gradients of all hidden states, ``(N, T, H)``.
        cache: from :func:`gru_forward`.

    Returns:
        dx ``(N, T, D)``, dh0 ``(N, H)``, dWx ``(D, 3H)``, dWh ``(H, 3H)``, dbx ``(3H,)``, dbh ``(3H,)``.
    """
    x, h0, Wx, Wh, h, gates, vn = cache
    N, T, D = x.shape
    H = h0.shape[1]
    dtype = gates.dtype
    g3 = gates.reshape(N, T, 3, H)  # (N, T, 3, H)
    r, z, n = g3[:, :, 0], g3[:, :, 1], g3[:, :, 2]
    h_prev = np.concatenate([h0[:, None].astype(dtype, copy=False), h[:, :-1]], axis=1)  # (N, T, H)
    kn = n * n  # (N, T, H): (1 - z)(1 - n^2) maps the total gradient of h_t onto du^n
    np.subtract(1.0, kn, out=kn)
    kn -= z * kn
    # dv first holds the factors that map the total gradient of h_t onto dv_t = [du^r, du^z, du^n r]; the
    # loop multiplies them in place by that gradient
    dv = np.empty((N, T, 3, H), dtype=dtype)  # (N, T, 3, H)
    np.subtract(1.0, r, out=dv[:, :, 0])
    dv[:, :, 0] *= r
    dv[:, :, 0] *= vn
    dv[:, :, 0] *= kn  # (1 - z)(1 - n^2) v^n r (1 - r)
    np.subtract(1.0, z, out=dv[:, :, 1])
    dv[:, :, 1] *= z
    dv[:, :, 1] *= h_prev - n  # (h_prev - n) z (1 - z)
    np.multiply(kn, r, out=dv[:, :, 2])

    dh_total = np.empty((N, T, H), dtype=dtype)
    dnext = np.zeros((N, H), dtype=dtype)  # gradient reaching h_t through the recurrence
    tmp = np.empty((N, H), dtype=dtype)
    WhT = np.ascontiguousarray(Wh.T, dtype=dtype)
    for t in range(T - 1, -1, -1):
        dh_t = dh_total[:, t]
        np.add(dh[:, t], dnext, out=dh_t)
        dv[:, t] *= dh_t[:, None, :]
        np.matmul(dv[:, t].reshape(N, 3 * H), WhT, out=dnext)
        np.multiply(dh_t, z[:, t], out=tmp)
        dnext += tmp
    du = dv.copy()  # the input side differs only in the candidate block
    np.multiply(dh_total, kn, out=du[:, :, 2])
    du2, dv2 = du.reshape(N * T, 3 * H), dv.reshape(N * T, 3 * H)
    dx = (du2 @ Wx.T).reshape(N, T, D)
    dWx = x.reshape(N * T, D).T @ du2
    dWh = h_prev.reshape(N * T, H).T @ dv2
    return dx, dnext, dWx, dWh, du2.sum(axis=0), dv2.sum(axis=0)


def gate_activations(cache: GRUCache) -> dict[str, np.ndarray]:
    """The gates of every step, for plotting: ``"reset"``, ``"update"``, ``"candidate"`` -> ``(N, T, H)``."""
    N, T, H = cache.h.shape
    g3 = cache.gates.reshape(N, T, 3, H)
    return {name: g3[:, :, k] for k, name in enumerate(GATE_NAMES)}


# ----------------------------------------------------------------------------------------------------------
# Conversion to and from torch.nn.GRU
# ----------------------------------------------------------------------------------------------------------
def to_torch(Wx: np.ndarray, Wh: np.ndarray, bx: np.ndarray, bh: np.ndarray, dtype=None):
    """A ``torch.nn.GRU(D, H, batch_first=True)`` holding these weights (``dtype`` defaults to that of ``Wx``)."""
    import torch

    return torch_layer(torch.nn.GRU, Wx, Wh, bx, bh, dtype)


def from_torch(module) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(Wx, Wh, bx, bh)`` of a single-layer, unidirectional ``torch.nn.GRU``."""
    if module.num_layers != 1 or module.bidirectional:
        raise ValueError("only a single-layer, unidirectional nn.GRU maps onto (Wx, Wh, bx, bh)")
    Wx = module.weight_ih_l0.detach().cpu().numpy().T.copy()
    Wh = module.weight_hh_l0.detach().cpu().numpy().T.copy()
    if module.bias:
        bx = module.bias_ih_l0.detach().cpu().numpy().copy()
        bh = module.bias_hh_l0.detach().cpu().numpy().copy()
    else:
        bx = bh = np.zeros(Wh.shape[1], Wh.dtype)
    return Wx, Wh, bx, bh
