r"""Long short-term memory (LSTM) in numpy: step and whole-sequence forward/backward passes.

Dimension legend: N batch, T time steps, D input features, H hidden units. Inputs are batch-major
``(N, T, D)``, hidden and cell states ``(N, T, H)``; weights ``Wx (D, 4H)``, ``Wh (H, 4H)``, ``b (4H,)``, whose
four column blocks are the gates in PyTorch's order :math:`i, f, g, o`:

.. math::

    \begin{aligned}
    a_t &= x_t W_x + h_{t-1} W_h + b = [a^i_t, a^f_t, a^g_t, a^o_t] \\
    i_t &= \sigma(a^i_t), \quad f_t = \sigma(a^f_t), \quad g_t = \tanh(a^g_t), \quad o_t = \sigma(a^o_t) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
    h_t &= o_t \odot \tanh(c_t)
    \end{aligned}

This is ``torch.nn.LSTM(D, H, batch_first=True)`` with ``weight_ih_l0 = Wx.T``, ``weight_hh_l0 = Wh.T`` and
``bias_ih_l0 + bias_hh_l0 = b`` (see :func:`to_torch` and :func:`from_torch`).

The sequence functions are written for speed as well as for reading. The input projection of all steps is
one matrix product before the loop; each step costs one ``(N, H) x (H, 4H)`` product and a few in-place
elementwise operations on preallocated arrays (no loop over examples or gates); the backward pass collects
the pre-activation gradients of every step in one ``(N, T, 4H)`` array and computes ``dx``, ``dWx``, ``dWh``
and ``db`` with one product each after the loop. Sigmoids are computed as
:math:`\sigma(a) = \tfrac12 + \tfrac12 \tanh(a/2)`, so that one ``tanh`` call evaluates all four gates.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from course_lib.rnn import torch_layer

GATE_NAMES = ("input", "forget", "candidate", "output")  # the column blocks i, f, g, o of Wx, Wh and b


def sigmoid(a: np.ndarray) -> np.ndarray:
    r"""The logistic function :math:`\sigma(a) = 1 / (1 + e^{-a}) = \tfrac12 (1 + \tanh(a/2))`, without overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def _gate_scale(H: int, n_gates: int, tanh_blocks: tuple[int, ...], dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per-column ``(scale, shift)`` with ``gate = tanh(scale * a) * scale + shift`` for every gate at once.

    Sigmoid blocks get scale 1/2 and shift 1/2 (the tanh identity of the sigmoid), tanh blocks 1 and 0.
    """
    scale = np.full((n_gates, H), 0.5, dtype=dtype)
    shift = np.full((n_gates, H), 0.5, dtype=dtype)
    for k in tanh_blocks:
        scale[k], shift[k] = 1.0, 0.0
    return scale.reshape(-1), shift.reshape(-1)


# ----------------------------------------------------------------------------------------------------------
# One time step: the readable version (the assignment asks for these)
# ----------------------------------------------------------------------------------------------------------
def lstm_step_forward(
    x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple]:
    r"""One time step of an LSTM.

    .. math::

        a = x W_x + h_{\mathrm{prev}} W_h + b, \quad
        [i, f, g, o] = [\sigma(a^i), \sigma(a^f), \tanh(a^g), \sigma(a^o)], \quad
        c = f \odot c_{\mathrm{prev}} + i \odot g, \quad h = o \odot \tanh(c)

    Args:
        x: input at this step, ``(N, D)``.
        h_prev: previous hidden state, ``(N, H)``.
        c_prev: previous cell state, ``(N, H)``.
        Wx: input-to-hidden weights, ``(D, 4H)``, gate blocks ``i, f, g, o``.
        Wh: hidden-to-hidden weights, ``(H, 4H)``.
        b: bias, ``(4H,)``.

    Returns:
        h: next hidden state ``(N, H)``; c: next cell state ``(N, H)``;
        cache: ``(x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c)`` for :func:`lstm_step_backward`.
    """
    H = h_prev.shape[1]
    a = x @ Wx + h_prev @ Wh + b  # (N, 4H)
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H : 2 * H])
    g = np.tanh(a[:, 2 * H : 3 * H])
    o = sigmoid(a[:, 3 * H :])
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    return h, c, (x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c)


def lstm_step_backward(
    dh: np.ndarray, dc: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Backward pass of :func:`lstm_step_forward`.

    The gradient reaching :math:`c` comes from outside (``dc``) and through :math:`h = o \odot \tanh(c)`;
    from :math:`c` it flows to the gates and, multiplied only by :math:`f`, to :math:`c_{\mathrm{prev}}`:

    .. math::

        \begin{aligned}
        \bar{dc} &= dc + dh \odot o \odot (1 - \tanh^2 c), \qquad dc_{\mathrm{prev}} = \bar{dc} \odot f \\
        da^i &= \bar{dc} \odot g \odot i (1 - i), \quad da^f = \bar{dc} \odot c_{\mathrm{prev}} \odot f (1 - f), \\
        da^g &= \bar{dc} \odot i \odot (1 - g^2), \quad da^o = dh \odot \tanh c \odot o (1 - o) \\
        dx &= da\, W_x^\top, \quad dh_{\mathrm{prev}} = da\, W_h^\top, \quad
        dW_x = x^\top da, \quad dW_h = h_{\mathrm{prev}}^\top da, \quad db = \textstyle\sum_n da_n
        \end{aligned}

    Args:
        dh: upstream gradient of the next hidden state, ``(N, H)``.
        dc: upstream gradient of the next cell state, ``(N, H)`` (zeros if only ``h`` is used).
        cache: from :func:`lstm_step_forward`.

    Returns:
        dx ``(N, D)``, dh_prev ``(N, H)``, dc_prev ``(N, H)``, dWx ``(D, 4H)``, dWh ``(H, 4H)``, db ``(4H,)``.
    """
    x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c = cache
    dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
    da = np.concatenate(
        [dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - g * g), dh * tanh_c * o * (1.0 - o)],
        axis=1,
    )  # (N, 4H)
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, h_prev.T @ da, da.sum(axis=0)


