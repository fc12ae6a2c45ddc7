r"""Pretraining a recurrent sentiment classifier as a language model on text without labels, then fine-tuning it
(Dai and Le, 2015; ULMFiT, Howard and Ruder, 2018).

Dimension legend: N batch, T time steps (tokens), V vocabulary size, E embedding size, H hidden units.

A word-level language model reads the training reviews' text, one long stream of token ids, and predicts the
next token at every step:

.. math::

    x_t = E[w_t], \qquad h_t = \mathrm{GRU}(x_t, h_{t-1}), \qquad
    P(w_{t+1} = v \mid w_{\le t}) = \mathrm{softmax}(h_t W_{\mathrm{out}} + b_{\mathrm{out}})_v.

Its embedding :math:`E` and recurrent layer have exactly the shapes of the first layer of a unidirectional
:class:`course_lib.models.SentimentRNN`, so :func:`transfer` copies them into the classifier, which is then
trained on the labelled reviews (fine-tuned) by :func:`course_lib.train.fit`, like a classifier from scratch.

* :class:`WordLM` holds the language model; :func:`lm_stream` joins reviews into one stream;
  :func:`train_word_lm` trains it with truncated BPTT and Adam (:func:`course_lib.charlm.tbptt_batches` cuts
  the chunks); :func:`evaluate_word_lm` scores held-out text in nats per token.
* :func:`unlabelled_reviews` encodes the archive's 50,000 unlabelled training reviews (``train/unsup``) where the
  copy of the dataset has them, for the language model only.
* :func:`label_subset` draws a balanced subset of labelled reviews, for runs at a small scale.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .charlm import tbptt_batches
from .models import CELLS, SentimentRNN
from .text import SequenceDataset, Vocabulary, tokenize


@dataclass
class LMConfig:
    """Hyperparameters of :class:`WordLM` (the classifier's ``embed_dim``, ``hidden_size`` and ``cell``)."""

    vocab_size: int
    embed_dim: int = 64
    hidden_size: int = 64
    cell: str = "gru"
    dropout: float = 0.1  # on the embedded inputs and the outputs, while training
    output_vocab: int | None = None  # predict only ids below this (the most frequent words); None: all

    @property
    def n_outputs(self) -> int:
        return self.vocab_size if self.output_vocab is None else min(self.output_vocab, self.vocab_size)

    def to_dict(self) -> dict:
        return asdict(self)


class WordLM(nn.Module):
    """Embedding ``(V, E)`` -> one ``batch_first`` RNN/LSTM/GRU ``(E -> H)`` -> affine output ``(H, K)``.

    ``K = V``, or with ``output_vocab`` only the ``K`` most frequent ids (a shortlist): the output layer is most
    of a word model's cost, and a rarer next word is then not predicted (it stays an input).
    """

    def __init__(self, config: LMConfig):
        super().__init__()
        c = self.config = config
        if c.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, not {c.cell!r}")
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
        self.rnn = CELLS[c.cell](c.embed_dim, c.hidden_size, batch_first=True)
        self.dropout = nn.Dropout(c.dropout)
        self.output = nn.Linear(c.hidden_size, c.n_outputs)

    def forward(self, ids: torch.Tensor, state=None):
        """Next-token scores ``(N, T, K)``, ``K = config.n_outputs``, and the RNN's last state."""
        out, state = self.rnn(self.dropout(self.embedding(ids)), state)  # (N, T, H)
        return self.output(self.dropout(out)), state


def lm_stream(seqs: Sequence[np.ndarray]) -> np.ndarray:
    """The reviews' token ids joined end to end into one ``(L,)`` int64 stream (the language model's text)."""
    return np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs])


def _targets(y: torch.Tensor, n_outputs: int) -> torch.Tensor:
    """``y`` with the ids that are not predicted (pad, unk, beyond the outputs) set to -100 (ignored)."""
    return y.masked_fill((y < 2) | (y >= n_outputs), -100)


