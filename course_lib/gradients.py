r"""Vanishing and exploding gradients: diagnostics, clipping, initialisers and long-range tasks.

Dimension legend: N batch, T time steps, D input features, H hidden units. Everything here is about the tanh
RNN of :mod:`course_lib.rnn`, :math:`h_t = \tanh(x_t W_x + h_{t-1} W_h + b)`, whose backward pass multiplies
the gradient of the hidden state by one Jacobian per step,

.. math::

    \frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial h_t}\Big|_{\text{direct}}
        + \frac{\partial L}{\partial h_{t+1}}\, \mathrm{diag}(1 - h_{t+1}^2)\, W_h^\top
    \quad\text{(row vectors)},

so that a gradient injected at step :math:`T` reaches step :math:`t` multiplied by the product of
:math:`T - t` such Jacobians. The module holds

* diagnostics: the gradient :math:`\partial L / \partial h_t` of every step (:func:`hidden_state_grads`),
  its norm per step (:func:`per_step_grad_norms`, and :func:`torch_hidden_state_grads` for a
  ``torch.nn.RNN``), the spectral radius (:func:`spectral_radius`), the geometric rate fitted to measured
  norms (:func:`fitted_rate`), the rate the linearised theory predicts (:func:`predicted_rate`) and a
  mean-field estimate that accounts for saturation (:func:`mean_field_rate`);
* recurrent matrices with a chosen spectral radius (:func:`recurrent_matrix`) and the initialisers
  :func:`orthogonal` and :func:`identity` (IRNN);
* clipping by global norm, in numpy (:func:`clip_by_global_norm`) and in torch (:func:`clip_grad_norm_`);
* seeded generators of two synthetic long-range tasks: :func:`adding_problem` and :func:`copy_task`;
* the small torch experiments of the chapter: :class:`SequenceModel` (``nn.RNN`` or ``nn.LSTM`` with a
  linear read-out), :func:`train_copy_task` and :func:`train_adding_problem`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

Cache = tuple


# ----------------------------------------------------------------------------------------------------------
# Diagnostics: per-step gradients, spectral radius, rates
# ----------------------------------------------------------------------------------------------------------
def hidden_state_grads(dh: np.ndarray, cache: Cache) -> np.ndarray:
    r"""The total gradient :math:`\partial L / \partial h_t` of every hidden state of a tanh RNN.

    ``dh[:, t]`` is the gradient that reaches :math:`h_t` from outside the recurrence (from an output layer or
    a loss), as in :func:`course_lib.rnn.rnn_backward`; the result adds what arrives through the recurrence,
    from :math:`t = T` down to 1:

    .. math::

        g_T = dh_T, \qquad g_t = dh_t + \big(g_{t+1} \odot (1 - h_{t+1}^2)\big)\, W_h^\top .

    Args:
        dh: upstream gradients of the hidden states, ``(N, T, H)``; for a loss on the last state only,
            every slice but ``dh[:, -1]`` is zero.
        cache: from :func:`course_lib.rnn.rnn_forward`.

    Returns:
        g: ``(N, T, H)``, ``g[:, t]`` is :math:`\partial L / \partial h_t` (what ``retain_grad`` gives in torch).
    """
    _, _, _, Wh, h = cache
    g = np.empty_like(h)
    through_recurrence = np.zeros_like(h[:, 0])  # (N, H): the part of dL/dh_t that comes from step t + 1
    WhT = Wh.T
    for t in range(h.shape[1] - 1, -1, -1):
        g[:, t] = dh[:, t] + through_recurrence
        through_recurrence = (g[:, t] * (1.0 - h[:, t] ** 2)) @ WhT
    return g


def per_step_grad_norms(dh: np.ndarray, cache: Cache) -> np.ndarray:
    r"""The norm :math:`\lVert \partial L / \partial h_t \rVert` of every step, over the batch and hidden units.

    .. math::

        n_t = \Big(\sum_{n, i} \big(\partial L / \partial h_{t}\big)_{n i}^2\Big)^{1/2}

    Args:
        dh: upstream gradients of the hidden states, ``(N, T, H)`` (see :func:`hidden_state_grads`).
        cache: from :func:`course_lib.rnn.rnn_forward`.

    Returns:
        ``(T,)`` Frobenius norms, index ``t`` for step ``t + 1``.
    """
    g = hidden_state_grads(dh, cache)
    return np.sqrt(np.einsum("nth,nth->t", g, g))


def torch_hidden_state_grads(module, x, dh, h0=None):
    r""":math:`\partial L / \partial h_t` of every step of a one-layer ``torch.nn.RNN`` (tanh or ReLU), by autograd.

    ``torch.nn.RNN`` runs the whole recurrence as one fused operation and keeps no per-step hidden state
    that could hold a gradient, so this re-runs the recurrence one step at a time with the module's weights,
    keeps the gradient of every state (``retain_grad``) and back-propagates :math:`L = \sum_{n,t,i} dh \odot h`.

    Args:
        module: a single-layer, unidirectional ``torch.nn.RNN`` with ``batch_first=True``.
        x: inputs, ``(N, T, D)`` tensor.
        dh: upstream gradients of the hidden states, ``(N, T, H)`` tensor (as in :func:`hidden_state_grads`).
        h0: initial state ``(N, H)``; zeros by default.

    Returns:
        ``(N, T, H)`` tensor of gradients (detached); the module's own ``.grad`` fields are left untouched.
    """
    if module.num_layers != 1 or module.bidirectional or not module.batch_first:
        raise ValueError("needs a single-layer, unidirectional torch.nn.RNN with batch_first=True")
    act = torch.tanh if module.nonlinearity == "tanh" else torch.relu
    Wx, Wh = module.weight_ih_l0.detach(), module.weight_hh_l0.detach()
    b = (module.bias_ih_l0 + module.bias_hh_l0).detach() if module.bias else 0.0
    h = torch.zeros(x.shape[0], Wh.shape[0], dtype=x.dtype) if h0 is None else h0.detach()
    h = h.clone().requires_grad_(True)  # a leaf, so that every later state is part of the graph
    states = []
    for t in range(x.shape[1]):
        h = act(x[:, t] @ Wx.T + h @ Wh.T + b)
        h.retain_grad()
        states.append(h)
    (torch.stack(states, dim=1) * dh).sum().backward()
    return torch.stack([s.grad for s in states], dim=1)


def spectral_radius(W: np.ndarray) -> float:
    r"""The largest absolute value of the eigenvalues of a square matrix, :math:`\rho(W) = \max_i |\lambda_i|`."""
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"the spectral radius needs a square matrix, got shape {W.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def predicted_rate(Wh: np.ndarray) -> float:
    r"""The per-step factor by which :math:`\lVert \partial L / \partial h_t \rVert` changes, per the linear theory.

    Where the RNN works in its linear regime (small pre-activations, :math:`\tanh' \approx 1`), the Jacobian
    of a step is :math:`W_h`, so the gradient :math:`T - t` steps back is :math:`g_T (W_h^\top)^{T - t}`. Its
    norm grows or shrinks like :math:`\rho(W_h)^{T - t}` once the largest eigenvalues dominate (Bengio et al.,
    1994; Pascanu et al., 2013). Saturation (:math:`\tanh' < 1`) lowers the per-step *bound*
    :math:`\|W_h\|_2 \max \tanh'`; it need not lower the rate itself when :math:`W_h` is not normal (zeroing a
    coordinate can undo a cancellation: :math:`[[1, 1], [-1, -1]]` has radius 0, with its second row zeroed 1).

    Returns:
        :math:`\rho(W_h)`: below 1 the gradient vanishes geometrically, above 1 it explodes.
    """
    return spectral_radius(Wh)


def mean_field_rate(Wh: np.ndarray, h: np.ndarray) -> float:
    r"""A rough per-step rate that accounts for tanh saturation: a mean-field estimate, not a bound.

    One step back multiplies the gradient by :math:`\mathrm{diag}(1 - h^2)\, W_h^\top`. If the entries of the
    gradient were independent of the slopes :math:`1 - h^2`, and :math:`W_h` behaved like a random matrix
    (:math:`\mathbb E\,\lVert u W_h^\top \rVert^2 = \lVert W_h \rVert_F^2 \lVert u \rVert^2 / H`), the squared
    norm would shrink on average by the mean of :math:`(1 - h^2)^2` times :math:`\lVert W_h \rVert_F^2 / H`:

    .. math::

        r_{\mathrm{mf}} = \sqrt{\frac{\lVert W_h \rVert_F^2}{H} \cdot \overline{(1 - h_{t,i}^2)^2}}

    :math:`\lVert W_h \rVert_F / \sqrt H` is the gain averaged over all directions (for a Gaussian :math:`W_h` it is
    close to, and at small H below, the spectral radius). In the linear regime, repeated multiplication by one
    matrix aligns the gradient with its top eigenvectors and :func:`predicted_rate` is the better prediction;
    saturation keeps changing the diagonal factor, which scrambles that alignment, and the average gain then
    describes the decay better. The independence assumptions do not hold exactly: treat it as an estimate.

    Args:
        Wh: ``(H, H)`` recurrent weights.
        h: hidden states of the run, ``(N, T, H)`` (the average is over all of them).

    Returns:
        the estimated factor per step back in time.
    """
    H = Wh.shape[0]
    slope2 = np.mean((1.0 - np.asarray(h) ** 2) ** 2)
    return float(np.sqrt(np.sum(Wh * Wh) / H * slope2))


def fitted_rate(norms: np.ndarray, skip: int = 0) -> float:
    r"""The geometric rate per step fitted to measured per-step gradient norms.

    With :math:`k = T - t` steps back from the end, a least-squares line through :math:`(k, \log n_t)` has
    slope :math:`\log r`; the rate is :math:`r`:

    .. math::

        \log n_{T - k} \approx c + k \log r .

    Args:
        norms: ``(T,)`` per-step norms as from :func:`per_step_grad_norms` (index ``T - 1`` is the last step).
        skip: leave out the last ``skip`` steps (a transient before the dominant eigenvalues take over).

    Returns:
        r: the fitted factor per step back in time (below 1: vanishing; above 1: exploding).
    """
    norms = np.asarray(norms, dtype=np.float64)
    k = np.arange(norms.shape[0])[::-1]  # steps back from the last step
    keep = k >= skip
    if keep.sum() < 2 or np.any(norms[keep] <= 0) or not np.all(np.isfinite(norms[keep])):
        raise ValueError("need at least two positive, finite norms to fit a rate")
    slope = np.polyfit(k[keep], np.log(norms[keep]), 1)[0]
    return float(np.exp(slope))


# ----------------------------------------------------------------------------------------------------------
# Recurrent matrices and initialisers
# ----------------------------------------------------------------------------------------------------------
def orthogonal(shape: int | tuple[int, int], seed: int | None = None, gain: float = 1.0) -> np.ndarray:
    r"""A random (semi-)orthogonal matrix, as ``torch.nn.init.orthogonal_`` draws it (Saxe et al., 2014).

    The Q factor of the QR decomposition of a Gaussian matrix, with the signs of R's diagonal folded in so
    that Q is uniformly (Haar) distributed. Square: :math:`Q^\top Q = Q Q^\top = I`, every singular value and
    every eigenvalue modulus is 1. Rectangular ``(r, c)``: orthonormal rows (:math:`r \le c`) or columns.

    Args:
        shape: ``H`` for ``(H, H)``, or ``(rows, cols)``.
        seed: seed of the generator.
        gain: scale of the result.

    Returns:
        ``gain * Q`` of the given shape.
    """
    rows, cols = (shape, shape) if isinstance(shape, int) else shape
    a = np.random.default_rng(seed).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)  # q: (max, min) with orthonormal columns
    q = q * np.sign(np.diag(r))  # make the distribution uniform over orthogonal matrices
    if rows < cols:
        q = q.T
    return gain * q


def identity(H: int, scale: float = 1.0) -> np.ndarray:
    r"""The IRNN initialisation of the recurrent weights, :math:`W_h = s I` (Le et al., 2015).

    With ReLU units and zero biases, :math:`h_t = \max(0, x_t W_x + s\, h_{t-1})` starts by copying its state
    forward unchanged (:math:`s = 1`), so gradients neither vanish nor explode at the start of training.
    Le et al. suggest a smaller ``scale`` (e.g. 0.01) for tasks with very long dependencies.

    Returns:
        ``(H, H)`` scaled identity.
    """
    return scale * np.eye(H)


def recurrent_matrix(H: int, rho: float, seed: int | None = None, kind: str = "gaussian") -> np.ndarray:
    r"""A random ``(H, H)`` recurrent matrix whose spectral radius is exactly ``rho``.

    * ``"gaussian"``: :math:`W \sim \mathcal N(0, 1/H)` entries, rescaled to :math:`\rho \cdot W / \rho(W)`.
      Its eigenvalues fill a disk (the circular law); it is not normal, so :math:`\lVert W\rVert_2 > \rho`.
    * ``"orthogonal"``: :math:`\rho\, Q` with :math:`Q` from :func:`orthogonal`: every eigenvalue and every
      singular value equals :math:`\rho`, so the linearised gradient norm changes by exactly :math:`\rho` per step.

    Args:
        H: hidden size.
        rho: target spectral radius (> 0).
        seed: seed of the generator.
        kind: ``"gaussian"`` or ``"orthogonal"``.

    Returns:
        Wh ``(H, H)`` with :func:`spectral_radius` equal to ``rho`` (to rounding).
    """
    if rho <= 0:
        raise ValueError(f"rho must be positive, got {rho}")
    if kind == "gaussian":
        W = np.random.default_rng(seed).standard_normal((H, H)) / np.sqrt(H)
        return W * (rho / spectral_radius(W))
    if kind == "orthogonal":
        return orthogonal(H, seed, gain=rho)
    raise ValueError(f"kind must be 'gaussian' or 'orthogonal', got {kind!r}")


# ----------------------------------------------------------------------------------------------------------
# Clipping by global norm
# ----------------------------------------------------------------------------------------------------------
def clip_by_global_norm(
    grads: Mapping[str, np.ndarray] | Sequence[np.ndarray], max_norm: float, eps: float = 1e-6
) -> tuple[Mapping[str, np.ndarray] | list[np.ndarray], float]:
    r"""Rescale a set of gradients so that their global norm is at most about ``max_norm`` (Pascanu et al., 2013).

    The global norm treats all the gradients as one long vector. As ``torch.nn.utils.clip_grad_norm_`` does,
    every gradient is multiplied by the same factor

    .. math::

        \lVert g \rVert = \Big(\sum_k \lVert g_k \rVert_2^2\Big)^{1/2}, \qquad
        c = \min\Big(1, \frac{\text{max\_norm}}{\lVert g \rVert + \epsilon}\Big), \qquad g_k \leftarrow c\, g_k,

    so the direction of the update is kept and only its length changes; below the threshold nothing changes
    (:math:`c = 1`). The :math:`\epsilon` guards a zero norm; it also makes the clipped norm slightly less than
    ``max_norm``.

    Args:
        grads: a dict name -> array, or a sequence of arrays (any shapes); not modified.
        max_norm: the largest global norm allowed (> 0).
        eps: added to the norm in the denominator, 1e-6 as in torch.

    Returns:
        clipped: new arrays, in a dict with the same keys or a list in the same order;
        total_norm: the global norm *before* clipping (useful to log: its spikes are the exploding gradients).
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    arrays = list(grads.values()) if isinstance(grads, Mapping) else list(grads)
    total_norm = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in arrays)))
    coef = min(1.0, max_norm / (total_norm + eps))
    if isinstance(grads, Mapping):
        return {name: g * coef for name, g in grads.items()}, total_norm
    return [g * coef for g in arrays], total_norm