# ----------------------------------------------------------------------------------------------------------
# Whole sequences: the fast version
# ----------------------------------------------------------------------------------------------------------
class LSTMCache(NamedTuple):
    """What :func:`lstm_backward` needs; ``gates`` also serves for plotting (see :func:`gate_activations`)."""

    x: np.ndarray  # (N, T, D)
    h0: np.ndarray  # (N, H)
    c0: np.ndarray  # (N, H)
    Wx: np.ndarray  # (D, 4H)
    Wh: np.ndarray  # (H, 4H)
    h: np.ndarray  # (N, T, H)
    c: np.ndarray  # (N, T, H)
    tanh_c: np.ndarray  # (N, T, H)
    gates: np.ndarray  # (N, T, 4H): i, f, g, o after their nonlinearities


def lstm_forward(
    x: np.ndarray, h0: np.ndarray, c0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, LSTMCache]:
    r"""Run an LSTM over whole sequences.

    .. math::

        c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t), \qquad t = 1, \dots, T

    with the gates of :func:`lstm_step_forward`. The computation keeps the dtype of its inputs (float32 stays
    float32).

    Args:
        x: inputs, ``(N, T, D)``.
        h0: initial hidden state, ``(N, H)``; c0: initial cell state, ``(N, H)``.
        Wx: ``(D, 4H)``; Wh: ``(H, 4H)``; b: ``(4H,)``; gate blocks ``i, f, g, o``.

    Returns:
        h: hidden states of every step, ``(N, T, H)``; c: cell states of every step, ``(N, T, H)``
        (``h[:, -1], c[:, -1]`` are torch's ``(h_n, c_n)``); cache: for :func:`lstm_backward`.
    """
    N, T, D = x.shape
    H = Wh.shape[0]
    if Wx.shape != (D, 4 * H) or Wh.shape != (H, 4 * H) or b.shape != (4 * H,) or h0.shape != (N, H) \
            or c0.shape != (N, H):
        raise ValueError(
            f"shapes do not fit: x {x.shape}, h0 {h0.shape}, c0 {c0.shape}, Wx {Wx.shape}, Wh {Wh.shape}, b {b.shape}"
        )
    dtype = np.result_type(x, h0, c0, Wx, Wh, b)
    scale, shift = _gate_scale(H, 4, (2,), dtype)
    Whs = (Wh * scale).astype(dtype, copy=False)  # halving is exact: these are the weights of a / 2
    # all input projections at once; `gates` holds the scaled pre-activations, then the gates themselves
    gates = (x.reshape(N * T, D) @ (Wx * scale).astype(dtype, copy=False)).reshape(N, T, 4 * H)  # (N, T, 4H)
    gates += (b * scale).astype(dtype, copy=False)
    h = np.empty((N, T, H), dtype=dtype)
    c = np.empty((N, T, H), dtype=dtype)
    tanh_c = np.empty((N, T, H), dtype=dtype)
    hw = np.empty((N, 4 * H), dtype=dtype)
    ig = np.empty((N, H), dtype=dtype)
    h_prev, c_prev = h0.astype(dtype, copy=False), c0.astype(dtype, copy=False)
    for t in range(T):
        a = gates[:, t]  # (N, 4H) view
        np.matmul(h_prev, Whs, out=hw)
        a += hw
        np.tanh(a, out=a)
        a *= scale
        a += shift  # now [i, f, g, o]
        c_t, tc_t, h_t = c[:, t], tanh_c[:, t], h[:, t]
        np.multiply(a[:, H : 2 * H], c_prev, out=c_t)
        np.multiply(a[:, :H], a[:, 2 * H : 3 * H], out=ig)
        c_t += ig
        np.tanh(c_t, out=tc_t)
        np.multiply(a[:, 3 * H :], tc_t, out=h_t)
        h_prev, c_prev = h_t, c_t
    return h, c, LSTMCache(x, h0, c0, Wx, Wh, h, c, tanh_c, gates)


