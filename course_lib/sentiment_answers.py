"""Assignment 5's answers in the assignment's own form, for its graded tests' expected values.

The chapter's modules (:mod:`course_lib.text`, :mod:`course_lib.models`, :mod:`course_lib.train`) do the same
jobs with other choices (a tokenizer that keeps ``!`` and ``?``, a vocabulary object, length-bucketed batches,
pooled stacked RNNs), and their source is hashed into the IMDb result records (:mod:`course_lib.imdb_records`),
so the assignment's reference lives here, where changing it marks no record stale. In the grader's sandbox this
module is a stub like every reference: the tests of ``05_imdb_sentiment`` reach it only through
``reference("course_lib.sentiment_answers")``.

Dimension legend: N reviews, T tokens (the longest kept review), E embedding size, H hidden units.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

PAD_ID, UNK_ID = 0, 1


def tokenize(text: str) -> list[str]:
    """Lowercase, ``<br />`` to a space, then the runs of ``a-z``, ``0-9`` and ``'`` (all else is dropped)."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("<br />", " "))


def build_vocab(token_lists: Sequence[Sequence[str]], max_size: int) -> dict[str, int]:
    """``<pad>`` 0, ``<unk>`` 1, then the ``max_size - 2`` most frequent tokens, ties broken alphabetically."""
    counts = Counter(token for tokens in token_lists for token in tokens)
    ranked = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][: max(max_size - 2, 0)]
    return {w: i for i, w in enumerate(["<pad>", "<unk>"] + ranked)}


def encode_batch(token_lists: Sequence[Sequence[str]], vocab: dict[str, int],
                 max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids (unknown words ``<unk>``), the last ``max_len`` of each list, right-padded with 0 to the longest;
    ``X (N, T)`` and ``lengths (N,)`` int64, an empty list of length 1 (one pad)."""
    ids = [[vocab.get(w, UNK_ID) for w in tokens][-max_len:] if max_len > 0 else [] for tokens in token_lists]
    lengths = [max(len(s), 1) for s in ids]
    X = torch.full((len(ids), max(lengths, default=1)), PAD_ID, dtype=torch.int64)
    for n, s in enumerate(ids):
        X[n, : len(s)] = torch.as_tensor(s, dtype=torch.int64)
    return X, torch.as_tensor(lengths, dtype=torch.int64)


class SentimentClassifier(nn.Module):
    """Embedding (pad id 0) -> one-layer GRU (batch first) -> the state at each review's last token -> a logit."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.rnn = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, 1)

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.rnn(self.embedding(X))[0]  # (N, T, H)
        return self.out(h[torch.arange(len(X)), lengths - 1]).squeeze(-1)


def classifier_layout(vocab_size: int, embed_dim: int, hidden_size: int) -> dict:
    """What the tests read of a classifier's layers: their types, the pad id, batch_first, parameter shapes and
    the layer sizes."""
    m = SentimentClassifier(vocab_size, embed_dim, hidden_size)
    return {"layers": {name: type(getattr(m, name)).__name__ for name in ("embedding", "rnn", "out")},
            "padding_idx": m.embedding.padding_idx, "batch_first": m.rnn.batch_first,
            "parameters": {n: list(p.shape) for n, p in m.named_parameters()},
            "sizes": [m.embedding.num_embeddings, m.embedding.embedding_dim, m.rnn.hidden_size, m.out.out_features]}


def logits_by_example(weights: dict[str, np.ndarray], X, lengths, at_last_step: bool = False) -> np.ndarray:
    """The classifier with these weights (``name -> array``), one review at a time without its padding
    (float64); ``at_last_step``: from step ``T - 1`` of the padded row instead (what a mistake computes)."""
    E, H = weights["embedding.weight"].shape[1], weights["rnn.weight_hh_l0"].shape[1]
    gru = nn.GRU(E, H, batch_first=True).double()
    out = []
    with torch.no_grad():
        for name, p in gru.named_parameters():
            p.copy_(torch.as_tensor(weights[f"rnn.{name}"]))
        for n in range(len(X)):
            ids = X[n] if at_last_step else X[n, : int(lengths[n])]
            h = gru(torch.as_tensor(weights["embedding.weight"])[ids][None])[0][0, -1]
            out.append(float(h @ torch.as_tensor(weights["out.weight"])[0] + weights["out.bias"][0]))
    return np.array(out)


def epoch_batches(n: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """The batches of one epoch: ``np.random.default_rng(seed).permutation(n)`` cut into ``batch_size`` pieces."""
    perm = np.random.default_rng(seed).permutation(n)
    return [perm[s : s + batch_size] for s in range(0, n, batch_size)]


def batch_losses_and_gradients(model: nn.Module, X, lengths, y, batches,
                               accumulate: bool = False) -> tuple[list[float], np.ndarray]:
    """On a copy of ``model``: the loss and the flattened gradient of each batch of indices (the gradients
    summed from batch to batch if ``accumulate``); the parameters do not change."""
    model = copy.deepcopy(model)
    losses, grads, total = [], [], 0
    y = torch.as_tensor(np.asarray(y))
    for idx in batches:
        idx = torch.as_tensor(np.asarray(idx))
        model.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(X[idx], lengths[idx]), y[idx].float())
        loss.backward()
        grad = np.concatenate([p.grad.detach().double().numpy().ravel() for p in model.parameters()])
        total = total + grad if accumulate else grad
        losses.append(loss.item())
        grads.append(total)
    return losses, np.array(grads)


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, X, lengths, y, batch_size: int,
                seed: int) -> float:
    """One epoch over :func:`epoch_batches`: zero the gradients, the mean binary cross-entropy with logits of
    the batch, backward, a step; returns the plain mean of the batch losses (a Python float)."""
    y = torch.as_tensor(np.asarray(y))
    losses = []
    for idx in epoch_batches(len(X), batch_size, seed):
        idx = torch.as_tensor(idx)
        loss = nn.functional.binary_cross_entropy_with_logits(model(X[idx], lengths[idx]), y[idx].float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def adam_epoch(model: nn.Module, X, lengths, y, batch_size: int, seed: int,
               lr: float = 0.05) -> tuple[float, np.ndarray]:
    """:func:`train_epoch` of a copy of ``model`` with ``torch.optim.Adam(lr=lr)``: the returned loss and the
    parameters after the epoch, flattened (float64)."""
    model = copy.deepcopy(model)
    loss = train_epoch(model, torch.optim.Adam(model.parameters(), lr=lr), X, lengths, y, batch_size, seed)
    return loss, np.concatenate([p.detach().double().numpy().ravel() for p in model.parameters()])
