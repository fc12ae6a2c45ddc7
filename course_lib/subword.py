"""Subword units by byte-pair encoding (Sennrich, Haddow and Birch 2016), for the translation models.

A word-level vocabulary of 8,000 Spanish words leaves about one reference word in twenty unknown (Spanish inflects:
*canta, cantaba, cantaron...*), and a model can only answer ``<unk>`` there. Byte-pair encoding starts from
characters and learns, from the training words and their counts, the most frequent adjacent pair of symbols to
merge into one, again and again: after a few thousand merges, frequent words are one symbol and rare ones split
into known pieces (``cantaron`` -> ``cant@@ aron``), so every word the characters of the training data can spell
is written without ``<unk>``.

Pieces that do not end a word carry ``@@`` (the convention of Sennrich et al.'s ``subword-nmt``); :meth:`BPE.join`
glues them back into words. Learning keeps a count of every adjacent pair and, per pair, the words that hold it,
and updates only the words a merge touches, so thousands of merges on the course's corpus take seconds, not hours.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

END = "</w>"  # marks a word's last symbol while learning, so "es" that ends a word differs from "es" inside one
JOINER = "@@"


def _pairs(symbols: Sequence[str]) -> Counter:
    return Counter(zip(symbols[:-1], symbols[1:], strict=True))


def learn_bpe(word_counts: dict[str, int] | Counter, merges: int, min_count: int = 2) -> list[tuple[str, str]]:
    """The first ``merges`` merges of byte-pair encoding on ``word_counts`` (word -> count), in order.

    Each step merges the most frequent adjacent pair of symbols (counted over the words, weighted by their counts;
    ties go to the pair that sorts first), and stops early when no pair occurs ``min_count`` times.
    """
    if merges < 0:
        raise ValueError(f"merges must be >= 0, got {merges}")
    words = [list(w[:-1]) + [w[-1] + END] for w in word_counts if w]
    counts = [word_counts[w] for w in word_counts if w]
    pair_count: Counter = Counter()
    where: defaultdict[tuple[str, str], set[int]] = defaultdict(set)  # pair -> the words holding it
    for i, (symbols, c) in enumerate(zip(words, counts, strict=True)):
        for pair, k in _pairs(symbols).items():
            pair_count[pair] += k * c
            where[pair].add(i)
    heap = [(-c, pair) for pair, c in pair_count.items()]
    heapq.heapify(heap)
    out: list[tuple[str, str]] = []
    while len(out) < merges and heap:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg:  # a stale entry: the pair's count changed since it was pushed
            continue
        if -neg < min_count:
            break
        out.append(pair)
        merged = pair[0] + pair[1]
        changed: set[tuple[str, str]] = set()
        for i in list(where[pair]):
            symbols, c = words[i], counts[i]
            before = _pairs(symbols)
            new, j = [], 0
            while j < len(symbols):
                if j + 1 < len(symbols) and symbols[j] == pair[0] and symbols[j + 1] == pair[1]:
                    new.append(merged)
                    j += 2
                else:
                    new.append(symbols[j])
                    j += 1
            words[i] = new
            after = _pairs(new)
            for p in before.keys() | after.keys():
                delta = after.get(p, 0) - before.get(p, 0)
                if delta:
                    pair_count[p] += delta * c
                    changed.add(p)
                if p not in after:
                    where[p].discard(i)
                else:
                    where[p].add(i)
        pair_count.pop(pair, None)
        where.pop(pair, None)
        for p in changed:
            if pair_count.get(p, 0) > 0:
                heapq.heappush(heap, (-pair_count[p], p))
            else:
                pair_count.pop(p, None)
    return out


class BPE:
    """Splits words into the pieces of a list of merges (applied by rank, as they were learned)."""

    def __init__(self, merges: Iterable[Sequence[str]]):
        self.merges = [tuple(m) for m in merges]
        if any(len(m) != 2 for m in self.merges):
            raise ValueError("each merge is a pair of symbols")
        self.rank = {m: r for r, m in enumerate(self.merges)}
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def learn(cls, token_lists: Iterable[Sequence[str]], merges: int, min_count: int = 2) -> BPE:
        """Learn ``merges`` merges from the words of ``token_lists`` (the training sentences' tokens)."""
        return cls(learn_bpe(Counter(t for tokens in token_lists for t in tokens), merges, min_count))

    def split(self, word: str) -> list[str]:
        """The pieces of one word, every piece but the last ending in ``@@``."""
        if word in self._cache:
            return self._cache[word]
        symbols = list(word[:-1]) + [word[-1] + END]
        while len(symbols) > 1:
            pairs = zip(symbols[:-1], symbols[1:], strict=True)
            r, k = min((self.rank.get(p, len(self.rank)), k) for k, p in enumerate(pairs))
            if r == len(self.rank):
                break
            first, second = symbols[k], symbols[k + 1]
            new, j = [], 0
            while j < len(symbols):  # merge every occurrence of this pair, left to right
                if j + 1 < len(symbols) and symbols[j] == first and symbols[j + 1] == second:
                    new.append(first + second)
                    j += 2
                else:
                    new.append(symbols[j])
                    j += 1
            symbols = new
        pieces = [s + JOINER for s in symbols[:-1]] + [symbols[-1][:-len(END)]]
        self._cache[word] = pieces
        return pieces

    def segment(self, tokens: Sequence[str]) -> list[str]:
        """A sentence's words into pieces."""
        return [piece for word in tokens for piece in self.split(word)]

    @staticmethod
    def join(pieces: Sequence[str]) -> list[str]:
        """Pieces back into words (a trailing ``@@`` piece, which a model may write, ends its word)."""
        words, current = [], ""
        for piece in pieces:
            if piece.endswith(JOINER):
                current += piece[:-len(JOINER)]
            else:
                words.append(current + piece)
                current = ""
        if current:
            words.append(current)
        return words

    def to_dict(self) -> dict:
        return {"merges": [list(m) for m in self.merges]}

    @classmethod
    def from_dict(cls, state: dict) -> BPE:
        return cls(state["merges"])

    def __eq__(self, other) -> bool:
        return isinstance(other, BPE) and self.merges == other.merges

    def __repr__(self) -> str:
        return f"BPE({len(self.merges)} merges)"