def clip_grad_norm_(parameters: Iterable, max_norm: float, eps: float = 1e-6):
    r"""Clip the ``.grad`` of torch parameters in place by their global norm; returns the norm before clipping.

    The same rule as :func:`clip_by_global_norm`, written out in torch so that you can see what
    ``torch.nn.utils.clip_grad_norm_(parameters, max_norm)`` (2-norm) does; the course's tests check that the
    two agree. Parameters without a gradient are skipped.

    Args:
        parameters: an iterable of tensors (e.g. ``model.parameters()``).
        max_norm: the largest global norm allowed.
        eps: added to the norm in the denominator, 1e-6 as in torch.

    Returns:
        the global norm of the gradients before clipping, a 0-d tensor.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach()) for g in grads]))
    coef = torch.clamp(max_norm / (total_norm + eps), max=1.0)
    for g in grads:
        g.detach().mul_(coef.to(g.dtype))
    return total_norm


# ----------------------------------------------------------------------------------------------------------
# Synthetic long-range tasks
# ----------------------------------------------------------------------------------------------------------
def adding_problem(n: int, T: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""The adding problem: add the two marked numbers of a long sequence (Hochreiter & Schmidhuber, 1997).

    Each of the ``n`` sequences has ``T`` steps of two input features (this is the variant of Le et al., 2015,
    of experiment 4 of Hochreiter & Schmidhuber):

    * feature 0, the values :math:`v_t \sim \mathcal U[0, 1)`, independent;
    * feature 1, the markers :math:`m_t \in \{0, 1\}`: exactly two ones, one at a step drawn uniformly from the
      first half :math:`[0, \lfloor T/2 \rfloor)` and one from the second half :math:`[\lfloor T/2 \rfloor, T)`.

    The target is the sum of the two marked values, :math:`y = \sum_t m_t v_t \in [0, 2)`, read after the last
    step. The first marked value must be remembered for at least :math:`\lceil T/2 \rceil` steps. Predicting the
    constant 1 gives a mean squared error of 1/6; Hochreiter & Schmidhuber count a prediction as correct when
    its absolute error is below 0.04.

    Args:
        n: number of sequences.
        T: sequence length (at least 2).
        seed: seed of the generator: the same seed gives the same data.

    Returns:
        x: ``(n, T, 2)`` float64 inputs; y: ``(n,)`` float64 targets.
    """
    if T < 2:
        raise ValueError(f"the adding problem needs T >= 2, got {T}")
    rng = np.random.default_rng(seed)
    half = T // 2
    values = rng.random((n, T))
    first = rng.integers(0, half, n)
    second = rng.integers(half, T, n)
    markers = np.zeros((n, T))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)  # (n, T, 2)
    y = values[rows, first] + values[rows, second]
    return x, y


