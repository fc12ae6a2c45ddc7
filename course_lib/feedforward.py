"""Feedforward networks from scratch in numpy: layers, activations, losses, and a small MLP trained with SGD.

Every layer is a pair of functions in the CS231n style: ``out, cache = layer_forward(...)`` keeps what the
backward pass needs in an explicit ``cache``, and ``dinputs = layer_backward(dout, cache)`` returns the
gradient of the loss with respect to each input, named ``d<input>``. Losses return ``(loss, dscores)``.

Dimension legend: N batch, D input features, M output features, C classes. Layers accept any leading
dimensions (``(N, D)`` or ``(N, T, D)``), so the recurrent chapters reuse them over time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Cache = tuple


# ----------------------------------------------------------------------------------------------------------
# Affine layer
# ----------------------------------------------------------------------------------------------------------
def affine_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    r"""Affine (fully connected) layer.

    .. math::

        \mathrm{out} = x W + b

    Args:
        x: inputs, ``(..., D)`` (e.g. ``(N, D)`` or ``(N, T, D)``).
        W: weights, ``(D, M)``.
        b: bias, ``(M,)``.

    Returns:
        out: ``(..., M)``; cache: ``(x, W)`` for :func:`affine_backward`.
    """
    if x.shape[-1] != W.shape[0]:
        raise ValueError(f"x has {x.shape[-1]} features but W expects {W.shape[0]} (W is {W.shape})")
    out = x @ W + b
    return out, (x, W)


def affine_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Backward pass of :func:`affine_forward`.

    .. math::

        dx = \mathrm{dout}\, W^\top, \qquad dW = x^\top \mathrm{dout}, \qquad db = \textstyle\sum_n \mathrm{dout}_n

    Args:
        dout: upstream gradient, ``(..., M)``.
        cache: from :func:`affine_forward`.

    Returns:
        dx ``(..., D)``, dW ``(D, M)``, db ``(M,)``.
    """
    x, W = cache
    x2 = x.reshape(-1, x.shape[-1])  # (N*..., D)
    dout2 = dout.reshape(-1, dout.shape[-1])  # (N*..., M)
    dx = dout @ W.T
    dW = x2.T @ dout2
    db = dout2.sum(axis=0)
    return dx, dW, db


