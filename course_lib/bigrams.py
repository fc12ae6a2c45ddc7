r"""N-gram-aware inputs for the recurrent sentiment classifier: each token's embedding plus one for the pair
of tokens that ends at it (and optionally one for the triple).

The bag-of-words baseline owes much of its accuracy to bigrams ("not good", "at best"); a recurrent layer can
learn such pairs from word embeddings alone, but on 22,500 reviews it does so slowly. Here the input at step
:math:`t` is

.. math::

    x_t = E\,[w_t] + P\,\big(B\,[(w_{t-1}, w_t)] + C\,[(w_{t-2}, w_{t-1}, w_t)]\big),

with :math:`E` the usual ``(V, E)`` embedding, :math:`B` a ``(K + 1, d)`` table for the :math:`K` bigrams kept
(row 0, the zero vector, for every other pair and for padding), :math:`C` the same for trigrams (only when
``max_trigrams > 0``) and :math:`P` a ``(d, E)`` projection (none when ``bigram_dim`` :math:`d = E`). Whole
n-grams are dropped during training (``bigram_dropout``) and only those seen often enough are kept
(``bigram_min_count``): an n-gram seen in a handful of reviews can otherwise memorise their labels (on this
data, keeping every pair seen 3 times with no dropout and an 8-wide table, training accuracy passed 98% in the
second epoch while validation accuracy fell).

The n-grams kept are the ``max_bigrams`` (``max_trigrams``) most frequent seen at least ``bigram_min_count``
times in the *training part* of a run (never its validation or test reviews, :func:`count_ngrams`). They are
stored in the model as sorted buffers of keys (``w_{t-1} * V + w_t`` for a pair, :func:`ngram_keys`), so the
model maps token ids to n-gram ids itself (:func:`ngram_ids`): batches, training loop, evaluation and
:func:`course_lib.train.predict_texts` are those of :class:`course_lib.models.SentimentRNN`, and a checkpoint
holds everything needed to rebuild the model. Positions before a review's first token count as id 0 (the
padding id), as if the review were preceded by empty words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .models import ModelConfig, SentimentRNN


def ngram_keys(seq: np.ndarray, vocab_size: int, n: int = 2) -> np.ndarray:
    """Keys (int64) of the n-grams ending at each token of one encoded review: for pairs (``n = 2``)
    ``w_{t-1} * V + w_t``, for triples ``(w_{t-2} * V + w_{t-1}) * V + w_t``; positions before the review's
    first token count as id 0."""
    _check_order(vocab_size, n)
    seq = np.asarray(seq, dtype=np.int64)
    keys = seq.copy()
    for back in range(1, n):  # the token `back` steps earlier, 0 before the start
        keys += np.concatenate([np.zeros(min(back, len(seq)), np.int64), seq[:-back]]) * vocab_size**back
    return keys


def _check_order(vocab_size: int, n: int) -> None:
    if n < 2 or vocab_size**n >= 2**63:
        raise ValueError(f"n-grams of order {n} over {vocab_size} ids cannot be keyed in int64 (n must be >= 2)")


def count_ngrams(seqs: Sequence[np.ndarray], vocab_size: int, max_ngrams: int, min_count: int = 1,
                 n: int = 2) -> np.ndarray:
    """The sorted keys of the ``max_ngrams`` most frequent n-grams (:func:`ngram_keys`) seen at least
    ``min_count`` times.

    Args:
        seqs: encoded reviews (token ids, 0 for padding never occurs inside them).
        vocab_size: V, the number of token ids.

    Returns:
        ``(K,)`` int64, ascending; ties in frequency are broken by the smaller key, so the result is reproducible.
    """
    if max_ngrams < 1 or min_count < 1:
        raise ValueError(f"max_ngrams and min_count must be at least 1, not {max_ngrams} and {min_count}")
    if not len(seqs):
        return np.zeros(0, dtype=np.int64)
    keys, counts = np.unique(np.concatenate([ngram_keys(s, vocab_size, n) for s in seqs]), return_counts=True)
    keys, counts = keys[counts >= min_count], counts[counts >= min_count]
    order = np.lexsort((keys, -counts))[:max_ngrams]  # most frequent first, then smaller key
    return np.sort(keys[order])


def ngram_ids(tokens: torch.Tensor, keys: torch.Tensor, vocab_size: int, n: int = 2) -> torch.Tensor:
    """N-gram ids ``(N, T)`` of right-padded ``tokens (N, T)``: ``1 + position in keys`` for a kept n-gram,
    0 for any other and at padding."""
    t = tokens.long()
    query = t.clone()  # (N, T)
    for back in range(1, n):
        query += torch.cat([torch.zeros_like(t[:, :back]), t[:, :-back]], dim=1)[:, : t.shape[1]] * vocab_size**back
    if len(keys) == 0:
        return torch.zeros_like(t)
    pos = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
    found = (keys[pos] == query) & (t != 0)
    return torch.where(found, pos + 1, torch.zeros_like(pos))


@dataclass
class BigramConfig(ModelConfig):
    """:class:`ModelConfig` with bigram (and optionally trigram) inputs. ``bigrams`` and ``trigrams`` are the
    numbers kept (set by the run from its training part); ``max_*`` and ``bigram_min_count`` say how they were
    chosen (``max_trigrams = 0``: pairs only). Triples share the pairs' width, projection, minimum count and
    dropout."""

    bigrams: int = 0
    max_bigrams: int = 200_000
    bigram_min_count: int = 3
    bigram_dim: int = 8
    bigram_dropout: float = 0.0  # probability of dropping a whole bigram (its id set to 0) while training
    trigrams: int = 0
    max_trigrams: int = 0


class BigramEmbedding(nn.Module):
    """``tokens (N, T) -> (N, T, E)``: word embedding plus the projected embeddings of the bigram (and trigram)
    ending there."""

    def __init__(self, config: BigramConfig):
        super().__init__()
        self.vocab_size, self.dropout = config.vocab_size, config.bigram_dropout
        self.words = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.register_buffer("keys", torch.zeros(config.bigrams, dtype=torch.int64))
        self.bigrams = self._table(config.bigrams, config.bigram_dim)
        self.trigrams = None
        if config.max_trigrams:
            _check_order(config.vocab_size, 3)
            self.register_buffer("trigram_keys", torch.zeros(config.trigrams, dtype=torch.int64))
            self.trigrams = self._table(config.trigrams, config.bigram_dim)
        same = config.bigram_dim == config.embed_dim
        self.project = nn.Identity() if same else nn.Linear(config.bigram_dim, config.embed_dim, bias=False)

    @staticmethod
    def _table(rows: int, width: int) -> nn.Embedding:
        table = nn.Embedding(rows + 1, width, padding_idx=0)
        with torch.no_grad():  # small at first (the words lead); row 0 stays zero
            table.weight.normal_(0.0, 0.1)[0].zero_()
        return table

    def _lookup(self, table: nn.Embedding, tokens: torch.Tensor, keys: torch.Tensor, n: int) -> torch.Tensor:
        ids = ngram_ids(tokens, keys, self.vocab_size, n)
        if self.training and self.dropout > 0:
            ids = ids.masked_fill(torch.rand(ids.shape, device=ids.device) < self.dropout, 0)
        return table(ids)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        grams = self._lookup(self.bigrams, tokens, self.keys, 2)
        if self.trigrams is not None:
            grams = grams + self._lookup(self.trigrams, tokens, self.trigram_keys, 3)
        return self.words(tokens) + self.project(grams)


class BigramSentimentRNN(SentimentRNN):
    """:class:`SentimentRNN` whose embedding layer is a :class:`BigramEmbedding`; set its n-grams with
    :meth:`set_keys` before training (a checkpoint's ``state_dict`` restores them)."""

    def __init__(self, config: BigramConfig):
        super().__init__(config)
        self.embedding = BigramEmbedding(config)

    def set_keys(self, keys: np.ndarray, trigram_keys: np.ndarray | None = None) -> None:
        """The sorted keys (:func:`count_ngrams`) of the bigrams kept, and of the trigrams if the model has them."""
        buffers = [(self.embedding.keys, keys, "bigrams")]
        if self.embedding.trigrams is not None:
            if trigram_keys is None:
                raise ValueError("the model has trigram inputs: pass trigram_keys")
            buffers.append((self.embedding.trigram_keys, trigram_keys, "trigrams"))
        elif trigram_keys is not None:
            raise ValueError("trigram_keys for a model without trigram inputs")
        for buffer, new, what in buffers:
            if len(new) != len(buffer):
                raise ValueError(f"{len(new)} keys for a model built for {len(buffer)} {what}")
            if len(new) > 1 and not np.all(np.diff(new) > 0):
                raise ValueError(f"{what} keys must be strictly increasing (use count_ngrams)")
        for buffer, new, _ in buffers:
            buffer.copy_(torch.as_tensor(new, dtype=torch.int64))


def build_model(config: dict) -> SentimentRNN:
    """The model a run's ``model_config`` describes: a :class:`BigramSentimentRNN` when it has bigram fields."""
    if "bigram_dim" in config:
        return BigramSentimentRNN(BigramConfig(**config))
    return SentimentRNN(ModelConfig(**config))
