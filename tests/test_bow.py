"""Tests of course_lib.bow: binary n-gram features, naive-Bayes ratios, the sparse logistic regression."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import bow, imdb
from course_lib.text import tokenize


def test_binary_unigram_and_bigram_features():
    docs = [["good", "good", "film"], ["good", "film", "bad"], ["bad", "film"]]
    feats = bow.NgramFeaturizer(min_df=2).fit(docs)
    x = feats.transform(docs + [["unseen", "words"]]).to_dense()
    # df >= 2: unigrams good (2), film (3), bad (2); bigram "good film" (2)
    assert len(feats) == 4 and x.shape == (4, 4)
    assert x.sum(dim=1).tolist() == [3, 4, 2, 0]  # binary: "good good" counts once
    assert set(x.unique().tolist()) == {0.0, 1.0}


def test_nb_ratios_and_row_selection_match_dense_computations():
    rng = np.random.default_rng(0)
    dense = torch.from_numpy((rng.random((12, 7)) < 0.4).astype(np.float32))
    y = rng.integers(0, 2, 12)
    x = dense.to_sparse_csr()
    p = dense[torch.from_numpy(y == 1)].sum(0) + 1.0
    q = dense[torch.from_numpy(y == 0)].sum(0) + 1.0
    torch.testing.assert_close(bow.nb_ratios(x, y), torch.log((p / p.sum()) / (q / q.sum())))
    idx = torch.tensor([5, 0, 11, 5])
    torch.testing.assert_close(bow._rows(x, idx).to_dense(), dense[idx])
    r = torch.from_numpy(rng.standard_normal(7).astype(np.float32))
    torch.testing.assert_close(bow.scale_columns(x, r).to_dense(), dense * r)


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_logistic_loss_grad_matches_autograd(weight_decay):
    rng = np.random.default_rng(1)
    dense = torch.from_numpy((rng.random((9, 6)) < 0.5) * rng.standard_normal((9, 6)))  # float64
    y = torch.from_numpy(rng.integers(0, 2, 9).astype(np.float64))
    w = torch.from_numpy(rng.standard_normal(6)).requires_grad_()
    b = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    loss, dw, db = bow.logistic_loss_grad(dense.to_sparse_csr(), y, w.detach(), b.detach(), weight_decay)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(dense @ w + b, y) + weight_decay * (w * w).sum()
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    torch.testing.assert_close(dw, w.grad)
    torch.testing.assert_close(db, b.grad)
    buffer = torch.full((6,), 7.0, dtype=torch.float64)  # a stale buffer is overwritten, not added to
    none, dw2, _ = bow.logistic_loss_grad(dense.to_sparse_csr(), y, w.detach(), b.detach(), weight_decay,
                                          with_loss=False, out=buffer)
    assert none is None and dw2 is buffer
    torch.testing.assert_close(dw2, w.grad)


@pytest.fixture(scope="module")
def fake_reviews(tmp_path_factory):
    root = imdb.write_fake_dataset(tmp_path_factory.mktemp("bow") / "aclImdb", n_per_label=60, seed=4)
    return imdb.read_split(root, "train"), imdb.read_split(root, "test")


def test_nbsvm_learns_the_fake_reviews(fake_reviews):
    train, test = fake_reviews
    res = bow.train_nbsvm([tokenize(t) for t in train.texts], train.labels, [tokenize(t) for t in test.texts],
                          test.labels, weight_decays=(0.0, 1e-4))
    assert res["test"]["accuracy"] >= 0.9 and res["test"]["n"] == 120
    assert sum(map(sum, res["test"]["confusion"])) == 120 and res["probs"].shape == (120,)
    assert res["weight_decay"] in (0.0, 1e-4) and set(res["val_accuracy"]) == {"0.0", "0.0001"}
    # the returned model is the one that made the test predictions
    np.testing.assert_allclose(res["model"].predict_proba([tokenize(t) for t in test.texts]), res["probs"])
    p = res["model"].predict_proba([["superb", "brilliant"], ["awful", "terrible"]])
    assert p[0] > 0.5 > p[1]


def test_nbsvm_held_out_probabilities_come_from_the_model_fitted_without_the_validation_reviews(fake_reviews):
    train, test = fake_reviews
    tokens = [tokenize(t) for t in train.texts]
    res = bow.train_nbsvm(tokens, train.labels, [tokenize(t) for t in test.texts], test.labels,
                          weight_decays=(0.0,), keep_held_out=True)
    held = res["held_out"]
    perm = np.random.default_rng(0).permutation(len(tokens))
    np.testing.assert_array_equal(held["val_idx"], np.sort(perm[:12]))  # 10% of 120, as the recurrent runs cut it
    fit_idx = np.setdiff1d(np.arange(len(tokens)), held["val_idx"])
    alone = bow.train_nbsvm([tokens[i] for i in fit_idx], train.labels[fit_idx], [tokens[i] for i in held["val_idx"]],
                            train.labels[held["val_idx"]], weight_decays=(0.0,), val_fraction=0.1)
    np.testing.assert_allclose(held["val_probs"], alone["probs"], atol=1e-6)  # the refit on the fit part alone
    assert held["test_probs"].shape == (120,) and 0 < held["seconds"] <= res["train_seconds"]
    assert "test_probs" not in bow.train_nbsvm(tokens, train.labels, None, None, weight_decays=(0.0,))["held_out"]


def test_best_mixture_picks_the_weight_with_the_best_validation_accuracy():
    y = np.array([1, 1, 0, 0])
    a = np.array([0.9, 0.4, 0.1, 0.9])  # wrong on items 1 and 3
    b = np.array([0.45, 0.9, 0.2, 0.3])  # wrong on item 0 only, by a little
    w, acc = bow.best_mixture(a, b, y, steps=4)
    assert acc == 1.0 and w == 0.25  # 0.25 * a + 0.75 * b is right everywhere; 0.5 is wrong on item 3
    assert bow.best_mixture(a, a, y) == (0.5, 0.5)  # ties go to the weight nearest 1/2
    with pytest.raises(ValueError, match="differ"):
        bow.best_mixture(a, b[:3], y)
