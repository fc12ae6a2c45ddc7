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

Around the recurrence: the output layer over time is :func:`course_lib.feedforward.affine_forward` (it accepts
``(N, T, H)`` inputs), :func:`temporal_softmax_loss` scores a prediction at every step with a mask for padding,
:func:`sample_from_scores` picks the next symbol (greedy or with a temperature) when a model generates, and
:func:`course_lib.gradients.clip_by_global_norm` keeps one bad batch from blowing up training. Truncated
backpropagation through time needs nothing more: pass the last state ``h[:, -1]`` of one chunk as ``h0`` of
the next, and drop ``dh0``.
"""

from __future__ import annotations

import numpy as np

from course_lib.feedforward import log_softmax, softmax

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
    # All input projections x_t Wx + b in one product, written straight into the output buffer; the loop then
    # adds h_{t-1} Wh and applies tanh in place, so each step allocates only its (N, H) matrix product.
    h = (x.reshape(N * T, D) @ Wx).reshape(N, T, H).astype(dtype, copy=False)  # (N, T, H)
    h += b
    h_prev = h0
    for t in range(T):
        h_t = h[:, t]  # a view: updated in place
        h_t += h_prev @ Wh
        np.tanh(h_t, out=h_t)
        h_prev = h_t
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
    da = 1.0 - h * h  # (N, T, H): tanh'(a_t) for every step at once; becomes da_t in the loop
    dnext = np.zeros_like(h0)  # gradient flowing into h_t through the recurrence
    WhT = Wh.T
    for t in range(T - 1, -1, -1):
        da_t = da[:, t]  # a view: updated in place
        da_t *= dh[:, t] + dnext
        dnext = da_t @ WhT
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)  # (N, T, H): h_{t-1} for every t
    da2 = da.reshape(N * T, H)
    dx = (da2 @ Wx.T).reshape(N, T, D)
    dWx = x.reshape(N * T, D).T @ da2
    dWh = h_prev.reshape(N * T, H).T @ da2
    db = da2.sum(axis=0)
    return dx, dnext, dWx, dWh, db


# ----------------------------------------------------------------------------------------------------------
# Around the recurrence: a loss at every step, sampling, gradient clipping
# ----------------------------------------------------------------------------------------------------------
def truncated_bptt_grads(
    x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray, dh: np.ndarray,
    k1: int, k2: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Weight gradients of truncated BPTT, TBPTT(k1, k2), for upstream gradients ``dh`` at every step.

    Every ``k1`` steps, the losses of the last ``k1`` steps are backpropagated through a window of ``k2``
    steps (Williams & Peng, 1990): the loss at a step that lies :math:`j` steps after the start of its window
    reaches back :math:`j` steps and no further. ``k2 = k1`` (the default) is the usual chunked truncation,
    where the losses near a chunk's start reach back hardly at all; ``k2 > k1`` gives every loss at least
    ``k2 - k1`` steps. The forward states are those of one pass over the whole sequence (carrying the state
    from chunk to chunk gives exactly these). With ``k2 >= T`` the result is full BPTT's.

    Args:
        x: inputs ``(N, T, D)``; h0: initial state ``(N, H)``; Wx ``(D, H)``, Wh ``(H, H)``, b ``(H,)``.
        dh: upstream gradient of every hidden state, ``(N, T, H)``.
        k1: how many steps' losses each window backpropagates (at least 1).
        k2: the window's length (at least ``k1``; defaults to ``k1``).

    Returns:
        dWx ``(D, H)``, dWh ``(H, H)``, db ``(H,)``.
    """
    k2 = k1 if k2 is None else k2
    if not 1 <= k1 <= k2:
        raise ValueError(f"truncated BPTT needs 1 <= k1 <= k2, got k1={k1}, k2={k2}")
    T = x.shape[1]
    h, _ = rnn_forward(x, h0, Wx, Wh, b)  # (N, T, H): the states every window starts from
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    for first_loss in range(0, T, k1):  # the losses of steps first_loss .. end - 1 share one window
        end = min(first_loss + k1, T)
        start = max(0, end - k2)
        h_start = h0 if start == 0 else h[:, start - 1]
        _, cache = rnn_forward(x[:, start:end], h_start, Wx, Wh, b)
        dh_window = np.zeros_like(dh[:, start:end])
        dh_window[:, first_loss - start :] = dh[:, first_loss:end]
        _, _, dWx_w, dWh_w, db_w = rnn_backward(dh_window, cache)
        dWx += dWx_w
        dWh += dWh_w
        db += db_w
    return dWx, dWh, db