def _detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def train_word_lm(lm: WordLM, stream: np.ndarray, *, steps: int, batch_size: int = 32, seq_len: int = 64,
                  lr: float = 3e-3, clip: float = 5.0, seed: int = 0, progress: bool = True) -> dict:
    """Train ``lm`` in place on ``stream`` for ``steps`` chunks of ``(batch_size, seq_len)`` tokens.

    The state is carried from chunk to chunk and detached (truncated BPTT); Adam, global-norm clipping. Tokens
    ``<pad>`` and ``<unk>``, and ids outside the model's outputs, are inputs but never targets.

    Returns:
        ``{"loss": [mean cross-entropy (nats per token) of every step], "tokens": tokens read}``.
    """
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(lm.parameters(), lr=lr)
    batches = tbptt_batches(stream, batch_size, seq_len, seed=seed)
    losses, state = [], None
    lm.train()
    for _ in tqdm(range(steps), desc="language model", disable=not progress, mininterval=2.0):
        x, y, reset = next(batches)
        if reset:
            state = None
        scores, state = lm(torch.from_numpy(x), state)
        target = _targets(torch.from_numpy(y), scores.shape[-1])
        loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), target.reshape(-1), ignore_index=-100)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(lm.parameters(), clip)
        optimiser.step()
        state = _detach(state)
        losses.append(loss.item())
    return {"loss": losses, "tokens": steps * batch_size * seq_len}


@torch.no_grad()
def evaluate_word_lm(lm: WordLM, stream: np.ndarray, batch_size: int = 16, seq_len: int = 200) -> float:
    """Mean cross-entropy (nats per token) on held-out ``stream (L,)``, over the targets the model predicts
    (not ``<pad>``, ``<unk>`` or ids outside its outputs)."""
    lm.eval()
    stream = np.asarray(stream, dtype=np.int64)
    L = (len(stream) - 1) // batch_size
    x_all = torch.from_numpy(stream[: batch_size * L].reshape(batch_size, L))  # (N, L)
    y_all = torch.from_numpy(stream[1 : 1 + batch_size * L].reshape(batch_size, L))  # (N, L)
    total, count, state = 0.0, 0, None
    for start in range(0, L, seq_len):
        scores, state = lm(x_all[:, start : start + seq_len], state)
        y = y_all[:, start : start + seq_len]
        keep = (y >= 2) & (y < scores.shape[-1])
        total += F.cross_entropy(scores[keep], y[keep], reduction="sum").item()
        count += int(keep.sum())
    return total / max(count, 1)


def transfer(lm: WordLM, classifier: SentimentRNN) -> SentimentRNN:
    """Copy the language model's embedding and recurrent layer into the classifier's first forward layer.

    The classifier must be unidirectional with the language model's cell, embedding size and hidden size; its
    other layers (the output) keep their initial weights. The ``<pad>`` row of the embedding is zeroed, as the
    classifier's ``padding_idx`` expects. Returns ``classifier`` (changed in place).
    """
    c, lc = classifier.config, lm.config
    mismatch = [name for name in ("cell", "embed_dim", "hidden_size", "vocab_size")
                if getattr(c, name) != getattr(lc, name)]
    if mismatch or c.bidirectional:
        differ = mismatch or ["bidirectional"]
        raise ValueError(f"the classifier and the language model differ in {differ}")
    with torch.no_grad():
        classifier.embedding.weight.copy_(lm.embedding.weight)
        classifier.embedding.weight[0].zero_()
        classifier.forward_rnns[0].load_state_dict(lm.rnn.state_dict())
    return classifier


def label_subset(data: SequenceDataset, n: int, seed: int = 0) -> SequenceDataset:
    """``n`` reviews of ``data``, half of each label (drawn with ``seed``), in their original order."""
    rng = np.random.default_rng(seed)
    idx = [rng.permutation(np.flatnonzero(data.labels == label))[: n // 2] for label in (0, 1)]
    return data.subset(np.sort(np.concatenate(idx)))


def unlabelled_reviews(root: str | os.PathLike, vocab: Vocabulary, limit: int | None = None) -> list[np.ndarray]:
    """The token ids of the archive's unlabelled training reviews, ``<root>/train/unsup/*.txt`` (sorted by name,
    at most ``limit``), encoded with ``vocab``; ``[]`` where the folder is absent (some copies lack it)."""
    folder = Path(root) / "train" / "unsup"
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.txt"))[:limit]
    return [vocab.encode(tokenize(f.read_text(encoding="utf-8"))) for f in files]