def lstm_backward(
    dh: np.ndarray, cache: LSTMCache, dc_last: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Backpropagation through time for :func:`lstm_forward`.

    ``dh[:, t]`` is the gradient that reaches :math:`h_t` from outside the recurrence, ``dc_last`` the one
    that reaches the final cell state :math:`c_T` (if any). From :math:`t = T` down to 1, with
    :math:`\bar{dh}_t = dh_t + da_{t+1} W_h^\top` and the cell-state gradient carried backwards,

    .. math::

        \bar{dc}_t = \bar{dc}_{t+1} \odot f_{t+1} + \bar{dh}_t \odot o_t \odot (1 - \tanh^2 c_t),

    the pre-activation gradients :math:`da_t` are those of :func:`lstm_step_backward`. The product
    :math:`\bar{dc}_{t+1} \odot f_{t+1}` is the *constant error carousel*: along the cell state the gradient
    is only scaled by the forget gates, never by a weight matrix or a squashing derivative. The factors of
    :math:`da_t` that do not depend on the upstream gradient are computed for all steps before the loop.

    Args:
        dh: upstream gradients of all hidden states, ``(N, T, H)``.
        cache: from :func:`lstm_forward`.
        dc_last: upstream gradient of the final cell state, ``(N, H)``, or ``None`` for zero.

    Returns:
        dx ``(N, T, D)``, dh0 ``(N, H)``, dc0 ``(N, H)``, dWx ``(D, 4H)``, dWh ``(H, 4H)``, db ``(4H,)``.
    """
    x, h0, c0, Wx, Wh, h, c, tanh_c, gates = cache
    N, T, D = x.shape
    H = h0.shape[1]
    dtype = gates.dtype
    g4 = gates.reshape(N, T, 4, H)  # (N, T, 4, H)
    i, f, g, o = g4[:, :, 0], g4[:, :, 1], g4[:, :, 2], g4[:, :, 3]
    # First fill da with the factors that map the total gradient of c_t (blocks i, f, g) and of h_t (block o)
    # onto the pre-activation gradients; the loop then multiplies them in place by those gradients.
    da = np.empty((N, T, 4, H), dtype=dtype)  # (N, T, 4, H)
    np.subtract(1.0, i, out=da[:, :, 0])
    da[:, :, 0] *= i
    da[:, :, 0] *= g  # g i (1 - i)
    np.subtract(1.0, f, out=da[:, :, 1])
    da[:, :, 1] *= f
    da[:, 1:, 1] *= c[:, :-1]
    da[:, 0, 1] *= c0  # c_{t-1} f (1 - f)
    np.multiply(g, g, out=da[:, :, 2])
    np.subtract(1.0, da[:, :, 2], out=da[:, :, 2])
    da[:, :, 2] *= i  # i (1 - g^2)
    np.subtract(1.0, o, out=da[:, :, 3])
    da[:, :, 3] *= o
    da[:, :, 3] *= tanh_c  # tanh(c) o (1 - o)
    q = tanh_c * tanh_c  # (N, T, H): o (1 - tanh^2 c) maps the gradient of h_t onto that of c_t
    np.subtract(1.0, q, out=q)
    q *= o

    dnext = np.zeros((N, H), dtype=dtype)  # gradient reaching h_t through the recurrence
    dcell = np.zeros((N, H), dtype=dtype) if dc_last is None else np.array(dc_last, dtype=dtype)
    dh_t = np.empty((N, H), dtype=dtype)
    tmp = np.empty((N, H), dtype=dtype)
    WhT = np.ascontiguousarray(Wh.T, dtype=dtype)
    for t in range(T - 1, -1, -1):
        np.add(dh[:, t], dnext, out=dh_t)  # the total gradient of h_t
        np.multiply(dh_t, q[:, t], out=tmp)
        dcell += tmp  # the total gradient of c_t
        da[:, t, :3] *= dcell[:, None, :]
        da[:, t, 3] *= dh_t
        dcell *= f[:, t]  # now the gradient of c_{t-1}: the constant error carousel
        np.matmul(da[:, t].reshape(N, 4 * H), WhT, out=dnext)
    h_prev = np.concatenate([h0[:, None].astype(dtype, copy=False), h[:, :-1]], axis=1)  # (N, T, H)
    da2 = da.reshape(N * T, 4 * H)
    dx = (da2 @ Wx.T).reshape(N, T, D)
    dWx = x.reshape(N * T, D).T @ da2
    dWh = h_prev.reshape(N * T, H).T @ da2
    db = da2.sum(axis=0)
    return dx, dnext, dcell, dWx, dWh, db


def gate_activations(cache: LSTMCache) -> dict[str, np.ndarray]:
    """The gates and the cell state of every step, for plotting: name -> ``(N, T, H)`` array.

    Keys: ``"input"``, ``"forget"``, ``"candidate"`` (:math:`g_t`), ``"output"`` and ``"cell"`` (:math:`c_t`).
    """
    N, T, H = cache.h.shape
    g4 = cache.gates.reshape(N, T, 4, H)
    return {**{name: g4[:, :, k] for k, name in enumerate(GATE_NAMES)}, "cell": cache.c}


# ----------------------------------------------------------------------------------------------------------
# Conversion to and from torch.nn.LSTM, so that torch can check every result
# ----------------------------------------------------------------------------------------------------------
def to_torch(Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray, dtype=None):
    """A ``torch.nn.LSTM(D, H, batch_first=True)`` holding these weights.

    torch keeps two biases; the whole of ``b`` goes to ``bias_ih_l0`` and ``bias_hh_l0`` is zero.
    ``dtype`` defaults to the dtype of ``Wx`` (use float64 to compare with numpy at full precision).
    """
    import torch

    return torch_layer(torch.nn.LSTM, Wx, Wh, b, None, dtype)


def from_torch(module) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Wx, Wh, b)`` of a single-layer, unidirectional ``torch.nn.LSTM`` (``b`` sums its two biases)."""
    if module.num_layers != 1 or module.bidirectional or getattr(module, "proj_size", 0):
        raise ValueError("only a single-layer, unidirectional nn.LSTM without projection maps onto (Wx, Wh, b)")
    Wx = module.weight_ih_l0.detach().cpu().numpy().T.copy()
    Wh = module.weight_hh_l0.detach().cpu().numpy().T.copy()
    if not module.bias:
        return Wx, Wh, np.zeros(Wh.shape[1], Wh.dtype)
    b = (module.bias_ih_l0 + module.bias_hh_l0).detach().cpu().numpy()
    return Wx, Wh, b


# ---------------------------------------------------------------------------------------------------------
# assignment 4's stand-in: what its tests expect from a sequence function run on the stand-in step functions


def stand_in_sequence_forward(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                              b: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, tuple]:
    """The stand-in for an LSTM layer that assignment 4's tests use: a tanh RNN (:mod:`course_lib.rnn`) on the
    state ``s = [h, c]`` with the LSTM's signature and shapes, ``s_t = tanh(scale * (x_t Wx' + s_{t-1} Wh' +
    b'))`` with ``Wx'`` the first ``2H`` columns of ``Wx``, ``Wh'`` = ``Wh`` reshaped to ``(2H, 2H)`` and ``b'``
    = ``b[:2H]``. The hidden tests draw ``scale`` at random, so an answer that computes the stand-in itself
    instead of calling the functions the test hands it is caught. Returns ``h (N, T, H)`` and the cache for
    :func:`stand_in_sequence_backward`."""
    from course_lib.rnn import rnn_forward

    H = h0.shape[1]
    s, cache = rnn_forward(x, np.concatenate([h0, c0], axis=1), scale * Wx[:, : 2 * H],
                           scale * Wh.reshape(2 * H, 2 * H), scale * b[: 2 * H])
    return s[:, :, :H], (H, cache, scale)


def stand_in_sequence_backward(dh: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """The gradients ``(dx, dh0, dc0, dWx, dWh, db)`` of ``sum(h * dh)`` for :func:`stand_in_sequence_forward`
    (zero in the columns of ``Wx`` and ``b`` the stand-in does not use)."""
    from course_lib.rnn import rnn_backward

    H, rnn_cache, scale = cache
    dx, ds0, dWx2, dWh2, db2 = rnn_backward(np.concatenate([dh, np.zeros_like(dh)], axis=2), rnn_cache)
    dWx = np.zeros((dWx2.shape[0], 4 * H), dtype=dWx2.dtype)
    dWx[:, : 2 * H] = scale * dWx2
    db = np.zeros(4 * H, dtype=db2.dtype)
    db[: 2 * H] = scale * db2
    return dx, ds0[:, :H], ds0[:, H:], dWx, scale * dWh2.reshape(H, 4 * H), db


def stand_in_classifier_loss(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
                             scale: float = 1.0) -> float:
    """The softmax loss of assignment 4's classifier (scores ``h[:, -1] @ Wy + by`` from the last hidden state,
    zero initial states) with :func:`stand_in_sequence_forward` (of this ``scale``) in place of the LSTM layer."""
    from course_lib.feedforward import softmax_loss

    N, H = x.shape[0], params["Wh"].shape[0]
    zeros = np.zeros((N, H), dtype=params["Wh"].dtype)
    h = stand_in_sequence_forward(x, zeros, zeros, params["Wx"], params["Wh"], params["b"], scale)[0]
    return softmax_loss(h[:, -1] @ params["Wy"] + params["by"], y)[0]
