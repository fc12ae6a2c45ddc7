"""Tests of course_lib.text: tokenizer, vocabulary, truncation and padding, length-bucketed batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.text import PAD, UNK, SequenceDataset, Vocabulary, bucket_batches, pad_batch, tokenize, truncate


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Great film!<br /><br />I didn't expect THAT.", ["great", "film", "!", "i", "didn't", "expect", "that"]),
        ("end.<br/>Start<BR>again", ["end", "start", "again"]),
        ("Worst movie ever??? 1/10", ["worst", "movie", "ever", "?", "?", "?", "1", "10"]),
        ("", []),
        ("   ...   ", []),
    ],
)
def test_tokenize(text, expected):
    assert tokenize(text) == expected


def test_tokenize_never_keeps_markup():
    assert not any("<" in t or ">" in t or t == "br" for t in tokenize("a<br />b<br/>c<br>d"))


def test_vocabulary_order_limit_and_specials():
    texts = [["b", "a", "c", "a"], ["c", "a", "d"], ["b", "e"]]
    vocab = Vocabulary.build(texts, max_size=5)
    # a:3, b:2, c:2 (tie broken alphabetically), then d:1 and e:1 do not fit
    assert vocab.itos == [PAD, UNK, "a", "b", "c"]
    assert vocab.counts == [0, 0, 3, 2, 2]
    assert len(vocab) == 5
    np.testing.assert_array_equal(vocab.encode(["c", "a", "zzz", "d"]), [4, 2, 1, 1])
    assert vocab.encode(["a"]).dtype == np.int32
    assert vocab.decode([2, 0, 1]) == ["a", PAD, UNK]
    assert Vocabulary.build(texts[::-1], max_size=5) == vocab  # independent of the order of the texts


def test_vocabulary_min_freq_coverage_and_round_trip():
    texts = [["x", "x", "y"], ["x", "z", "y"]]
    vocab = Vocabulary.build(texts, min_freq=2)
    assert vocab.itos == [PAD, UNK, "x", "y"]
    assert vocab.coverage(texts) == pytest.approx(5 / 6)
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab
    assert Vocabulary.build([[PAD, UNK, "q"]]).itos == [PAD, UNK, "q"]  # a literal "<unk>" is not a word
    with pytest.raises(ValueError):
        Vocabulary.build(texts, max_size=1)
    with pytest.raises(ValueError):
        Vocabulary(["x", PAD, UNK])


@pytest.mark.parametrize("max_len, keep, expected", [(3, "first", [1, 2, 3]), (3, "last", [3, 4, 5]),
                                                      (None, "last", [1, 2, 3, 4, 5]), (9, "first", [1, 2, 3, 4, 5])])
def test_truncate(max_len, keep, expected):
    np.testing.assert_array_equal(truncate(np.array([1, 2, 3, 4, 5]), max_len, keep), expected)


def test_truncate_rejects_unknown_end():
    with pytest.raises(ValueError):
        truncate(np.arange(4), 2, keep="middle")


def test_pad_batch():
    tokens, lengths = pad_batch([np.array([5, 6, 7, 8]), np.array([9]), np.array([], dtype=np.int32)], max_len=3)
    assert tokens.dtype == torch.int64 and lengths.dtype == torch.int64
    assert tokens.tolist() == [[6, 7, 8], [9, 0, 0], [0, 0, 0]]
    assert lengths.tolist() == [3, 1, 1]  # an empty sequence keeps one (pad) step
    tokens, lengths = pad_batch([np.array([5, 6, 7, 8]), np.array([9, 3])], max_len=3, keep="first")
    assert tokens.tolist() == [[5, 6, 7], [9, 3, 0]] and lengths.tolist() == [3, 2]


@pytest.mark.parametrize("n, batch_size", [(1, 4), (10, 3), (1000, 32)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_bucket_batches_cover_every_index_once(n, batch_size, shuffle):
    lengths = np.random.default_rng(0).integers(1, 500, n)
    batches = bucket_batches(lengths, batch_size, shuffle=shuffle, seed=3)
    assert all(1 <= len(b) <= batch_size for b in batches)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(n))


def test_bucket_batches_group_similar_lengths_and_depend_only_on_seed():
    lengths = np.random.default_rng(0).integers(1, 1000, 6400)
    batches = bucket_batches(lengths, 64, shuffle=True, seed=1)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random_padded = sum(len(b) * lengths[b].max() for b in np.split(np.random.default_rng(2).permutation(6400), 100))
    assert padded < 0.75 * random_padded  # far less padding than random batches
    assert padded < 1.05 * lengths.sum()  # almost none at all
    same = bucket_batches(lengths, 64, shuffle=True, seed=1)
    other = bucket_batches(lengths, 64, shuffle=True, seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(batches, same, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other, strict=True))
    ordered = bucket_batches(lengths, 64, shuffle=False)
    assert np.all(np.diff(lengths[np.concatenate(ordered)]) >= 0)


def test_sequence_dataset_split_subset_and_batches():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(2, 50, rng.integers(1, 30)).astype(np.int32) for _ in range(100)]
    data = SequenceDataset(seqs, rng.integers(0, 2, 100))
    a, b = data.split(0.2, seed=5)
    assert len(a) == 80 and len(b) == 20
    joined = sorted(tuple(s) for s in a.seqs + b.seqs)
    assert joined == sorted(tuple(s) for s in seqs)
    a2, _ = data.split(0.2, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a.seqs, a2.seqs, strict=True))
    seen = []
    for tokens, lengths, labels, idx in data.batches(16, max_len=10, keep="last", shuffle=True, seed=0):
        assert tokens.shape == (len(idx), int(lengths.max()))
        for row, n, i in zip(tokens, lengths, idx, strict=True):
            np.testing.assert_array_equal(row[:n].numpy(), truncate(seqs[i], 10, "last"))
            assert not row[n:].any()
        np.testing.assert_array_equal(labels.numpy(), data.labels[idx])
        seen += list(idx)
    assert sorted(seen) == list(range(100))
    with pytest.raises(ValueError):
        SequenceDataset(seqs, np.zeros(3))
