r"""Linear recurrences and the parallel scan: the recurrence that came back (minGRU, state-space models).

Dimension legend: N batch, T time steps, D input features, H hidden units (the state is ``(N, H)``).

A *diagonal linear* recurrence

.. math::

    h_t = a_t \odot h_{t-1} + b_t, \qquad t = 1, \dots, T,

has coefficients :math:`a_t, b_t` that do not depend on :math:`h`. Composing two of its steps gives a step of the
same form, :math:`(a, b) \circ (a', b') = (a' a,\; a' b + b')`, and that composition is associative; so all
:math:`T` states can be computed by a *scan* in :math:`\lceil \log_2 T \rceil` rounds of elementwise work (Hillis and
Steele 1986; Blelloch 1990), instead of :math:`T` dependent steps (Martin and Cundy 2018). Its Jacobian
:math:`\partial h_t / \partial h_{t-1} = \mathrm{diag}(a_t)` is diagonal, so the gradient through :math:`k` steps is the
product :math:`\prod a_t`, per unit: what the vanishing-gradient chapter measured for a full matrix, coordinate by
coordinate.

minGRU (Feng et al. 2024) is a GRU whose gates read only the input:

.. math::

    z_t = \sigma(x_t W_z + b_z), \quad \tilde h_t = x_t W_h + b_h, \quad
    h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t,

a linear recurrence with :math:`a_t = 1 - z_t` and :math:`b_t = z_t \odot \tilde h_t`.
"""

from __future__ import annotations

import numpy as np


# ----------------------------------------------------------------------------------------------------------
# The linear recurrence: loop and scan
# ----------------------------------------------------------------------------------------------------------
def linear_recurrence_loop(a: np.ndarray, b: np.ndarray, h0: np.ndarray | None = None) -> np.ndarray:
    """All states ``h (N, T, H)`` of ``h_t = a_t * h_{t-1} + b_t``, one step at a time (``h0`` zeros if None)."""
    N, T, H = b.shape
    h = np.empty_like(b)
    prev = np.zeros((N, H), dtype=b.dtype) if h0 is None else h0
    for t in range(T):
        prev = a[:, t] * prev + b[:, t]
        h[:, t] = prev
    return h


def parallel_scan(a: np.ndarray, b: np.ndarray, h0: np.ndarray | None = None) -> np.ndarray:
    """The same states by an inclusive scan of Hillis and Steele: ``ceil(log2 T)`` rounds over all steps at once.

    Round ``r`` composes every step ``t`` with the step ``2**r`` before it, so after the round step ``t`` holds the
    composition of steps ``t - 2**(r+1) + 1 .. t``; after the last, of steps ``1 .. t``: ``h_t = A_t h0 + B_t``.
    """
    A, B = a.copy(), b.copy()  # (N, T, H): the composed coefficients of steps 1..t
    T, offset = b.shape[1], 1
    while offset < T:
        # step t absorbs step t - offset: (A', B') = (A_t A_{t-off}, A_t B_{t-off} + B_t); the right side is read
        # before it is written (numpy evaluates it into new arrays)
        B[:, offset:], A[:, offset:] = A[:, offset:] * B[:, :-offset] + B[:, offset:], A[:, offset:] * A[:, :-offset]
        offset *= 2
    return B if h0 is None else A * h0[:, None] + B


def scan_rounds(T: int) -> int:
    """How many rounds :func:`parallel_scan` takes for ``T`` steps (the loop takes ``T``)."""
    return int(np.ceil(np.log2(T))) if T > 1 else 0


def linear_recurrence_backward(dh: np.ndarray, a: np.ndarray, h: np.ndarray, h0: np.ndarray | None = None):
    r"""Gradients ``da, db, dh0`` of a loss from ``dh = dL/dh (N, T, H)``, given the forward's ``a`` and states ``h``.

    The gradient reaching state t, :math:`g_t = \mathrm{dh}_t + a_{t+1} \odot g_{t+1}`, is itself a linear recurrence,
    run backward in time (so it can be scanned too: :func:`parallel_scan` on the reversed arrays). Then
    :math:`\partial L/\partial b_t = g_t`, :math:`\partial L/\partial a_t = g_t \odot h_{t-1}`,
    :math:`\partial L/\partial h_0 = a_1 \odot g_1`.
    """
    shifted = np.concatenate([a[:, 1:], np.zeros_like(a[:, :1])], axis=1)  # a_{t+1}, 0 after the last step
    g = parallel_scan(shifted[:, ::-1], dh[:, ::-1])[:, ::-1]  # (N, T, H)
    prev = np.concatenate([np.zeros_like(h[:, :1]) if h0 is None else h0[:, None], h[:, :-1]], axis=1)
    return g * prev, g, a[:, 0] * g[:, 0]


# ----------------------------------------------------------------------------------------------------------
# minGRU in numpy
# ----------------------------------------------------------------------------------------------------------
def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def min_gru_forward(x: np.ndarray, h0: np.ndarray, Wz: np.ndarray, bz: np.ndarray, Wh: np.ndarray, bh: np.ndarray,
                    scan: bool = True):
    """minGRU over a sequence ``x (N, T, D)`` from ``h0 (N, H)``; ``Wz, Wh (D, H)``, ``bz, bh (H,)``.

    Returns ``h (N, T, H)`` and the cache. ``scan=False`` runs the same recurrence with the loop.
    """
    z = sigmoid(x @ Wz + bz)  # (N, T, H), every step at once: the gates read only x
    cand = x @ Wh + bh  # (N, T, H)
    a, b = 1.0 - z, z * cand
    h = parallel_scan(a, b, h0) if scan else linear_recurrence_loop(a, b, h0)
    return h, (x, h0, z, cand, a, h, Wz, Wh)


