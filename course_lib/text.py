r"""Text to tensors: a tokenizer, a vocabulary, padding and truncation, and length-bucketed batches.

Dimension legend: N batch, T time steps (tokens). A review becomes a sequence of integer token ids; a batch of
reviews becomes a right-padded ``(N, T)`` int64 tensor of ids plus a ``(N,)`` tensor of lengths, so that a model
can ignore the padding (it masks it; see :mod:`course_lib.models`).

Why buckets and not packed sequences: on a 2-core CPU with torch 2.13, one LSTM batch (N=64, T=400, E=H=64)
forward and backward took 136 ms padded against 717 ms through ``pack_padded_sequence``
(``benchmarks/bench_imdb.py --batching`` measures it again). Padding is cheap when a batch's reviews have
similar lengths, so :func:`bucket_batches` groups reviews of similar length, and the model masks the few pad
steps left instead of packing them away.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

PAD, UNK = "<pad>", "<unk>"
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# words (with inner apostrophes: don't, it's), numbers, and the two punctuation marks that carry sentiment
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[!?]")
TOKENIZER_VERSION = 1  # bump when tokenize() changes: it is part of the cache keys of encoded data


def tokenize(text: str) -> list[str]:
    """Lowercase ``text``, turn the ``<br />`` line breaks of IMDb reviews into spaces, and split it into tokens.

    Tokens are words (keeping inner apostrophes: ``don't``), numbers, ``!`` and ``?``; other punctuation
    is dropped.

    Example::

        >>> tokenize("Great film!<br /><br />I didn't expect THAT.")
        ['great', 'film', '!', 'i', "didn't", 'expect', 'that']
    """
    return _TOKEN.findall(_BREAK.sub(" ", text).lower())


class Vocabulary:
    """A mapping between tokens and integer ids, with ``<pad>`` = 0 and ``<unk>`` = 1.

    Built from tokenized training texts: the ``max_size - 2`` most frequent tokens (ties broken
    alphabetically, so the result does not depend on the order of the texts) that occur at least ``min_freq``
    times. Any other token encodes as ``<unk>``.

    Attributes:
        itos: list of tokens, ``itos[i]`` is the token of id ``i``.
        stoi: dict from token to id.
        counts: training-set frequency of each kept token (0 for the specials).
    """

    def __init__(self, itos: Sequence[str], counts: Sequence[int] | None = None):
        if list(itos[:2]) != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD!r} and {UNK!r}, got {list(itos[:2])}")
        self.itos = list(itos)
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate tokens in the vocabulary")
        self.counts = list(counts) if counts is not None else [0] * len(self.itos)

    pad_id, unk_id = 0, 1

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], max_size: int | None = None, min_freq: int = 1):
        """Count tokens over ``token_lists`` and keep the most frequent; ``max_size`` includes the 2 specials."""
        if max_size is not None and max_size < 2:
            raise ValueError("max_size must leave room for <pad> and <unk> (>= 2)")
        counter: Counter[str] = Counter()
        for tokens in token_lists:
            counter.update(tokens)
        for special in (PAD, UNK):
            counter.pop(special, None)
        ranked = sorted((item for item in counter.items() if item[1] >= min_freq), key=lambda kv: (-kv[1], kv[0]))
        if max_size is not None:
            ranked = ranked[: max_size - 2]
        return cls([PAD, UNK] + [w for w, _ in ranked], [0, 0] + [c for _, c in ranked])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Token ids of ``tokens``, ``(T,)`` int32; unknown tokens become ``unk_id``."""
        get = self.stoi.get
        return np.fromiter((get(t, 1) for t in tokens), dtype=np.int32, count=len(tokens))

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids`` (pads included, if any)."""
        return [self.itos[int(i)] for i in ids]

    def coverage(self, token_lists: Iterable[Sequence[str]]) -> float:
        """Fraction of the tokens of ``token_lists`` that are in the vocabulary (not ``<unk>``)."""
        known = total = 0
        stoi = self.stoi
        for tokens in token_lists:
            total += len(tokens)
            known += sum(1 for t in tokens if t in stoi)
        return known / max(total, 1)

    def to_dict(self) -> dict:
        """A JSON- and ``torch.save``-friendly form; :meth:`from_dict` inverts it."""
        return {"itos": list(self.itos), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, state: dict) -> Vocabulary:
        return cls(state["itos"], state.get("counts"))

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens: {self.itos[2:7]}...)"


def truncate(ids: np.ndarray, max_len: int | None, keep: str = "last") -> np.ndarray:
    """The first or last ``max_len`` ids of one sequence (all of them if it is not longer).

    Args:
        ids: ``(T,)`` token ids.
        max_len: the longest sequence to keep, or None for no limit.
        keep: ``"first"`` keeps the beginning of a long review, ``"last"`` its end (where reviewers tend to
            sum up their verdict).
    """
    if keep not in ("first", "last"):
        raise ValueError(f"keep must be 'first' or 'last', not {keep!r}")
    if max_len is None or len(ids) <= max_len:
        return ids
    return ids[:max_len] if keep == "first" else ids[len(ids) - max_len :]


def pad_batch(
    seqs: Sequence[np.ndarray], max_len: int | None = None, keep: str = "last", pad_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncate each sequence to ``max_len`` and right-pad them all to the longest one.

    Args:
        seqs: N sequences of token ids, each ``(T_n,)``.
        max_len: truncation length (None: no truncation); keep: which end to keep, see :func:`truncate`.
        pad_id: the id written after the end of each sequence.

    Returns:
        tokens: ``(N, T)`` int64 with ``T = max_n min(T_n, max_len)``; lengths: ``(N,)`` int64. An empty
        sequence gets length 1 (one pad step) so that every sequence has a last step.
    """
    cut = [truncate(np.asarray(s), max_len, keep) for s in seqs]
    lengths = np.array([max(len(s), 1) for s in cut], dtype=np.int64)
    tokens = np.full((len(cut), int(lengths.max(initial=1))), pad_id, dtype=np.int64)  # (N, T)
    for n, s in enumerate(cut):
        tokens[n, : len(s)] = s
    return torch.from_numpy(tokens), torch.from_numpy(lengths)


def bucket_batches(
    lengths: np.ndarray, batch_size: int, shuffle: bool = True, seed=0, pool: int = 50
) -> list[np.ndarray]:
    """Split indices ``0..N-1`` into batches of similar lengths.

    With ``shuffle``, the indices are permuted, cut into pools of ``pool * batch_size``, each pool is sorted by
    length and cut into batches, and the batches are shuffled: every epoch sees different batches, yet each
    holds reviews of similar length, so little padding is processed. Without ``shuffle`` all indices are sorted
    by length (stable), which is the fastest order for evaluation.

    Args:
        lengths: ``(N,)`` sequence lengths (after truncation, or not: only their order matters).
        batch_size: at most this many indices per batch; seed: anything ``np.random.default_rng`` accepts.

    Returns:
        a list of int64 index arrays that together hold each index exactly once.
    """
    lengths = np.asarray(lengths)
    n = len(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    step = pool * batch_size
    batches = []
    for start in range(0, n, step):
        chunk = perm[start : start + step]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass
class SequenceDataset:
    """Encoded reviews and their labels: ``seqs[n]`` is an ``(T_n,)`` int32 array, ``labels`` ``(N,)`` in {0, 1}."""

    seqs: list[np.ndarray]
    labels: np.ndarray

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.seqs) != len(self.labels):
            raise ValueError(f"{len(self.seqs)} sequences but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.seqs)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(s) for s in self.seqs), dtype=np.int64, count=len(self.seqs))

    def subset(self, idx: Sequence[int]) -> SequenceDataset:
        return SequenceDataset([self.seqs[i] for i in idx], self.labels[np.asarray(idx, dtype=np.int64)])

    def split(self, fraction: float, seed=0) -> tuple[SequenceDataset, SequenceDataset]:
        """A random ``(1 - fraction, fraction)`` split (e.g. train and validation), reproducible from ``seed``."""
        perm = np.random.default_rng(seed).permutation(len(self))
        n_second = int(round(fraction * len(self)))
        return self.subset(np.sort(perm[n_second:])), self.subset(np.sort(perm[:n_second]))

    def batches(
        self, batch_size: int, max_len: int | None = None, keep: str = "last", shuffle: bool = False, seed=0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]]:
        """Length-bucketed batches ``(tokens (N, T), lengths (N,), labels (N,) float, indices (N,))``."""
        lengths = self.lengths()
        if max_len is not None:
            lengths = np.minimum(lengths, max_len)
        for idx in bucket_batches(lengths, batch_size, shuffle=shuffle, seed=seed):
            tokens, lens = pad_batch([self.seqs[i] for i in idx], max_len, keep)
            yield tokens, lens, torch.from_numpy(self.labels[idx]).float(), idx