def temporal_softmax_loss(
    x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    r"""Softmax cross-entropy at every time step, averaged over the steps that ``mask`` keeps.

    With :math:`p_{nt} = \mathrm{softmax}(x_{nt})`, mask :math:`m_{nt} \in \{0, 1\}` and
    :math:`M = \sum_{n,t} m_{nt}` kept steps:

    .. math::

        L = -\frac{1}{M} \sum_{n,t} m_{nt} \log p_{nt, y_{nt}}, \qquad
        \frac{\partial L}{\partial x_{ntv}} = \frac{m_{nt}}{M} \big(p_{ntv} - [v = y_{nt}]\big)

    This is ``torch.nn.functional.cross_entropy`` on the flattened scores with the masked targets set to its
    ``ignore_index``: a mean per predicted symbol (nats per character for a character model), so the loss
    does not depend on how much padding a batch carries. (CS231n's version divides by N instead.)

    Args:
        x: scores (logits), ``(N, T, V)`` for a vocabulary of V symbols.
        y: integer targets in ``[0, V)``, ``(N, T)``; entries where ``mask`` is False are ignored (padding may
            hold any value, e.g. -1).
        mask: boolean ``(N, T)``, True where a step counts; ``None`` counts every step.

    Returns:
        loss: float (0 if no step counts); dx: ``(N, T, V)``.
    """
    N, T, V = x.shape
    y = np.asarray(y)
    if y.shape != (N, T) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be ({N}, {T}) integer targets, got shape {y.shape} and dtype {y.dtype}")
    mask = np.ones((N, T), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != (N, T):
        raise ValueError(f"mask must have shape ({N}, {T}), got {mask.shape}")
    if mask.any() and (y[mask].min() < 0 or y[mask].max() >= V):
        raise ValueError(f"targets must lie in [0, {V}) where the mask is True")
    count = max(int(mask.sum()), 1)
    y_safe = np.where(mask, y, 0).reshape(N * T)  # (N*T,): any valid index where masked
    logp = log_softmax(x).reshape(N * T, V)  # (N*T, V)
    rows = np.arange(N * T)
    m = mask.reshape(N * T)
    loss = -logp[rows, y_safe][m].sum() / count
    dx = np.exp(logp)
    dx[rows, y_safe] -= 1.0
    dx *= (m / count)[:, None].astype(dx.dtype, copy=False)
    return float(loss), dx.reshape(N, T, V)


def sample_from_scores(
    scores: np.ndarray, temperature: float = 1.0, rng: np.random.Generator | None = None
) -> np.ndarray:
    r"""Draw one symbol per row from the softmax of ``scores / temperature``.

    .. math::

        P(v) = \frac{e^{s_v / \tau}}{\sum_k e^{s_k / \tau}}

    A temperature :math:`\tau < 1` sharpens the distribution towards the most likely symbol, :math:`\tau > 1`
    flattens it towards uniform, and :math:`\tau = 0` is greedy decoding (the argmax, no randomness).

    Args:
        scores: ``(N, V)`` unnormalised scores (or ``(V,)`` for a single row).
        temperature: :math:`\tau \ge 0`.
        rng: a ``numpy.random.Generator``; the same seed gives the same draws. Not needed when ``temperature`` is 0.

    Returns:
        integer indices in ``[0, V)``, ``(N,)`` (a scalar array for ``(V,)`` scores).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return np.argmax(scores, axis=-1)
    if rng is None:
        raise ValueError("sampling with a temperature > 0 needs a numpy Generator (rng) for reproducibility")
    p = softmax(np.asarray(scores, dtype=np.float64) / temperature)
    u = rng.random(p.shape[:-1] + (1,))  # one uniform number per row
    # inverse-CDF sampling, vectorised over rows; the clip guards against a last cumsum a hair below 1
    return np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)


# ----------------------------------------------------------------------------------------------------------
# Conversion to and from torch.nn.RNN, so that torch can check every result
# ----------------------------------------------------------------------------------------------------------
def to_torch(Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray, dtype=None):
    """A ``torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True)`` holding these weights.

    torch keeps two biases; the whole of ``b`` goes to ``bias_ih_l0`` and ``bias_hh_l0`` is zero.
    ``dtype`` defaults to the dtype of ``Wx`` (use float64 to compare with numpy at full precision).
    """
    import torch

    return torch_layer(torch.nn.RNN, Wx, Wh, b, None, dtype, nonlinearity="tanh")


def torch_layer(cls, Wx: np.ndarray, Wh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray | None, dtype=None, **kw):
    """A one-layer batch-first ``cls`` (``torch.nn.RNN``, ``LSTM`` or ``GRU``) holding our weights.

    Our weights are ``(inputs, outputs)``, torch's their transpose; ``b_hh=None`` zeroes torch's second bias.
    Shared by :func:`to_torch` here and in :mod:`course_lib.lstm` and :mod:`course_lib.gru`.
    """
    import torch

    dtype = dtype or getattr(torch, np.dtype(Wx.dtype).name)
    module = cls(Wx.shape[0], Wh.shape[0], batch_first=True, **kw).to(dtype)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.as_tensor(Wx.T))
        module.weight_hh_l0.copy_(torch.as_tensor(Wh.T))
        module.bias_ih_l0.copy_(torch.as_tensor(b_ih))
        if b_hh is None:
            module.bias_hh_l0.zero_()
        else:
            module.bias_hh_l0.copy_(torch.as_tensor(b_hh))
    return module


def from_torch(module) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Wx, Wh, b)`` of a single-layer, unidirectional tanh ``torch.nn.RNN`` (``b`` sums its two biases)."""
    if module.num_layers != 1 or module.bidirectional or module.nonlinearity != "tanh":
        raise ValueError("only a single-layer, unidirectional tanh nn.RNN maps onto (Wx, Wh, b)")
    Wx = module.weight_ih_l0.detach().cpu().numpy().T.copy()
    Wh = module.weight_hh_l0.detach().cpu().numpy().T.copy()
    b = (module.bias_ih_l0 + module.bias_hh_l0).detach().cpu().numpy() if module.bias else np.zeros(Wh.shape[0])
    return Wx, Wh, b
