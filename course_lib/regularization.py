r"""Regularising recurrent networks: dropout masks over time, an LSTM layer with variational dropout and layer
normalisation, and a small character language model to measure them on.

Dimension legend: N batch, T time steps, D input features, H hidden units, V vocabulary (characters).

* :func:`sequence_dropout` drops features of a sequence ``(N, T, D)`` either with a fresh mask at every step
  (``"standard"``, as ``nn.Dropout`` does) or with one mask per sequence, shared by all its steps
  (``"variational"``, Gal and Ghahramani, 2016).
* :class:`RegularizedLSTM` is one LSTM layer written step by step, so that a dropout mask can enter the
  recurrence (``h_{t-1}``) and layer normalisation (Ba et al., 2016) can normalise the gate pre-activations.
  With no dropout and no normalisation it computes exactly what ``nn.LSTM`` computes with the same weights
  (same parameter names, gate order i, f, g, o).
* :class:`CharLM` stacks such layers between an embedding and an output layer whose weight can be tied to the
  embedding (Press and Wolf, 2017; Inan et al., 2017); :func:`train_lm` and :func:`evaluate_lm` train it with
  truncated BPTT (the chunks of :func:`course_lib.charlm.tbptt_batches`) and score held-out text.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .charlm import tbptt_batches

MODES = ("none", "standard", "variational")


def dropout_mask(shape, p: float, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
    r"""A mask of ``shape`` whose entries are 0 with probability ``p`` and :math:`1/(1-p)` otherwise.

    Scaling the kept entries by :math:`1/(1-p)` (inverted dropout) keeps the expected value of ``x * mask``
    equal to ``x``, so nothing changes at evaluation time, where no mask is applied.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"the dropout probability must be in [0, 1), not {p}")
    keep = torch.rand(shape, generator=generator) >= p
    return keep.to(dtype) / (1.0 - p)


