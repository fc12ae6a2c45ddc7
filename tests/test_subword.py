"""Tests of course_lib.subword (byte-pair encoding) and of subword units in spa_eng.prepare.

The learner keeps pair counts up to date incrementally; it must give exactly the merges of the textbook algorithm
that recounts every pair after every merge (written here, slow and plain).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from course_lib import spa_eng
from course_lib.subword import BPE, END, learn_bpe


def naive_bpe(word_counts: dict[str, int], merges: int, min_count: int = 2) -> list[tuple[str, str]]:
    words = {tuple(w[:-1]) + (w[-1] + END,): c for w, c in word_counts.items()}
    out = []
    for _ in range(merges):
        pairs = Counter()
        for symbols, c in words.items():
            for p in zip(symbols[:-1], symbols[1:], strict=True):
                pairs[p] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < min_count:
            break
        out.append(best)
        merged = {}
        for symbols, c in words.items():
            new, j = [], 0
            while j < len(symbols):
                if j + 1 < len(symbols) and (symbols[j], symbols[j + 1]) == best:
                    new.append(best[0] + best[1])
                    j += 2
                else:
                    new.append(symbols[j])
                    j += 1
            merged[tuple(new)] = merged.get(tuple(new), 0) + c
        words = merged
    return out


def test_the_textbook_example():
    counts = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
    merges = learn_bpe(counts, 4)
    # 'e s' and 's t</w>' both occur 9 times: the tie goes to the pair that sorts first; then 'n e' and 'e w'
    # (6 each, from "newest") beat 'lo w</w>' (5: the w that ends "low" is another symbol than the one in "lower")
    assert merges == [("e", "s"), ("es", "t</w>"), ("l", "o"), ("e", "w")]
    bpe = BPE(merges)
    assert bpe.split("lowest") == ["lo@@", "w@@", "est"]
    assert bpe.split("newer") == ["n@@", "ew@@", "e@@", "r"]


@pytest.mark.parametrize("seed", range(4))
def test_incremental_learning_equals_recounting_every_pair(seed):
    rng = np.random.default_rng(seed)
    letters = list("abcde")
    counts = Counter()
    for _ in range(300):
        word = "".join(rng.choice(letters, size=int(rng.integers(1, 8))))
        counts[word] += int(rng.integers(1, 5))
    assert learn_bpe(counts, 60) == naive_bpe(counts, 60)
    assert learn_bpe(counts, 60, min_count=9) == naive_bpe(counts, 60, min_count=9)


def test_merges_apply_by_rank_not_left_to_right():
    bpe = BPE([("b", "c"), ("a", "b")])  # 'b c' ranks first, so "abc" is a + bc, though 'a b' comes first in it
    assert bpe.split("abcd") == ["a@@", "bc@@", "d"]
    assert BPE([]).split("hola") == ["h@@", "o@@", "l@@", "a"]


def test_every_word_round_trips_even_unseen_characters():
    words = ["cantaron", "cantaba", "canta", "casa", "casas", "el", "la", "¿", "?"]
    bpe = BPE.learn([words * 3], 30)
    for sentence in (words, ["cantábamos", "ñu", "Zorro", "x"], ["a@b"]):
        pieces = bpe.segment(sentence)
        assert BPE.join(pieces) == sentence
        for word in sentence:
            *inner, last = bpe.split(word)
            assert all(p.endswith("@@") for p in inner) and not last.endswith("@@")
    assert BPE.join(["cant@@"]) == ["cant"]  # a model may stop inside a word: the word ends there
    assert BPE.from_dict(bpe.to_dict()) == bpe
    with pytest.raises(ValueError, match="pair"):
        BPE([("a", "b", "c")])
    with pytest.raises(ValueError, match="merges"):
        learn_bpe({"a": 1}, -1)


def test_prepare_with_subwords_writes_no_unknown_word():
    stems = ["cant", "habl", "com", "viv", "escrib", "corr", "beb", "abr", "mir", "busc", "lleg", "tom"]
    endings = ["o", "as", "a", "amos", "an", "aba", "aron", "ó", "é"]
    pairs = [(f"{i} they {s}", f"{s}{e} {s}{endings[(i + 3) % len(endings)]}.")
             for i, (s, e) in enumerate((s, e) for s in stems for e in endings)]
    words = spa_eng.prepare(pairs * 2)
    subwords = spa_eng.prepare(pairs * 2, subwords=40)
    assert subwords.tgt_bpe is not None and words.tgt_bpe is None
    unk = spa_eng.UNK_ID
    assert any((t == unk).any() for t in words.val.tgt + words.test.tgt)  # numbers and forms seen once
    for part in (subwords.val, subwords.test):
        assert not any((t == unk).any() for t in part.tgt)
        for ids, ref in zip(part.tgt, part.refs, strict=True):
            pieces = subwords.tgt_vocab.decode(ids[1:])
            assert subwords.words(pieces) == spa_eng.tokenize(ref)
    assert words.words(["el", "gato"]) == ["el", "gato"]


def test_max_len_counts_words_not_pieces():
    pairs = [(f"w{i} " + "long " * (i % 6), "palabraslarguísimas " * (i % 6) + f"p{i}") for i in range(300)]
    full = spa_eng.prepare(pairs, subwords=10)
    cut = spa_eng.prepare(pairs, subwords=10, max_len=3)
    assert cut.tgt_bpe == full.tgt_bpe and cut.tgt_vocab == full.tgt_vocab  # learned on every training pair
    kept = {en for en in cut.train.src_text}
    assert kept == {en for en, es in spa_eng.split_pairs(pairs)["train"]
                    if len(spa_eng.tokenize(en)) <= 3 and len(spa_eng.tokenize(es)) <= 3}
    assert len(cut.val) == len(full.val) and len(cut.test) == len(full.test)
