r"""Recurrent sentiment classifiers in PyTorch: embedding, RNN / LSTM / GRU, pooling, one sigmoid output.

Dimension legend: N batch, T time steps (tokens), V vocabulary size, E embedding size, H hidden units per
direction, K directions (1 or 2). Inputs are right-padded token ids ``(N, T)`` and their lengths ``(N,)``:

.. math::

    x_t = \mathrm{Embedding}(w_t), \qquad h_t = \mathrm{RNN}(x_t, h_{t-1}), \qquad
    p(\text{positive}) = \sigma\big(v^\top \mathrm{pool}(h_1, \dots, h_{L}) + c\big),

where :math:`L` is the review's own length: the pooling (last state, max, mean, or max and mean) only reads
valid steps. A bidirectional layer runs a second RNN over each review reversed *within its own length*
(:func:`reverse_padded`), so neither direction ever reads a pad before a word. Both directions therefore give,
on every valid step, exactly what ``pack_padded_sequence`` would give (the tests check it), at the speed of
plain padded batches; ``packed=True`` runs the same weights through packed sequences instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
POOLINGS = ("last", "max", "mean", "max_mean")


@dataclass
class ModelConfig:
    """Hyperparameters of :class:`SentimentRNN` (stored in checkpoints to rebuild the model)."""

    vocab_size: int
    embed_dim: int = 64
    hidden_size: int = 64
    cell: str = "lstm"  # "rnn" (tanh), "lstm" or "gru"
    num_layers: int = 1
    bidirectional: bool = False
    pooling: str = "last"  # "last", "max", "mean" or "max_mean"
    dropout: float = 0.0  # on the pooled features (and between stacked layers)
    emb_dropout: float = 0.0  # on the embedded inputs
    packed: bool = False  # run the RNNs on packed sequences (same result, slower on CPU)

    def to_dict(self) -> dict:
        return asdict(self)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of a right-padded batch within its own length; the padding stays at the end.

    Args:
        x: ``(N, T, D)``; lengths: ``(N,)`` with ``1 <= lengths[n] <= T``.

    Returns:
        ``(N, T, D)`` with ``out[n, t] = x[n, lengths[n] - 1 - t]`` for ``t < lengths[n]`` and ``x[n, t]`` after.
        Applying it twice gives ``x`` back.
    """
    N, T = x.shape[:2]
    t = torch.arange(T, device=x.device).expand(N, T)  # (N, T)
    lens = lengths.to(x.device).unsqueeze(1)  # (N, 1)
    idx = torch.where(t < lens, lens - 1 - t, t)  # (N, T)
    return x.gather(1, idx.unsqueeze(-1).expand_as(x))


def valid_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """``(N, T)`` boolean mask, True on the first ``lengths[n]`` steps of sequence n."""
    return torch.arange(T, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class SentimentRNN(nn.Module):
    """Embedding -> (stacked, optionally bidirectional) RNN/LSTM/GRU -> pooling over valid steps -> one logit.

    ``forward`` returns logits ``(N,)``; :meth:`predict_proba` applies the sigmoid. Train it with
    ``nn.BCEWithLogitsLoss``, which fuses the sigmoid and the binary cross-entropy stably.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, not {config.cell!r}")
        if config.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {config.pooling!r}")
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=0)
        self.emb_dropout = nn.Dropout(c.emb_dropout)
        self.dropout = nn.Dropout(c.dropout)
        K = 2 if c.bidirectional else 1
        rnn = CELLS[c.cell]
        # one unidirectional RNN per layer and direction: the backward one reads reversed sequences
        self.forward_rnns = nn.ModuleList(
            rnn(c.embed_dim if i == 0 else K * c.hidden_size, c.hidden_size, batch_first=True)
            for i in range(c.num_layers)
        )
        self.backward_rnns = nn.ModuleList(
            rnn(c.embed_dim if i == 0 else K * c.hidden_size, c.hidden_size, batch_first=True)
            for i in range(c.num_layers if c.bidirectional else 0)
        )
        features = K * c.hidden_size * (2 if c.pooling == "max_mean" else 1)
        self.output = nn.Linear(features, 1)

    def _run(self, rnn: nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, T, H)`` of one unidirectional RNN; steps after a sequence's end are not meaningful."""
        if not self.config.packed:
            return rnn(x)[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=x.shape[1])[0]

    def features(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Hidden states of the last layer, ``(N, T, K*H)``, valid on the first ``lengths[n]`` steps."""
        x = self.emb_dropout(self.embedding(tokens))  # (N, T, E)
        for i, fwd in enumerate(self.forward_rnns):
            if i > 0:
                x = self.dropout(x)
            out = self._run(fwd, x, lengths)  # (N, T, H)
            if self.config.bidirectional:
                back = self._run(self.backward_rnns[i], reverse_padded(x, lengths), lengths)
                out = torch.cat([out, reverse_padded(back, lengths)], dim=-1)  # (N, T, 2H)
            x = out
        return x

    def pool(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Pool hidden states ``(N, T, K*H)`` over each sequence's valid steps into ``(N, F)`` features.

        ``last``: the forward direction's state at the last valid step, concatenated with the backward
        direction's state at the first step (the end of *its* reading), like ``h_n`` of a packed RNN.
        """
        N, T, _ = h.shape
        lengths = lengths.to(h.device)
        if self.config.pooling == "last":
            H = self.config.hidden_size
            last = h[torch.arange(N, device=h.device), lengths - 1]  # (N, K*H)
            if self.config.bidirectional:
                last = torch.cat([last[:, :H], h[:, 0, H:]], dim=1)
            return last
        mask = valid_mask(lengths, T).unsqueeze(-1)  # (N, T, 1)
        parts = []
        if self.config.pooling in ("max", "max_mean"):
            parts.append(h.masked_fill(~mask, float("-inf")).amax(dim=1))
        if self.config.pooling in ("mean", "max_mean"):
            parts.append((h * mask).sum(dim=1) / lengths.unsqueeze(1).to(h.dtype))
        return torch.cat(parts, dim=1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits ``(N,)`` for right-padded ``tokens (N, T)`` with ``lengths (N,)``."""
        pooled = self.pool(self.features(tokens, lengths), lengths)
        return self.output(self.dropout(pooled)).squeeze(-1)

    @torch.no_grad()
    def predict_proba(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(N,)`` that each review is positive (in eval mode: no dropout)."""
        was_training = self.training
        self.eval()
        try:
            return torch.sigmoid(self(tokens, lengths))
        finally:
            self.train(was_training)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