def sequence_dropout(
    x: torch.Tensor, p: float, mode: str = "variational", training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Dropout on a sequence ``x (N, T, D)``, with a new mask at every step or one mask per sequence.

    .. math::

        \text{standard: } \tilde x_t = m_t \odot x_t, \qquad
        \text{variational: } \tilde x_t = m \odot x_t, \qquad m_t, m \in \{0, \tfrac{1}{1-p}\}^D

    Args:
        x: ``(N, T, D)``.
        p: the probability of dropping a feature.
        mode: ``"standard"`` (mask ``(N, T, D)``), ``"variational"`` (mask ``(N, 1, D)``, the same for every
            step of a sequence) or ``"none"``.
        training: no dropout when False (evaluation).

    Returns:
        ``(N, T, D)``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not training or p == 0.0 or mode == "none":
        return x
    N, T, D = x.shape
    shape = (N, T, D) if mode == "standard" else (N, 1, D)
    return x * dropout_mask(shape, p, generator, x.dtype).to(x.device)


class RegularizedLSTM(nn.Module):
    r"""One LSTM layer, step by step, with dropout on its input, its recurrent state and its output, and
    optional layer normalisation.

    Without normalisation each step computes, with PyTorch's gate order,

    .. math::

        (a_i, a_f, a_g, a_o) = \tilde x_t W_{ih}^\top + b_{ih} + \tilde h_{t-1} W_{hh}^\top + b_{hh}, \quad
        c_t = \sigma(a_f) \odot c_{t-1} + \sigma(a_i) \odot \tanh(a_g), \quad
        h_t = \sigma(a_o) \odot \tanh(c_t),

    where :math:`\tilde x_t` and :math:`\tilde h_{t-1}` are the input and the previous state after dropout.
    ``dropout_mode="standard"`` draws a new mask for the input and the output at every step and leaves the
    recurrence alone (Zaremba et al., 2014); ``"variational"`` draws one mask per sequence for the input, the
    recurrent state and the output (Gal and Ghahramani, 2016). With ``layer_norm=True`` (Ba et al., 2016) the
    two products and the cell are normalised, each with its own gain and bias:

    .. math::

        a = \mathrm{LN}(\tilde x_t W_{ih}^\top) + \mathrm{LN}(\tilde h_{t-1} W_{hh}^\top) + b, \qquad
        h_t = \sigma(a_o) \odot \tanh(\mathrm{LN}(c_t)), \qquad
        \mathrm{LN}(z) = \gamma \odot \frac{z - \mu(z)}{\sqrt{\mathrm{var}(z) + \epsilon}} + \beta.

    Parameters: ``weight_ih (4H, D)``, ``weight_hh (4H, H)``, ``bias_ih (4H,)``, ``bias_hh (4H,)``, named as in
    ``nn.LSTM`` (``load_state_dict`` of an ``nn.LSTM`` layer's ``*_l0`` weights works, see :meth:`from_torch`).
    """

    def __init__(self, input_size: int, hidden_size: int, dropout: float = 0.0, dropout_mode: str = "none",
                 layer_norm: bool = False):
        super().__init__()
        if dropout_mode not in MODES:
            raise ValueError(f"dropout_mode must be one of {MODES}, not {dropout_mode!r}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.dropout, self.dropout_mode, self.layer_norm = dropout, dropout_mode, layer_norm
        H = hidden_size
        bound = 1.0 / math.sqrt(H)  # nn.LSTM's initialisation
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H).uniform_(-bound, bound))
        self.bias_ih = nn.Parameter(torch.empty(4 * H).uniform_(-bound, bound))
        self.bias_hh = nn.Parameter(torch.empty(4 * H).uniform_(-bound, bound))
        if layer_norm:
            self.ln_ih, self.ln_hh, self.ln_c = nn.LayerNorm(4 * H), nn.LayerNorm(4 * H), nn.LayerNorm(H)
            for ln in (self.ln_ih, self.ln_hh):
                nn.init.zeros_(ln.bias)  # the gate biases are bias_ih + bias_hh

    @classmethod
    def from_torch(cls, lstm: nn.LSTM) -> RegularizedLSTM:
        """A copy of a one-layer, unidirectional, ``batch_first`` ``nn.LSTM``'s weights (no dropout, no LN)."""
        layer = cls(lstm.input_size, lstm.hidden_size).to(lstm.weight_ih_l0.dtype)
        layer.load_state_dict({k.removesuffix("_l0"): v for k, v in lstm.state_dict().items()})
        return layer

    def masks(self, N: int, T: int, dtype, generator=None) -> dict[str, torch.Tensor | None]:
        """The dropout masks of one forward call: ``x`` ``(N, T, D)`` or ``(N, 1, D)``, ``h`` ``(N, H)`` (variational
        only) and ``out`` ``(N, T, H)`` or ``(N, 1, H)``; ``None`` where nothing is dropped."""
        none = {"x": None, "h": None, "out": None}
        if not self.training or self.dropout == 0.0 or self.dropout_mode == "none":
            return none
        p, D, H = self.dropout, self.input_size, self.hidden_size
        steps = T if self.dropout_mode == "standard" else 1
        out = {"x": dropout_mask((N, steps, D), p, generator, dtype),
               "out": dropout_mask((N, steps, H), p, generator, dtype), "h": None}
        if self.dropout_mode == "variational":
            out["h"] = dropout_mask((N, H), p, generator, dtype)
        return out

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
                generator: torch.Generator | None = None):
        """Outputs ``(N, T, H)`` (after output dropout) and the last ``(h, c)``, each ``(N, H)``.

        Args:
            x: ``(N, T, D)``; state: ``(h0, c0)`` each ``(N, H)``, or None for zeros.
            generator: the random generator of the dropout masks (None: torch's default).
        """
        N, T, _ = x.shape
        H = self.hidden_size
        h, c = state if state is not None else (x.new_zeros(N, H), x.new_zeros(N, H))
        m = self.masks(N, T, x.dtype, generator)
        if m["x"] is not None:
            x = x * m["x"].to(x.device)
        if self.layer_norm:
            gx = self.ln_ih(x @ self.weight_ih.T)  # (N, T, 4H)
            bias = self.bias_ih + self.bias_hh
        else:
            gx = x @ self.weight_ih.T + self.bias_ih + self.bias_hh  # (N, T, 4H)
        outs = []
        for t in range(T):
            h_in = h * m["h"].to(x.device) if m["h"] is not None else h
            gh = h_in @ self.weight_hh.T  # (N, 4H)
            a = gx[:, t] + (self.ln_hh(gh) + bias if self.layer_norm else gh)
            i, f, g, o = a.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(self.ln_c(c) if self.layer_norm else c)
            outs.append(h)
        out = torch.stack(outs, dim=1)  # (N, T, H)
        if m["out"] is not None:
            out = out * m["out"].to(x.device)
        return out, (h, c)


@dataclass
class LMConfig:
    """Hyperparameters of :class:`CharLM`."""

    vocab_size: int
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.0
    dropout_mode: str = "none"  # "none", "standard" or "variational"
    layer_norm: bool = False
    tie_weights: bool = False  # output weight = embedding weight (the embedding has hidden_size columns)

    def to_dict(self) -> dict:
        return asdict(self)


class CharLM(nn.Module):
    r"""Embedding ``(V, H)`` -> ``num_layers`` :class:`RegularizedLSTM` layers -> affine output ``(H, V)``.

    With ``tie_weights`` the output layer reuses the embedding matrix, :math:`s_t = h_t E^\top + b`, so the model
    has :math:`VH` fewer parameters and one matrix says both how a character is read and how it is predicted.
    """

    def __init__(self, config: LMConfig):
        super().__init__()
        c = self.config = config
        self.embedding = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(
            RegularizedLSTM(c.hidden_size, c.hidden_size, c.dropout, c.dropout_mode, c.layer_norm)
            for _ in range(c.num_layers)
        )
        self.output = nn.Linear(c.hidden_size, c.vocab_size)
        if c.tie_weights:
            self.output.weight = self.embedding.weight

    def forward(self, ids: torch.Tensor, state: list | None = None, generator=None):
        """Scores ``(N, T, V)`` for ids ``(N, T)``, and the last state of every layer (a list of ``(h, c)``)."""
        x = self.embedding(ids)  # (N, T, H)
        new_state = []
        for k, layer in enumerate(self.layers):
            x, s = layer(x, None if state is None else state[k], generator)
            new_state.append(s)
        return self.output(x), new_state


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, each shared tensor counted once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())