def copy_task(
    n: int, lag: int, length: int = 1, n_symbols: int = 8, seed: int | None = None, n_distractors: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    r"""The copy (memory) task: reproduce the first ``length`` symbols after ``lag`` steps.

    The formulation of Arjovsky et al. (2016) of Hochreiter & Schmidhuber's long-time-lag experiments. Tokens
    are integers: 0 is the blank, ``1 .. n_symbols`` are data symbols and ``n_symbols + 1`` is the delimiter.
    With :math:`m` = ``length`` and :math:`L` = ``lag``, each input sequence has :math:`2m + L` steps:

    .. code-block:: text

        s_1 ... s_m | 0 ... 0 (L - 1 blanks) | delimiter | 0 ... 0 (m blanks)

    where :math:`s_j` are drawn uniformly from the data symbols. With ``n_distractors`` :math:`= K' > 0`, the
    :math:`L - 1` steps between the symbols and the delimiter hold random *distractor* tokens instead of blanks,
    drawn uniformly from a separate alphabet ``n_symbols + 2 .. n_symbols + 1 + K'`` (the vocabulary then has
    ``n_symbols + 2 + K'`` tokens): the memory must now ignore an input that changes at every step. The model
    must output :math:`s_1, \dots, s_m` at the last :math:`m` steps (the targets at every other step are
    blanks, which this function leaves out): symbol :math:`s_j` is read at step :math:`j` and recalled at
    step :math:`m + L + j`, i.e. :math:`L + m` steps later. With ``length=1`` this is the "remember the
    first symbol" task; guessing gives an accuracy of ``1 / n_symbols``.

    Args:
        n: number of sequences.
        lag: :math:`L \ge 1`, the number of steps from the last data symbol to the delimiter.
        length: :math:`m \ge 1`, the number of symbols to copy.
        n_symbols: size of the data alphabet (at least 2).
        seed: seed of the generator: the same seed gives the same data.
        n_distractors: size of the distractor alphabet (0: blanks between the symbols and the delimiter).

    Returns:
        x: ``(n, 2 * length + lag)`` int64 tokens; y: ``(n, length)`` int64 symbols in ``1 .. n_symbols``,
        the targets of the last ``length`` steps.
    """
    if lag < 1 or length < 1 or n_symbols < 2 or n_distractors < 0:
        raise ValueError(f"need lag >= 1, length >= 1, n_symbols >= 2, n_distractors >= 0; "
                         f"got {lag}, {length}, {n_symbols}, {n_distractors}")
    rng = np.random.default_rng(seed)
    y = rng.integers(1, n_symbols + 1, (n, length))
    x = np.zeros((n, 2 * length + lag), dtype=np.int64)
    x[:, :length] = y
    if n_distractors:
        first = n_symbols + 2
        x[:, length : length + lag - 1] = rng.integers(first, first + n_distractors, (n, lag - 1))
    x[:, length + lag - 1] = n_symbols + 1  # the delimiter
    return x, y.astype(np.int64)


# ----------------------------------------------------------------------------------------------------------
# Small torch experiments on the tasks: what the chapter runs
# ----------------------------------------------------------------------------------------------------------
@dataclass
class TrainingRun:
    """What a training run records: one entry per step, and the final accuracy where the task has one."""

    losses: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)  # global norm before clipping
    accuracy: float | None = None


