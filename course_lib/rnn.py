r"""The vanilla (Elman) recurrent neural network in numpy: step and whole-sequence forward/backward passes.

Dimension legend: N batch, T time steps, D input features, H hidden units. Inputs are batch-major
``(N, T, D)``, hidden states ``(N, T, H)``; weights ``Wx (D, H)``, ``Wh (H, H)``, ``b (H,)``. The recurrence is

.. math::

    h_t = \tanh(x_t W_x + h_{t-1} W_h + b),

which is ``torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True)`` with ``weight_ih = Wx.T``,
``weight_hh = Wh.T`` and ``bias_ih + bias_hh = b`` (see :func:`to_torch` and :func:`from_torch`).

The sequence functions are vectorised over the batch; the only Python loop is over time. The input
projection ``x W_x`` of all steps is one matrix product before the loop, and the weight gradients are one
product each after the backward loop, so each step costs one ``(N, H) x (H, H)`` product each way.
"""

from __future__ import annotations

import numpy as np

Cache = tuple


def rnn_step_forward(
    x: np.ndarray, h_prev: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, Cache]:
    r"""One time step of a tanh RNN.

    .. math::

        h = \tanh(x W_x + h_{\mathrm{prev}} W_h + b)

    Args:
        x: input at this step, ``(N, D)``.
        h_prev: previous hidden state, ``(N, H)``.
        Wx: input-to-hidden weights, ``(D, H)``.
        Wh: hidden-to-hidden weights, ``(H, H)``.
        b: bias, ``(H,)``.

    Returns:
        h: next hidden state ``(N, H)``; cache: ``(x, h_prev, Wx, Wh, h)`` for :func:`rnn_step_backward`.
    """
    h = np.tanh(x @ Wx + h_prev @ Wh + b)
    return h, (x, h_prev, Wx, Wh, h)


def rnn_step_backward(
    dh: np.ndarray, cache: Cache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Backward pass of :func:`rnn_step_forward`.

    With :math:`a = x W_x + h_{\mathrm{prev}} W_h + b` and :math:`da = dh \odot (1 - h^2)`:

    .. math::

        dx = da\, W_x^\top, \quad dh_{\mathrm{prev}} = da\, W_h^\top, \quad
        dW_x = x^\top da, \quad dW_h = h_{\mathrm{prev}}^\top da, \quad db = \textstyle\sum_n da_n

    Args:
        dh: upstream gradient of the next hidden state, ``(N, H)``.
        cache: from :func:`rnn_step_forward`.

    Returns:
        dx ``(N, D)``, dh_prev ``(N, H)``, dWx ``(D, H)``, dWh ``(H, H)``, db ``(H,)``.
    """
    x, h_prev, Wx, Wh, h = cache
    da = dh * (1.0 - h * h)
    return da @ Wx.T, da @ Wh.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def rnn_forward(
    x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, Cache]:
    r"""Run a tanh RNN over whole sequences.

    .. math::

        h_t = \tanh(x_t W_x + h_{t-1} W_h + b), \qquad t = 1, \dots, T

    Args:
        x: inputs, ``(N, T, D)``.
        h0: initial hidden state, ``(N, H)``.
        Wx: ``(D, H)``; Wh: ``(H, H)``; b: ``(H,)``.

    Returns:
        h: hidden states of every step, ``(N, T, H)`` (``h[:, -1]`` is the final state);
        cache: for :func:`rnn_backward`.
    """
    N, T, D = x.shape
    if Wx.shape[0] != D or h0.shape != (N, Wh.shape[0]):
        raise ValueError(f"shapes do not fit: x {x.shape}, h0 {h0.shape}, Wx {Wx.shape}, Wh {Wh.shape}")
    H = Wh.shape[0]
    dtype = np.result_type(x, h0, Wx, Wh, b)
    xw = (x.reshape(N * T, D) @ Wx).reshape(N, T, H) + b  # (N, T, H): all input projections at once
    h = np.empty((N, T, H), dtype=dtype)
    h_prev = h0
    for t in range(T):
        h_prev = np.tanh(xw[:, t] + h_prev @ Wh)
        h[:, t] = h_prev
    return h, (x, h0, Wx, Wh, h)


def rnn_backward(
    dh: np.ndarray, cache: Cache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Backpropagation through time for :func:`rnn_forward`.

    ``dh[:, t]`` is the gradient that reaches :math:`h_t` from outside the recurrence (from an output layer
    or a loss); the gradient through the recurrence is added step by step, from :math:`t = T` down to 1:

    .. math::

        da_t = \big(dh_t + da_{t+1} W_h^\top\big) \odot (1 - h_t^2), \qquad
        dW_h = \textstyle\sum_t h_{t-1}^\top da_t, \quad dW_x = \sum_t x_t^\top da_t, \quad
        dh_0 = da_1 W_h^\top

    Args:
        dh: upstream gradients of all hidden states, ``(N, T, H)``.
        cache: from :func:`rnn_forward`.

    Returns:
        dx ``(N, T, D)``, dh0 ``(N, H)``, dWx ``(D, H)``, dWh ``(H, H)``, db ``(H,)``.
    """
    x, h0, Wx, Wh, h = cache
    N, T, D = x.shape
    H = h0.shape[1]
    da = np.empty_like(h)  # (N, T, H)
    dnext = np.zeros_like(h0)  # gradient flowing into h_t through the recurrence
    WhT = Wh.T
    for t in range(T - 1, -1, -1):
        ht = h[:, t]
        da_t = (dh[:, t] + dnext) * (1.0 - ht * ht)
        da[:, t] = da_t
        dnext = da_t @ WhT
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)  # (N, T, H): h_{t-1} for every t
    da2 = da.reshape(N * T, H)
    dx = (da2 @ Wx.T).reshape(N, T, D)
    dWx = x.reshape(N * T, D).T @ da2
    dWh = h_prev.reshape(N * T, H).T @ da2
    db = da2.sum(axis=0)
    return dx, dnext, dWx, dWh, db


# ----------------------------------------------------------------------------------------------------------
# Conversion to and from torch.nn.RNN, so that torch can check every result
# ----------------------------------------------------------------------------------------------------------
def to_torch(Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray, dtype=None):
    """A ``torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True)`` holding these weights.

    torch keeps two biases; the whole of ``b`` goes to ``bias_ih_l0`` and ``bias_hh_l0`` is zero.
    ``dtype`` defaults to the dtype of ``Wx`` (use float64 to compare with numpy at full precision).
    """
    import torch

    D, H = Wx.shape
    dtype = dtype or getattr(torch, np.dtype(Wx.dtype).name)
    module = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True).to(dtype)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.as_tensor(Wx.T))
        module.weight_hh_l0.copy_(torch.as_tensor(Wh.T))
        module.bias_ih_l0.copy_(torch.as_tensor(b))
        module.bias_hh_l0.zero_()
    return module


def from_torch(module) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Wx, Wh, b)`` of a single-layer, unidirectional tanh ``torch.nn.RNN`` (``b`` sums its two biases)."""
    if module.num_layers != 1 or module.bidirectional or module.nonlinearity != "tanh":
        raise ValueError("only a single-layer, unidirectional tanh nn.RNN maps onto (Wx, Wh, b)")
    Wx = module.weight_ih_l0.detach().cpu().numpy().T.copy()
    Wh = module.weight_hh_l0.detach().cpu().numpy().T.copy()
    b = (module.bias_ih_l0 + module.bias_hh_l0).detach().cpu().numpy() if module.bias else np.zeros(Wh.shape[0])
    return Wx, Wh, b
