"""Tests of course_lib.bigrams: which n-grams are kept, their ids, the embedding layer and the model built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import imdb, imdb_runs
from course_lib.bigrams import BigramConfig, BigramSentimentRNN, build_model, count_ngrams, ngram_ids, ngram_keys
from course_lib.models import SentimentRNN
from course_lib.text import pad_batch

V = 10
SEQS = [np.array([2, 3, 4, 2, 3]), np.array([2, 3, 5]), np.array([7])]


def reference_counts(seqs, n=2):
    """N-gram counts by a plain loop over the n tokens ending at each position, ids before the start 0."""
    counts = {}
    for s in seqs:
        padded = [0] * (n - 1) + [int(w) for w in s]
        for t in range(len(s)):
            gram = tuple(padded[t: t + n])
            counts[gram] = counts.get(gram, 0) + 1
    return counts


def key(gram):
    """The key of an n-gram, digit by digit in base V."""
    out = 0
    for w in gram:
        out = out * V + w
    return out


def test_count_bigrams_keeps_the_most_frequent_pairs_above_the_minimum_count():
    counts = reference_counts(SEQS)  # (2, 3) three times, (0, 2) twice, every other pair once
    assert counts[(2, 3)] == 3 and counts[(0, 2)] == 2
    keys = count_ngrams(SEQS, V, max_ngrams=100, min_count=1)
    assert sorted(keys.tolist()) == keys.tolist() == sorted(p * V + c for p, c in counts)
    assert count_ngrams(SEQS, V, 100, min_count=2).tolist() == [0 * V + 2, 2 * V + 3]
    assert count_ngrams(SEQS, V, 1, min_count=1).tolist() == [2 * V + 3]
    # ties are broken by the smaller key: of the pairs seen once, (0, 7) = 7 comes first
    assert count_ngrams(SEQS, V, 3, min_count=1).tolist() == [0 * V + 2, 0 * V + 7, 2 * V + 3]
    assert count_ngrams([], V, 5).tolist() == []
    with pytest.raises(ValueError, match="at least 1"):
        count_ngrams(SEQS, V, 0)


def test_bigram_ids_match_a_lookup_in_the_kept_pairs_and_are_zero_at_padding():
    keys = count_ngrams(SEQS, V, 100, min_count=2)  # (0, 2) and (2, 3)
    tokens, lengths = pad_batch(SEQS, None)
    ids = ngram_ids(tokens, torch.as_tensor(keys), V)
    position = {int(k): i + 1 for i, k in enumerate(keys)}
    for n, s in enumerate(SEQS):
        expected = [position.get(int(p) * V + int(c), 0) for p, c in zip([0, *s[:-1]], s, strict=True)]
        assert ids[n, : len(s)].tolist() == expected
        assert ids[n, len(s):].eq(0).all()  # padding
    assert ngram_ids(tokens, torch.zeros(0, dtype=torch.int64), V).eq(0).all()


def test_trigram_keys_and_counts_match_a_plain_loop():
    counts = reference_counts(SEQS, n=3)  # (0, 0, 2) and (0, 2, 3) twice, every other triple once
    assert counts[(0, 0, 2)] == counts[(0, 2, 3)] == 2 and counts[(0, 0, 7)] == 1
    for s in SEQS:
        padded = [0, 0, *s.tolist()]
        assert ngram_keys(s, V, 3).tolist() == [key(padded[t: t + 3]) for t in range(len(s))]
    assert count_ngrams(SEQS, V, 100, min_count=1, n=3).tolist() == sorted(key(g) for g in counts)
    assert count_ngrams(SEQS, V, 100, min_count=2, n=3).tolist() == [key((0, 0, 2)), key((0, 2, 3))]
    with pytest.raises(ValueError, match="cannot be keyed in int64"):
        ngram_keys(SEQS[0], 3_000_000, 3)  # V**3 > 2**63
    with pytest.raises(ValueError, match="order 1"):
        ngram_keys(SEQS[0], V, 1)


def test_trigram_ids_match_a_lookup_in_the_kept_triples_and_are_zero_at_padding():
    keys = count_ngrams(SEQS, V, 100, min_count=1, n=3)[::2].copy()  # every other triple
    tokens, _ = pad_batch(SEQS, None)
    ids = ngram_ids(tokens, torch.as_tensor(keys), V, n=3)
    position = {int(k): i + 1 for i, k in enumerate(keys)}
    for n, s in enumerate(SEQS):
        padded = [0, 0, *s.tolist()]
        assert ids[n, : len(s)].tolist() == [position.get(key(padded[t: t + 3]), 0) for t in range(len(s))]
        assert ids[n, len(s):].eq(0).all()


def small_model(triples: bool = False, **change) -> BigramSentimentRNN:
    keys = count_ngrams(SEQS, V, 100, min_count=1)
    trigram_keys = count_ngrams(SEQS, V, 100, min_count=1, n=3) if triples else None
    config = dict(vocab_size=V, embed_dim=6, hidden_size=5, cell="gru", bidirectional=True, pooling="max_mean",
                  bigrams=len(keys), bigram_dim=3)
    if triples:
        config.update(trigrams=len(trigram_keys), max_trigrams=100)
    config.update(change)
    torch.manual_seed(0)
    model = BigramSentimentRNN(BigramConfig(**config))
    model.set_keys(keys, trigram_keys)
    return model


def test_the_embedding_adds_the_projected_bigram_vector_to_the_word_vector():
    model = small_model()
    emb = model.embedding
    tokens, _ = pad_batch(SEQS, None)
    ids = ngram_ids(tokens, emb.keys, V)
    expected = emb.words.weight[tokens] + emb.bigrams.weight[ids] @ emb.project.weight.T
    torch.testing.assert_close(emb(tokens), expected)
    wide = small_model(bigram_dim=6).embedding  # as wide as the word embedding: no projection
    assert isinstance(wide.project, torch.nn.Identity)
    torch.testing.assert_close(wide(tokens), wide.words.weight[tokens] + wide.bigrams.weight[ids])
    assert emb.bigrams.weight[0].eq(0).all()  # row 0: unknown pairs and padding add nothing
    assert emb.trigrams is None and "embedding.trigram_keys" not in model.state_dict()  # pairs only


def test_with_triples_the_embedding_adds_the_projected_sum_of_pair_and_triple_vectors():
    emb = small_model(triples=True).embedding
    tokens, _ = pad_batch(SEQS, None)
    pairs, triples = ngram_ids(tokens, emb.keys, V), ngram_ids(tokens, emb.trigram_keys, V, n=3)
    assert triples.gt(0).sum() == sum(len(s) for s in SEQS)  # every triple kept here
    grams = emb.bigrams.weight[pairs] + emb.trigrams.weight[triples]
    expected = emb.words.weight[tokens] + grams @ emb.project.weight.T
    torch.testing.assert_close(emb(tokens), expected)
    assert emb.trigrams.weight[0].eq(0).all()


def test_bigram_dropout_drops_whole_bigrams_in_training_only():
    for triples in (False, True):
        model = small_model(triples, bigram_dropout=1.0)
        tokens, _ = pad_batch(SEQS, None)
        words = model.embedding.words(tokens)
        model.train()
        torch.testing.assert_close(model.embedding(tokens), words)  # every bigram (and trigram) dropped
        model.eval()
        assert not torch.allclose(model.embedding(tokens), words)


def test_a_bigram_model_rebuilds_from_its_config_and_state():
    model = small_model()
    tokens, lengths = pad_batch(SEQS, None)
    copy = build_model(model.config.to_dict())
    assert isinstance(copy, BigramSentimentRNN)
    copy.load_state_dict(model.state_dict())  # the kept bigrams travel in the state dict
    torch.testing.assert_close(copy.predict_proba(tokens, lengths), model.predict_proba(tokens, lengths))
    plain = build_model({"vocab_size": V, "embed_dim": 4, "hidden_size": 4})
    assert type(plain) is SentimentRNN
    with pytest.raises(ValueError, match="keys for a model built"):
        model.set_keys(np.arange(3))
    with pytest.raises(ValueError, match="strictly increasing"):
        model.set_keys(model.embedding.keys.numpy()[::-1].copy())
    with pytest.raises(ValueError, match="without trigram inputs"):
        model.set_keys(model.embedding.keys.numpy(), np.arange(3))
    triples = small_model(triples=True)
    copy = build_model(triples.config.to_dict())
    copy.load_state_dict(triples.state_dict())  # the kept trigrams too
    torch.testing.assert_close(copy.predict_proba(tokens, lengths), triples.predict_proba(tokens, lengths))
    with pytest.raises(ValueError, match="pass trigram_keys"):
        triples.set_keys(triples.embedding.keys.numpy())
    with pytest.raises(ValueError, match="for a model built for .* trigrams"):
        triples.set_keys(triples.embedding.keys.numpy(), np.arange(3))


def test_train_run_keeps_ngrams_of_the_training_part_and_load_run_restores_them(tmp_path):
    data = imdb.write_fake_dataset(tmp_path / "aclImdb", n_per_label=30, seed=5)
    config = {"cell": "gru", "embed_dim": 8, "hidden_size": 8, "bigram_dim": 2, "max_bigrams": 50,
              "bigram_min_count": 2, "max_trigrams": 40}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = imdb_runs.train_run("bi", config, {"epochs": 1, "batch_size": 16, "lr": 0.01}, vocab_size=60,
                                  val_fraction=0.25, data_dir=data, cache=tmp_path / "cache",
                                  runs_dir=tmp_path / "runs", progress=False)
    finally:
        torch.set_num_threads(threads)
    loaded = imdb.load_imdb(60, data_dir=data, cache=tmp_path / "cache", progress=False)
    fit_set, _ = imdb.fit_val_split(loaded.train, None, 0.25, 0)
    keys = count_ngrams(fit_set.seqs, len(loaded.vocab), 50, 2)
    trigram_keys = count_ngrams(fit_set.seqs, len(loaded.vocab), 40, 2, n=3)
    assert 0 < res["model_config"]["bigrams"] == len(keys) <= 50
    assert 0 < res["model_config"]["trigrams"] == len(trigram_keys) <= 40
    model, vocab, _ = imdb_runs.load_run(tmp_path / "runs" / "bi")
    assert isinstance(model, BigramSentimentRNN) and vocab == loaded.vocab
    assert model.embedding.keys.tolist() == keys.tolist()
    assert model.embedding.trigram_keys.tolist() == trigram_keys.tolist()