class SequenceModel(torch.nn.Module):
    r"""A one-layer ``torch.nn.RNN`` or ``torch.nn.LSTM`` with a linear read-out of its last ``n_out`` states.

    Inputs are ``(N, T, D)`` floats (or ``(N, T)`` integer tokens, one-hot encoded to ``D`` features);
    outputs ``(N, n_out, C)``.

    Args:
        cell: ``"rnn"`` or ``"lstm"``.
        D: input features (the vocabulary size when the inputs are tokens).
        H: hidden units.
        C: outputs per step (classes, or 1 for regression).
        n_out: how many final steps are read out.
        nonlinearity: of the vanilla RNN, ``"tanh"`` or ``"relu"``.
        init: recurrent weights of the vanilla RNN: ``"default"`` (torch's uniform), ``"orthogonal"`` or
            ``"identity"`` (the last two with zero biases, as in Le et al., 2015).
        forget_bias: if given, the LSTM's forget-gate bias starts at this value (torch starts near 0).
    """

    def __init__(self, cell: str, D: int, H: int, C: int, n_out: int = 1, nonlinearity: str = "tanh",
                 init: str = "default", forget_bias: float | None = None, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.D, self.n_out = D, n_out
        if cell == "rnn":
            self.rnn = torch.nn.RNN(D, H, nonlinearity=nonlinearity, batch_first=True)
        elif cell == "lstm":
            self.rnn = torch.nn.LSTM(D, H, batch_first=True)
        else:
            raise ValueError(f"cell must be 'rnn' or 'lstm', got {cell!r}")
        self.out = torch.nn.Linear(H, C)
        with torch.no_grad():
            if init != "default":
                if cell != "rnn":
                    raise ValueError("init applies to the vanilla RNN")
                Wh = orthogonal(H, seed) if init == "orthogonal" else identity(H) if init == "identity" else None
                if Wh is None:
                    raise ValueError(f"init must be 'default', 'orthogonal' or 'identity', got {init!r}")
                self.rnn.weight_hh_l0.copy_(torch.as_tensor(Wh.T))
                self.rnn.bias_ih_l0.zero_()
                self.rnn.bias_hh_l0.zero_()
            if forget_bias is not None:
                if cell != "lstm":
                    raise ValueError("forget_bias applies to the LSTM")
                self.rnn.bias_ih_l0[H : 2 * H].fill_(forget_bias)  # gate order i, f, g, o
                self.rnn.bias_hh_l0[H : 2 * H].zero_()

    def forward(self, x):
        if not torch.is_floating_point(x):
            x = torch.nn.functional.one_hot(x, self.D).to(self.out.weight.dtype)  # (N, T) -> (N, T, D)
        h, _ = self.rnn(x)  # (N, T, H)
        return self.out(h[:, -self.n_out :])  # (N, n_out, C)


def _fit(model, batch, loss_fn, steps, optimizer, max_norm, progress, clip_value=None) -> TrainingRun:
    run = TrainingRun()
    params = [p for p in model.parameters() if p.requires_grad]
    for step in tqdm(range(steps), disable=not progress, leave=False):
        x, y = batch(step)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        if max_norm is None:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        else:
            norm = clip_grad_norm_(params, max_norm)
        if clip_value is not None:  # element-wise, as min-char-rnn does: changes the direction
            torch.nn.utils.clip_grad_value_(params, clip_value)
        run.losses.append(loss.item())
        run.grad_norms.append(float(norm))
        if not np.isfinite(run.losses[-1]):
            break  # diverged: further steps only propagate NaN
        optimizer.step()
    return run


def train_copy_task(cell: str, lag: int, *, length: int = 1, n_symbols: int = 8, hidden: int = 64,
                    steps: int = 300, batch_size: int = 64, lr: float = 3e-3, max_norm: float | None = 1.0,
                    init: str = "default", forget_bias: float | None = None, seed: int = 0, n_val: int = 1000,
                    n_distractors: int = 0, progress: bool = False) -> TrainingRun:
    """Train a :class:`SequenceModel` on :func:`copy_task` with Adam; report its accuracy on fresh sequences.

    Every step draws a new batch (seeded by ``seed`` and the step), so there is no overfitting to measure;
    the accuracy is over ``n_val`` further sequences, per recalled symbol (chance is ``1 / n_symbols``).
    The loss is the cross-entropy of the last ``length`` steps only. ``n_distractors`` is passed to
    :func:`copy_task` (random distractors instead of blanks).
    """
    vocab = n_symbols + 2 + n_distractors
    model = SequenceModel(cell, vocab, hidden, n_symbols, n_out=length, init=init, forget_bias=forget_bias,
                          seed=seed)

    def batch(step):
        x, y = copy_task(batch_size, lag, length, n_symbols, seed=seed * 1_000_003 + step,
                         n_distractors=n_distractors)
        return torch.as_tensor(x), torch.as_tensor(y - 1)  # symbols 1..K -> classes 0..K-1

    def loss_fn(logits, y):
        return torch.nn.functional.cross_entropy(logits.reshape(-1, n_symbols), y.reshape(-1))

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    run = _fit(model, batch, loss_fn, steps, optimizer, max_norm, progress)
    x_val, y_val = copy_task(n_val, lag, length, n_symbols, seed=2**31 - 1 - seed,  # never a training seed
                             n_distractors=n_distractors)
    with torch.no_grad():
        predicted = model(torch.as_tensor(x_val)).argmax(-1).numpy() + 1
    run.accuracy = float(np.mean(predicted == y_val))
    return run


def train_adding_problem(T: int, *, hidden: int = 32, steps: int = 300, batch_size: int = 32, lr: float = 0.01,
                         max_norm: float | None = None, nonlinearity: str = "relu", init: str = "identity",
                         seed: int = 0, clip_value: float | None = None,
                         progress: bool = False) -> TrainingRun:
    """Train a vanilla :class:`SequenceModel` on :func:`adding_problem` with plain SGD (mean squared error).

    The defaults are an IRNN (ReLU units, identity recurrent weights; Le et al., 2015). ``max_norm=None``
    trains without clipping by global norm; ``clip_value`` clips every gradient entry to
    ``[-clip_value, clip_value]`` instead (element-wise, which changes the update's direction). Stops early
    if the loss stops being finite.
    """
    model = SequenceModel("rnn", 2, hidden, 1, nonlinearity=nonlinearity, init=init, seed=seed)

    def batch(step):
        x, y = adding_problem(batch_size, T, seed=seed * 1_000_003 + step)
        dtype = model.out.weight.dtype  # the model's (torch's default dtype when it was made)
        return torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype)

    def loss_fn(pred, y):
        return torch.mean((pred[:, -1, 0] - y) ** 2)

    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return _fit(model, batch, loss_fn, steps, optimizer, max_norm, progress, clip_value)
