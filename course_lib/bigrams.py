r"""Bigram-aware inputs for the recurrent sentiment classifier: each token's embedding plus one for the pair of
tokens that ends at it.

The bag-of-words baseline owes much of its accuracy to bigrams ("not good", "at best"); a recurrent layer can
learn such pairs from word embeddings alone, but on 22,500 reviews it does so slowly. Here the input at step
:math:`t` is

.. math::

    x_t = E\,[w_t] + P\,B\,[(w_{t-1}, w_t)],

with :math:`E` the usual ``(V, E)`` embedding, :math:`B` a ``(K + 1, d)`` table for the :math:`K` bigrams kept
(row 0, the zero vector, for every other pair and for padding) and :math:`P` a ``(d, E)`` projection (none when
``bigram_dim`` :math:`d = E`). Whole bigrams are dropped during training (``bigram_dropout``) and only pairs seen
often enough are kept (``bigram_min_count``): a bigram seen in a handful of reviews can otherwise memorise their
labels (on this data, keeping every pair seen 3 times with no dropout, training accuracy passed 98% in the second
epoch while validation accuracy fell).

The bigrams kept are the ``max_bigrams`` most frequent pairs seen at least ``bigram_min_count`` times in the
*training part* of a run (never its validation or test reviews, :func:`count_bigrams`). They are stored in the
model as a sorted buffer of keys ``w_{t-1} * V + w_t``, so the model maps token ids to bigram ids itself
(:func:`bigram_ids`): batches, training loop, evaluation and :func:`course_lib.train.predict_texts` are those
of :class:`course_lib.models.SentimentRNN`, and a checkpoint holds everything needed to rebuild the model.
The first token of a review pairs with id 0 (the padding id), as if preceded by an empty word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .models import ModelConfig, SentimentRNN


def bigram_keys(seq: np.ndarray, vocab_size: int) -> np.ndarray:
    """Keys ``w_{t-1} * vocab_size + w_t`` (int64) of the pairs ending at each token of one encoded review."""
    seq = np.asarray(seq, dtype=np.int64)
    return np.concatenate([[0], seq[:-1]]) * vocab_size + seq


def count_bigrams(seqs: Sequence[np.ndarray], vocab_size: int, max_bigrams: int, min_count: int = 1) -> np.ndarray:
    """The sorted keys of the ``max_bigrams`` most frequent bigrams seen at least ``min_count`` times.

    Args:
        seqs: encoded reviews (token ids, 0 for padding never occurs inside them).
        vocab_size: V, the number of token ids.

    Returns:
        ``(K,)`` int64, ascending; ties in frequency are broken by the smaller key, so the result is reproducible.
    """
    if max_bigrams < 1 or min_count < 1:
        raise ValueError(f"max_bigrams and min_count must be at least 1, not {max_bigrams} and {min_count}")
    if not len(seqs):
        return np.zeros(0, dtype=np.int64)
    keys, counts = np.unique(np.concatenate([bigram_keys(s, vocab_size) for s in seqs]), return_counts=True)
    keys, counts = keys[counts >= min_count], counts[counts >= min_count]
    order = np.lexsort((keys, -counts))[:max_bigrams]  # most frequent first, then smaller key
    return np.sort(keys[order])


def bigram_ids(tokens: torch.Tensor, keys: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Bigram ids ``(N, T)`` of right-padded ``tokens (N, T)``: ``1 + position in keys`` for a kept bigram,
    0 for any other pair and at padding."""
    t = tokens.long()
    prev = torch.cat([torch.zeros_like(t[:, :1]), t[:, :-1]], dim=1)
    query = prev * vocab_size + t  # (N, T)
    if len(keys) == 0:
        return torch.zeros_like(t)
    pos = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
    found = (keys[pos] == query) & (t != 0)
    return torch.where(found, pos + 1, torch.zeros_like(pos))


@dataclass
class BigramConfig(ModelConfig):
    """:class:`ModelConfig` with bigram inputs. ``bigrams`` is the number of bigrams kept (set by the run from
    its training part); ``max_bigrams`` and ``bigram_min_count`` say how they were chosen."""

    bigrams: int = 0
    max_bigrams: int = 200_000
    bigram_min_count: int = 3
    bigram_dim: int = 8
    bigram_dropout: float = 0.0  # probability of dropping a whole bigram (its id set to 0) while training


class BigramEmbedding(nn.Module):
    """``tokens (N, T) -> (N, T, E)``: word embedding plus the projected embedding of the bigram ending there."""

    def __init__(self, config: BigramConfig):
        super().__init__()
        self.vocab_size, self.dropout = config.vocab_size, config.bigram_dropout
        self.words = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.register_buffer("keys", torch.zeros(config.bigrams, dtype=torch.int64))
        self.bigrams = nn.Embedding(config.bigrams + 1, config.bigram_dim, padding_idx=0)
        with torch.no_grad():  # small at first (the words lead); row 0 stays zero
            self.bigrams.weight.normal_(0.0, 0.1)[0].zero_()
        same = config.bigram_dim == config.embed_dim
        self.project = nn.Identity() if same else nn.Linear(config.bigram_dim, config.embed_dim, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        ids = bigram_ids(tokens, self.keys, self.vocab_size)
        if self.training and self.dropout > 0:
            ids = ids.masked_fill(torch.rand(ids.shape, device=ids.device) < self.dropout, 0)
        return self.words(tokens) + self.project(self.bigrams(ids))


class BigramSentimentRNN(SentimentRNN):
    """:class:`SentimentRNN` whose embedding layer is a :class:`BigramEmbedding`; set its bigrams with
    :meth:`set_keys` before training (a checkpoint's ``state_dict`` restores them)."""

    def __init__(self, config: BigramConfig):
        super().__init__(config)
        self.embedding = BigramEmbedding(config)

    def set_keys(self, keys: np.ndarray) -> None:
        if len(keys) != self.config.bigrams:
            raise ValueError(f"{len(keys)} keys for a model built for {self.config.bigrams} bigrams")
        if len(keys) > 1 and not np.all(np.diff(keys) > 0):
            raise ValueError("bigram keys must be strictly increasing (use count_bigrams)")
        self.embedding.keys.copy_(torch.as_tensor(keys, dtype=torch.int64))


def build_model(config: dict) -> SentimentRNN:
    """The model a run's ``model_config`` describes: a :class:`BigramSentimentRNN` when it has bigram fields."""
    if "bigram_dim" in config:
        return BigramSentimentRNN(BigramConfig(**config))
    return SentimentRNN(ModelConfig(**config))
