"""Tests of course_lib.pretrain on the synthetic dataset (course_lib.imdb.write_fake_dataset), and of the
benchmark that records the pretraining run, end to end at a tiny size."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import pretrain
from course_lib.imdb import fit_val_split, load_imdb, write_fake_dataset
from course_lib.models import ModelConfig, SentimentRNN

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("imdb")
    write_fake_dataset(root / "aclImdb", n_per_label=30)
    return load_imdb(vocab_size=60, data_dir=root / "aclImdb", cache=root / "cache"), root


def test_lm_stream_joins_reviews(fake):
    data, _ = fake
    stream = pretrain.lm_stream(data.train.seqs[:3])
    assert stream.dtype == np.int64
    assert stream.tolist() == [int(t) for s in data.train.seqs[:3] for t in s]


def test_word_lm_shapes():
    lm = pretrain.WordLM(pretrain.LMConfig(50, 8, 6, "lstm"))
    scores, (h, c) = lm(torch.randint(0, 50, (3, 7)))
    assert scores.shape == (3, 7, 50) and h.shape == (1, 3, 6) and c.shape == (1, 3, 6)
    with pytest.raises(ValueError):
        pretrain.WordLM(pretrain.LMConfig(50, cell="transformer"))
    shortlist = pretrain.WordLM(pretrain.LMConfig(50, 8, 6, output_vocab=12))
    assert shortlist(torch.randint(0, 50, (3, 7)))[0].shape == (3, 7, 12)


def test_shortlist_targets_are_ignored():
    y = torch.tensor([[0, 1, 2, 11, 12, 49]])
    assert pretrain._targets(y, 12).tolist() == [[-100, -100, 2, 11, -100, -100]]


def test_train_word_lm_learns_the_fake_text(fake):
    data, _ = fake
    fit_part, val = fit_val_split(data.train, None, 0.1, seed=0)
    torch.manual_seed(0)
    lm = pretrain.WordLM(pretrain.LMConfig(len(data.vocab), 16, 16))
    held_out = pretrain.lm_stream(val.seqs)
    before = pretrain.evaluate_word_lm(lm, held_out, batch_size=2, seq_len=20)
    hist = pretrain.train_word_lm(lm, pretrain.lm_stream(fit_part.seqs), steps=60, batch_size=4, seq_len=16,
                                  lr=1e-2, progress=False)
    after = pretrain.evaluate_word_lm(lm, held_out, batch_size=2, seq_len=20)
    assert len(hist["loss"]) == 60 and hist["tokens"] == 60 * 4 * 16
    assert after < before - 0.2  # the fake text is close to uniform: little to learn, but some
    assert after < np.log(len(data.vocab) - 2)  # better than a uniform guess over the real tokens


def test_transfer_copies_embedding_and_rnn():
    lm = pretrain.WordLM(pretrain.LMConfig(40, 8, 6, "gru"))
    clf = SentimentRNN(ModelConfig(40, 8, 6, "gru", pooling="max_mean"))
    pretrain.transfer(lm, clf)
    assert torch.equal(clf.embedding.weight[1:], lm.embedding.weight[1:])
    assert torch.equal(clf.embedding.weight[0], torch.zeros(8))
    for name, value in lm.rnn.state_dict().items():
        assert torch.equal(clf.forward_rnns[0].state_dict()[name], value)


@pytest.mark.parametrize("change", [{"cell": "lstm"}, {"hidden_size": 7}, {"bidirectional": True}])
def test_transfer_refuses_a_different_shape(change):
    lm = pretrain.WordLM(pretrain.LMConfig(40, 8, 6, "gru"))
    clf = SentimentRNN(ModelConfig(**{"vocab_size": 40, "embed_dim": 8, "hidden_size": 6, "cell": "gru", **change}))
    with pytest.raises(ValueError):
        pretrain.transfer(lm, clf)


def test_label_subset_is_balanced_and_seeded(fake):
    data, _ = fake
    a = pretrain.label_subset(data.train, 20, seed=1)
    b = pretrain.label_subset(data.train, 20, seed=1)
    assert len(a) == 20 and a.labels.sum() == 10
    assert all(np.array_equal(x, y) for x, y in zip(a.seqs, b.seqs, strict=False))


def test_benchmark_writes_its_record(fake, tmp_path, monkeypatch):
    _, root = fake
    monkeypatch.setenv("RNN_COURSE_IMDB_DIR", str(root / "aclImdb"))
    monkeypatch.setenv("RNN_COURSE_CACHE_DIR", str(root / "cache"))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_pretrain

    out = tmp_path / "p.json"
    argv = ["--vocab-size", "60", "--embed-dim", "8", "--hidden", "8", "--lm-steps", "3", "--lm-batch", "2",
            "--lm-seq-len", "8", "--labels", "10", "--epochs", "2", "--batch-size", "4", "--seeds", "0",
            "--val-reviews", "6", "--test-reviews", "10", "--out", str(out)]
    assert bench_pretrain.main(argv) == 0
    record = json.loads(out.read_text())
    runs = {r["arm"]: r for r in record["runs"]}
    assert set(runs) == {"scratch", "pretrained"}
    assert runs["scratch"]["steps"] == runs["pretrained"]["steps"] == 2 * 3  # equal budget: 2 epochs of 3 batches
    assert runs["scratch"]["examples"] == runs["pretrained"]["examples"] == 20
    assert len(record["lm"]["loss"]) == 3
    assert len(runs["scratch"]["history"]["val_accuracy"]) == 2
    sys.modules.pop("bench_pretrain", None)


def test_unlabelled_reviews(fake, tmp_path):
    data, _ = fake
    assert pretrain.unlabelled_reviews(tmp_path, data.vocab) == []  # no train/unsup: nothing
    folder = tmp_path / "train" / "unsup"
    folder.mkdir(parents=True)
    (folder / "0_0.txt").write_text("The film was great!<br />Really.", encoding="utf-8")
    (folder / "1_0.txt").write_text("A dull plot", encoding="utf-8")
    seqs = pretrain.unlabelled_reviews(tmp_path, data.vocab)
    assert [data.vocab.decode(s) for s in seqs] == [["the", "film", "was", "great", "!", "really"],
                                                    ["a", "dull", "plot"]]
    assert len(pretrain.unlabelled_reviews(tmp_path, data.vocab, limit=1)) == 1
