"""Tests of course_lib.sentiment_answers, assignment 5's reference: hand-worked examples, the classifier against
the same network run one review at a time, and the epoch against an epoch written out with torch."""

import copy

import numpy as np
import pytest
import torch
from conftest import assert_close
from torch import nn

from course_lib import sentiment_answers as sa
from course_lib.imdb_records import CODE_MODULES


def test_not_hashed_into_the_imdb_records():
    assert all("sentiment_answers" not in modules for modules in CODE_MODULES.values())


@pytest.mark.parametrize(("text", "tokens"), [
    ("Don't miss it!<br />10/10", ["don't", "miss", "it", "10", "10"]),
    ("GREAT<br /><br />film", ["great", "film"]),
    ("...", []),
    ("a<br />b", ["a", "b"]),
    ("Café -- 'quoted' ?!", ["caf", "'quoted'"]),
])
def test_tokenize(text, tokens):
    assert sa.tokenize(text) == tokens


def test_build_vocab_breaks_ties_alphabetically_and_counts_the_specials():
    lists = [["d", "c", "a", "b", "a"], ["b", "a", "c", "e"]]
    assert sa.build_vocab(lists, 6) == {"<pad>": 0, "<unk>": 1, "a": 2, "b": 3, "c": 4, "d": 5}
    assert sa.build_vocab([["x"]], 2) == {"<pad>": 0, "<unk>": 1}
    assert sa.build_vocab([], 10) == {"<pad>": 0, "<unk>": 1}


def test_encode_batch_keeps_the_end_and_pads_on_the_right():
    vocab = {"<pad>": 0, "<unk>": 1, "good": 2, "film": 3}
    X, lengths = sa.encode_batch([["good", "film"], ["film", "good", "bad", "good"], []], vocab, 3)
    assert X.dtype == lengths.dtype == torch.int64
    assert X.tolist() == [[2, 3, 0], [2, 1, 2], [0, 0, 0]] and lengths.tolist() == [2, 3, 1]
    X, lengths = sa.encode_batch([["good"], ["film", "film"]], vocab, 5)
    assert X.tolist() == [[2, 0], [3, 3]] and lengths.tolist() == [1, 2]
    X, lengths = sa.encode_batch([["good"] * 4], vocab, 1)
    assert X.tolist() == [[2]] and lengths.tolist() == [1]


def test_classifier_matches_one_review_at_a_time_and_its_layout():
    torch.manual_seed(0)
    model = sa.SentimentClassifier(20, 5, 4).double()
    rng = np.random.default_rng(0)
    weights = {}
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            p.copy_(torch.as_tensor(rng.standard_normal(tuple(p.shape)) * 0.5))
            weights[name] = p.detach().numpy().copy()
    X, lengths = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10], [11, 0, 0, 0, 0]]), torch.tensor([3, 5, 1])
    with torch.no_grad():
        assert_close(model(X, lengths).numpy(), sa.logits_by_example(weights, X, lengths))
    layout = sa.classifier_layout(20, 5, 4)
    assert layout["layers"] == {"embedding": "Embedding", "rnn": "GRU", "out": "Linear"}
    assert layout["padding_idx"] == 0 and layout["batch_first"] is True
    assert layout["parameters"] == {n: list(p.shape) for n, p in model.named_parameters()}
    assert layout["sizes"] == [20, 5, 4, 1]


class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding, self.out = nn.Embedding(10, 3, padding_idx=0), nn.Linear(3, 1)

    def forward(self, X, lengths):
        return self.out(self.embedding(X).sum(1) / lengths[:, None]).squeeze(-1)


@pytest.mark.parametrize("batch_size", [1, 7, 40])
def test_epoch_is_shuffled_minibatches_of_the_mean_loss(batch_size):
    g = torch.Generator().manual_seed(1)
    X, lengths = torch.randint(1, 10, (30, 4), generator=g), torch.randint(1, 5, (30,), generator=g)
    y = (torch.rand(30, generator=g) < 0.5).long()
    torch.manual_seed(3)
    model = Bag()
    by_hand, losses = copy.deepcopy(model), []
    optimizer = torch.optim.Adam(by_hand.parameters(), lr=0.05)
    perm = np.random.default_rng(9).permutation(30)
    for s in range(0, 30, batch_size):
        idx = torch.from_numpy(perm[s : s + batch_size])
        loss = nn.functional.binary_cross_entropy_with_logits(by_hand(X[idx], lengths[idx]), y[idx].float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    batches = sa.epoch_batches(30, batch_size, 9)
    assert [len(b) for b in batches] == [len(perm[s : s + batch_size]) for s in range(0, 30, batch_size)]
    before = [p.detach().clone() for p in model.parameters()]
    loss, params = sa.adam_epoch(model, X, lengths, y.numpy(), batch_size, 9, lr=0.05)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True)), "model changed"
    assert isinstance(loss, float) and loss == pytest.approx(np.mean(losses), rel=1e-12)
    assert_close(params, np.concatenate([p.detach().double().numpy().ravel() for p in by_hand.parameters()]))
    first, grads = sa.batch_losses_and_gradients(model, X, lengths, y, batches)
    assert first[0] == pytest.approx(losses[0], rel=1e-12) and grads.shape == (len(batches), 34)
    _, summed = sa.batch_losses_and_gradients(model, X, lengths, y, batches, accumulate=True)
    assert_close(summed, np.cumsum(grads, axis=0))