def min_gru_backward(dh: np.ndarray, cache):
    """Gradients ``dx, dh0, dWz, dbz, dWh, dbh`` of minGRU from ``dh (N, T, H)``."""
    x, h0, z, cand, a, h, Wz, Wh = cache
    da, db, dh0 = linear_recurrence_backward(dh, a, h, h0)
    dz = -da + db * cand  # a = 1 - z, b = z * cand
    dcand = db * z
    dpre_z = dz * z * (1.0 - z)
    flat = lambda v: v.reshape(-1, v.shape[-1])  # noqa: E731  (N, T, .) -> (N*T, .)
    dx = dpre_z @ Wz.T + dcand @ Wh.T
    return (dx, dh0, flat(x).T @ flat(dpre_z), dpre_z.sum(axis=(0, 1)),
            flat(x).T @ flat(dcand), dcand.sum(axis=(0, 1)))


# ----------------------------------------------------------------------------------------------------------
# minGRU in PyTorch, trained with the scan
# ----------------------------------------------------------------------------------------------------------
def torch_scan(a, b, h0=None):
    """:func:`parallel_scan` on torch tensors ``(N, T, H)``, differentiable by autograd."""
    import torch

    A, B, T, offset = a, b, b.shape[1], 1
    while offset < T:
        B = torch.cat([B[:, :offset], A[:, offset:] * B[:, :-offset] + B[:, offset:]], dim=1)
        A = torch.cat([A[:, :offset], A[:, offset:] * A[:, :-offset]], dim=1)
        offset *= 2
    return B if h0 is None else A * h0[:, None] + B


def MinGRU(input_size: int, hidden_size: int, scan: bool = True):
    """A ``torch.nn.Module`` minGRU layer: ``module(x (N, T, D), h0=None) -> h (N, T, H)``, by scan or loop."""
    import torch

    class _MinGRU(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gates = torch.nn.Linear(input_size, 2 * hidden_size)  # [z | h~] in one product
            self.scan = scan

        def forward(self, x, h0=None):
            pre_z, cand = self.gates(x).chunk(2, dim=-1)
            z = torch.sigmoid(pre_z)
            a, b = 1 - z, z * cand
            if self.scan:
                return torch_scan(a, b, h0)
            prev = torch.zeros_like(b[:, 0]) if h0 is None else h0
            states = []
            # unbind, not a[:, t]: indexing one step's slice costs its backward a gradient the size of the whole
            # sequence at every step (quadratic in T); unbind's backward is one stack
            for a_t, b_t in zip(a.unbind(1), b.unbind(1), strict=True):
                prev = a_t * prev + b_t
                states.append(prev)
            return torch.stack(states, dim=1)

    return _MinGRU()


# ----------------------------------------------------------------------------------------------------------
# Linear attention, two ways: a causal attention and a recurrent network with a matrix state
# ----------------------------------------------------------------------------------------------------------
def feature_map(x: np.ndarray) -> np.ndarray:
    """``elu(x) + 1``, the positive feature map of Katharopoulos et al. (2020)."""
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def linear_attention_parallel(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    r"""Causal linear attention of ``q, k (N, T, d)`` over ``v (N, T, dv)``, all positions at once:

    .. math::

        y_t = \frac{\sum_{s \le t} (\phi(q_t) \cdot \phi(k_s))\, v_s}{\sum_{s \le t} \phi(q_t) \cdot \phi(k_s)},

    softmax attention with :math:`\exp(q \cdot k)` replaced by :math:`\phi(q) \cdot \phi(k)`; ``O(T^2)`` work.
    """
    fq, fk = feature_map(q), feature_map(k)
    T = q.shape[1]
    scores = (fq @ np.swapaxes(fk, -1, -2)) * np.tril(np.ones((T, T)))  # (N, T, T), the future zeroed
    return (scores @ v) / scores.sum(axis=-1, keepdims=True)


def linear_attention_recurrent(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    r"""The same outputs by a recurrent network whose state is a ``(d, dv)`` matrix and a ``(d,)`` vector:

    .. math::

        S_t = S_{t-1} + \phi(k_t)^\top v_t, \quad z_t = z_{t-1} + \phi(k_t), \quad
        y_t = \frac{\phi(q_t) S_t}{\phi(q_t) \cdot z_t},

    ``O(T)`` work and a state of fixed size, whatever the length: attention, run as a recurrence.
    """
    fq, fk = feature_map(q), feature_map(k)
    N, T, d = q.shape
    S, z = np.zeros((N, d, v.shape[-1])), np.zeros((N, d))
    out = np.empty((N, T, v.shape[-1]))
    for t in range(T):
        S += fk[:, t, :, None] * v[:, t, None, :]  # outer product, (N, d, dv)
        z += fk[:, t]
        out[:, t] = np.einsum("nd,nde->ne", fq[:, t], S) / np.einsum("nd,nd->n", fq[:, t], z)[:, None]
    return out