# ----------------------------------------------------------------------------------------------------------
# Activations
# ----------------------------------------------------------------------------------------------------------
def sigmoid(x: np.ndarray) -> np.ndarray:
    r"""Logistic function :math:`\sigma(x) = 1 / (1 + e^{-x})`, computed without overflow for any ``x``."""
    # exp of a non-positive number never overflows; both branches are exact rearrangements.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    r"""Sigmoid activation, elementwise.

    .. math::

        \mathrm{out} = \sigma(x) = \frac{1}{1 + e^{-x}} \in (0, 1)

    Args:
        x: any shape.

    Returns:
        out: same shape as ``x``; cache: ``out``.
    """
    out = sigmoid(x)
    return out, (out,)


def sigmoid_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    r"""Backward pass of :func:`sigmoid_forward`: :math:`dx = \mathrm{dout} \cdot \sigma(x)(1 - \sigma(x))`.

    Returns:
        dx: same shape as ``dout``.
    """
    (out,) = cache
    return dout * out * (1.0 - out)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    r"""Hyperbolic tangent activation, elementwise.

    .. math::

        \mathrm{out} = \tanh(x) \in (-1, 1)

    Args:
        x: any shape.

    Returns:
        out: same shape as ``x``; cache: ``out``.
    """
    out = np.tanh(x)
    return out, (out,)


def tanh_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    r"""Backward pass of :func:`tanh_forward`: :math:`dx = \mathrm{dout} \cdot (1 - \tanh^2 x)`.

    Returns:
        dx: same shape as ``dout``.
    """
    (out,) = cache
    return dout * (1.0 - out * out)


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    r"""Rectified linear unit, elementwise.

    .. math::

        \mathrm{out} = \max(0, x)

    Args:
        x: any shape.

    Returns:
        out: same shape as ``x``; cache: ``x``.
    """
    return np.maximum(x, 0), (x,)


def relu_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    r"""Backward pass of :func:`relu_forward`: :math:`dx = \mathrm{dout} \cdot [x > 0]` (0 at the kink, as torch).

    Returns:
        dx: same shape as ``dout``.
    """
    (x,) = cache
    return dout * (x > 0)


ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "relu": (relu_forward, relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
}


# ----------------------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------------------
def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Log of the softmax over the last axis, shifted by the row maximum so that it never overflows."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(scores: np.ndarray) -> np.ndarray:
    r"""Softmax over the last axis: :math:`p_c = e^{s_c} / \sum_k e^{s_k}`."""
    return np.exp(log_softmax(scores))


def softmax_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Mean softmax cross-entropy loss and its gradient.

    .. math::

        L = -\frac{1}{N} \sum_n \log p_{n, y_n}, \qquad
        \frac{\partial L}{\partial s_{nc}} = \frac{1}{N} (p_{nc} - [c = y_n])

    Args:
        scores: unnormalised class scores (logits), ``(N, C)``.
        y: integer labels in ``[0, C)``, ``(N,)``.

    Returns:
        loss: float; dscores: ``(N, C)``.
    """
    N, C = scores.shape
    y = np.asarray(y)
    if y.shape != (N,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be {N} integer labels, got shape {y.shape} and dtype {y.dtype}")
    if y.min(initial=0) < 0 or y.max(initial=0) >= C:
        raise ValueError(f"labels must lie in [0, {C})")
    logp = log_softmax(scores)
    loss = -logp[np.arange(N), y].mean()
    dscores = np.exp(logp)
    dscores[np.arange(N), y] -= 1.0
    return float(loss), dscores / N


def bce_with_logits_loss(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Mean binary cross-entropy on logits (the loss of a sigmoid output), and its gradient.

    .. math::

        L = -\frac{1}{N} \sum_n \big[y_n \log \sigma(z_n) + (1 - y_n) \log(1 - \sigma(z_n))\big],
        \qquad \frac{\partial L}{\partial z_n} = \frac{1}{N} (\sigma(z_n) - y_n)

    computed as :math:`\max(z, 0) - z y + \log(1 + e^{-|z|})`, which never overflows.

    Args:
        logits: ``(N,)`` (or any shape; the mean is over all entries).
        y: targets in ``[0, 1]``, same shape as ``logits``.

    Returns:
        loss: float; dlogits: same shape as ``logits``.
    """
    y = np.asarray(y, dtype=logits.dtype)
    if y.shape != logits.shape:
        raise ValueError(f"targets {y.shape} and logits {logits.shape} differ in shape")
    loss = np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
    return float(loss.mean()), (sigmoid(logits) - y) / logits.size


# ----------------------------------------------------------------------------------------------------------
# A small multilayer perceptron
# ----------------------------------------------------------------------------------------------------------
@dataclass
class MLP:
    """A multilayer perceptron: affine -> activation -> ... -> affine. Holds parameters only.

    ``params`` maps ``W1, b1, ..., WL, bL`` to arrays, ``Wl`` of shape ``(sizes[l-1], sizes[l])``. The output
    layer has no activation: its scores go to :func:`softmax_loss` (C > 1 outputs) or
    :func:`bce_with_logits_loss` (one output).
    """

    params: dict[str, np.ndarray]
    activation: str = "tanh"

    @classmethod
    def create(cls, sizes: list[int], activation: str = "tanh", seed: int = 0, dtype=np.float64) -> MLP:
        """Initialise weights with Glorot (tanh, sigmoid) or He (relu) scaling and zero biases.

        Args:
            sizes: layer widths, input first, e.g. ``[2, 64, 64, 3]``.
            activation: ``"tanh"``, ``"relu"`` or ``"sigmoid"``.
            seed: seed of the weight initialisation.
        """
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        if len(sizes) < 2:
            raise ValueError("sizes needs at least an input and an output width")
        rng = np.random.default_rng(seed)
        params = {}
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
            scale = np.sqrt(2.0 / fan_in) if activation == "relu" else np.sqrt(2.0 / (fan_in + fan_out))
            params[f"W{layer}"] = (rng.standard_normal((fan_in, fan_out)) * scale).astype(dtype)
            params[f"b{layer}"] = np.zeros(fan_out, dtype=dtype)
        return cls(params, activation)

    @property
    def num_layers(self) -> int:
        return len(self.params) // 2

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list]:
        """Scores for a batch.

        Args:
            x: ``(N, D)``.

        Returns:
            scores ``(N, C)``; cache: a list with one entry per layer for :meth:`backward`.
        """
        act_forward, _ = ACTIVATIONS[self.activation]
        caches = []
        h = x
        for layer in range(1, self.num_layers + 1):
            h, affine_cache = affine_forward(h, self.params[f"W{layer}"], self.params[f"b{layer}"])
            act_cache = None
            if layer < self.num_layers:
                h, act_cache = act_forward(h)
            caches.append((affine_cache, act_cache))
        return h, caches

    def backward(self, dscores: np.ndarray, cache: list) -> dict[str, np.ndarray]:
        """Gradients of the loss with respect to every parameter (and ``"x"``, the input).

        Args:
            dscores: ``(N, C)``, from a loss function.
            cache: from :meth:`forward`.

        Returns:
            name -> gradient, with the names of ``params`` plus ``"x"``.
        """
        _, act_backward = ACTIVATIONS[self.activation]
        grads = {}
        dh = dscores
        for layer in range(self.num_layers, 0, -1):
            affine_cache, act_cache = cache[layer - 1]
            if act_cache is not None:
                dh = act_backward(dh, act_cache)
            dh, grads[f"W{layer}"], grads[f"b{layer}"] = affine_backward(dh, affine_cache)
        grads["x"] = dh
        return grads

    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Mean loss on ``(x, y)`` and the gradients of every parameter.

        Softmax cross-entropy for C > 1 outputs (``y`` integer labels ``(N,)``), binary cross-entropy on
        the logit for a single output (``y`` in ``{0, 1}``, ``(N,)``).
        """
        scores, cache = self.forward(x)
        if scores.shape[1] == 1:
            loss, dlogits = bce_with_logits_loss(scores[:, 0], y)
            dscores = dlogits[:, None]
        else:
            loss, dscores = softmax_loss(scores, y)
        return loss, self.backward(dscores, cache)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted labels ``(N,)``: argmax of the scores, or ``logit > 0`` for a single output."""
        scores, _ = self.forward(x)
        if scores.shape[1] == 1:
            return (scores[:, 0] > 0).astype(np.int64)
        return scores.argmax(axis=1)


# ----------------------------------------------------------------------------------------------------------
# A generated dataset the chapter can draw
# ----------------------------------------------------------------------------------------------------------
def make_spirals(
    n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    r"""Interleaved 2-D spirals: a classic dataset no linear classifier can separate.

    Class ``k`` lies on the arm at angle offset :math:`2\pi k / K`, its radius growing from 0 to 1 while the
    angle turns through 4 radians, plus Gaussian angle noise of standard deviation ``noise``.

    Returns:
        x: ``(n_per_class * n_classes, 2)`` float64 points; y: ``(n_per_class * n_classes,)`` int64 labels.
    """
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    y = np.repeat(np.arange(n_classes), n_per_class)
    angle = 4.0 * radius + 2 * np.pi * y / n_classes + rng.normal(0, noise, radius.shape)
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    return x, y.astype(np.int64)


# The optimisers and the training loop live in course_lib.optim; they are also reachable from here.
from .optim import TrainHistory, adam_step, sgd_momentum_step, train_mlp, train_mlp_with  # noqa: E402, F401