def train_lm(model: CharLM, ids: np.ndarray, *, steps: int, batch_size: int = 32, seq_len: int = 64,
             lr: float = 3e-3, clip: float = 5.0, seed: int = 0, eval_ids: np.ndarray | None = None,
             eval_every: int = 0) -> dict:
    """Train ``model`` in place with truncated BPTT (state carried over chunks, detached) and Adam.

    Returns:
        ``{"loss": [training loss of every step], "eval_step": [...], "eval_loss": [...]}`` with the held-out
        loss (nats per character, :func:`evaluate_lm`) every ``eval_every`` steps and after the last.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    batches = tbptt_batches(ids, batch_size, seq_len, seed=seed)
    history = {"loss": [], "eval_step": [], "eval_loss": []}
    state = None
    for step in range(1, steps + 1):
        model.train()
        x, y, reset = next(batches)
        if reset:
            state = None
        scores, state = model(torch.from_numpy(x), state, gen)
        loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), torch.from_numpy(y).reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimiser.step()
        state = [(h.detach(), c.detach()) for h, c in state]
        history["loss"].append(loss.item())
        if eval_ids is not None and ((eval_every and step % eval_every == 0) or step == steps):
            history["eval_step"].append(step)
            history["eval_loss"].append(evaluate_lm(model, eval_ids))
    return history


@torch.no_grad()
def evaluate_lm(model: CharLM, ids: np.ndarray, batch_size: int = 32, seq_len: int = 250) -> float:
    """Mean cross-entropy (nats per character) on held-out ``ids (L,)``, read as
    :func:`course_lib.charlm.evaluate_charlm` reads it (parallel streams, state carried, eval mode)."""
    model.eval()
    ids = np.asarray(ids)
    stream_len = (len(ids) - 1) // batch_size
    x_all = torch.from_numpy(ids[: batch_size * stream_len].reshape(batch_size, stream_len))  # (N, L)
    y_all = torch.from_numpy(ids[1 : 1 + batch_size * stream_len].reshape(batch_size, stream_len))  # (N, L)
    total, state = 0.0, None
    for start in range(0, stream_len, seq_len):
        scores, state = model(x_all[:, start : start + seq_len], state)
        y = y_all[:, start : start + seq_len]
        total += F.cross_entropy(scores.reshape(-1, scores.shape[-1]), y.reshape(-1), reduction="sum").item()
    return total / y_all.numel()


# ------------------------------------------------------------------------------------------ bidirectional
def long_word_labels(text: str, min_len: int = 7) -> np.ndarray:
    """``(len(text),)`` 0/1: 1 on every character of a run of at least ``min_len`` letters (a long word).

    A task where the future helps: at a word's first letter, only the letters still to come tell its length.
    """
    labels = np.zeros(len(text), dtype=np.int64)
    start = None
    for i, ch in enumerate(text + " "):
        if ch.isalpha():
            start = i if start is None else start
        elif start is not None:
            if i - start >= min_len:
                labels[start:i] = 1
            start = None
    return labels


class Tagger(nn.Module):
    """Embedding -> ``nn.LSTM`` (stacked and/or bidirectional) -> one logit per character, ``(N, T)``."""

    def __init__(self, vocab_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional)
        self.output = nn.Linear(hidden_size * (2 if bidirectional else 1), 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(ids))  # (N, T, K*H)
        return self.output(out).squeeze(-1)  # (N, T)


def train_tagger(model: Tagger, ids: np.ndarray, labels: np.ndarray, *, steps: int, batch_size: int = 32,
                 seq_len: int = 64, lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Train on random windows of ``(ids, labels)``; return the loss of every step."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        starts = rng.integers(0, len(ids) - seq_len, batch_size)
        idx = starts[:, None] + np.arange(seq_len)  # (N, T)
        logits = model(torch.from_numpy(ids[idx]))
        loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(labels[idx]).float())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def tagger_accuracy(model: Tagger, ids: np.ndarray, labels: np.ndarray, seq_len: int = 64) -> float:
    """Fraction of characters tagged right, reading the text in windows of ``seq_len`` (no state carried)."""
    model.eval()
    n = (len(ids) // seq_len) * seq_len
    x = torch.from_numpy(ids[:n].reshape(-1, seq_len))
    pred = (model(x) > 0).long().numpy().ravel()
    return float(np.mean(pred == labels[:n]))
