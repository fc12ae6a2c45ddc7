"""Optimisers and the training loop of the feedforward chapter, in numpy: SGD with momentum and Adam, written out.

Each optimiser is one function that updates a dict of parameter arrays in place from a dict of gradients of the
same names, computing exactly what ``torch.optim.SGD`` and ``torch.optim.Adam`` compute (tested against them in
float64). :func:`train_mlp_with` trains a :class:`course_lib.feedforward.MLP` with any such step;
:func:`train_mlp` is that loop with SGD and momentum. (The names are also importable from
:mod:`course_lib.feedforward`.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from .feedforward import MLP


# ----------------------------------------------------------------------------------------------------------
# SGD with momentum, and the training loop
# ----------------------------------------------------------------------------------------------------------
def sgd_momentum_step(
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    velocity: dict[str, np.ndarray],
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> None:
    r"""One SGD step with (heavy-ball) momentum, in place, in PyTorch's ``torch.optim.SGD`` form.

    .. math::

        g \leftarrow \nabla_\theta L + \lambda \theta, \qquad
        v \leftarrow \mu v + g, \qquad \theta \leftarrow \theta - \eta v

    ``velocity`` starts empty and is filled on the first step (then :math:`v = g`, as in torch).
    """
    for name, p in params.items():
        g = grads[name] + weight_decay * p if weight_decay else grads[name]
        if momentum:
            v = velocity.get(name)
            v = g.copy() if v is None else momentum * v + g
            velocity[name] = v
            g = v
        p -= lr * g


@dataclass
class TrainHistory:
    """Per-epoch metrics of :func:`train_mlp`."""

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)


def train_mlp(
    model: MLP,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 200,
    batch_size: int = 32,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    seed: int = 0,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    progress: bool = True,
) -> TrainHistory:
    """Train ``model`` in place with minibatch SGD and momentum; reshuffle every epoch.

    Args:
        model: an :class:`MLP`.
        x: ``(N, D)`` training inputs; y: ``(N,)`` labels.
        epochs, batch_size, lr, momentum, weight_decay: the optimiser's settings.
        seed: seed of the shuffling (the run is deterministic given the model's initial weights).
        x_val, y_val: optional held-out data, scored after every epoch.
        progress: show a tqdm bar over epochs.

    Returns:
        :class:`TrainHistory`: mean training loss, training accuracy and validation accuracy per epoch.
    """
    velocity: dict[str, np.ndarray] = {}

    def step(params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        sgd_momentum_step(params, grads, velocity, lr, momentum, weight_decay)

    return train_mlp_with(model, x, y, step, epochs=epochs, batch_size=batch_size, seed=seed, x_val=x_val,
                          y_val=y_val, progress=progress)


# ----------------------------------------------------------------------------------------------------------
# Adam, written out (the recurrent chapters train with torch.optim.Adam; this is its step in numpy)
# ----------------------------------------------------------------------------------------------------------
def adam_step(
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    state: dict,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> None:
    r"""One Adam step (Kingma and Ba, 2015), in place, computed as ``torch.optim.Adam`` computes it.

    Each parameter keeps a moving average :math:`m` of its gradients and :math:`v` of their squares; the step
    divides the first by the square root of the second, so every coordinate moves by about :math:`\eta` or less
    whatever the scale of its gradient. At step :math:`t = 1, 2, \dots`:

    .. math::

        g = \nabla_\theta L + \lambda \theta, \quad
        m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
        \theta \leftarrow \theta - \eta\, \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon}

    Dividing by :math:`1 - \beta^t` undoes the bias of averages that start at zero.

    Args:
        params: name -> parameter array, updated in place.
        grads: name -> gradient, same shapes.
        state: starts empty; holds the step count ``"t"`` and, per parameter, ``m`` and ``v``.
        lr, betas, eps, weight_decay: :math:`\eta`, :math:`(\beta_1, \beta_2)`, :math:`\epsilon`, :math:`\lambda`.
    """
    beta1, beta2 = betas
    t = state["t"] = state.get("t", 0) + 1
    # the bias corrections, applied as torch applies them
    step_size, root_bias2 = lr / (1 - beta1**t), np.sqrt(1 - beta2**t)
    for name, p in params.items():
        g = grads[name] + weight_decay * p if weight_decay else grads[name]
        m = state.setdefault(f"m.{name}", np.zeros_like(p))
        v = state.setdefault(f"v.{name}", np.zeros_like(p))
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        denom = np.sqrt(v)  # then sqrt(v_hat) + eps
        denom /= root_bias2
        denom += eps
        p -= step_size * (m / denom)


def train_mlp_with(
    model: MLP,
    x: np.ndarray,
    y: np.ndarray,
    step: Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], None],
    *,
    epochs: int = 200,
    batch_size: int = 32,
    seed: int = 0,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    progress: bool = False,
) -> TrainHistory:
    """Train ``model`` in place with any optimiser: ``step(params, grads)`` updates the parameters in place.

    Reshuffles every epoch (``seed``), takes one step per minibatch, and records the mean training loss and the
    accuracies after every epoch. :func:`train_mlp` is this loop with SGD and momentum; for Adam,
    ``step = lambda p, g: adam_step(p, g, state, lr=1e-3)`` with ``state = {}``.
    """
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} labels")
    rng = np.random.default_rng(seed)
    history = TrainHistory()
    for _ in tqdm(range(epochs), desc="epochs", disable=not progress, leave=False):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            loss, grads = model.loss(x[idx], y[idx])
            grads.pop("x")
            step(model.params, grads)
            losses.append(loss * len(idx))
        history.loss.append(float(np.sum(losses) / len(x)))
        history.train_acc.append(float(np.mean(model.predict(x) == y)))
        if x_val is not None and y_val is not None:
            history.val_acc.append(float(np.mean(model.predict(x_val) == y_val)))
    return history
