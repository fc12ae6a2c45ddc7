"""Tests of course_lib.seq2seq: numpy attention vs torch and numerical gradients, the models' masking and
shapes, greedy and beam search (against enumeration on toy models), BLEU against sacrebleu, exact resume."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sacrebleu
import torch
from conftest import assert_close, t

from course_lib import seq2seq
from course_lib.gradcheck import numerical_gradient, rel_error
from course_lib.spa_eng import BOS_ID, EOS_ID, PAD_ID, PairDataset, Vocab

SHAPES = [(1, 1, 1, 1, 1), (2, 3, 4, 5, 3), (3, 5, 2, 4, 6), (4, 2, 3, 1, 2)]  # N, S, H, He, A


def attention_inputs(rng, N, S, H, He, A, masked=True):
    s, h = rng.standard_normal((N, H)), rng.standard_normal((N, S, He))
    mask = np.ones((N, S), dtype=bool)
    if masked:
        for n in range(N):
            mask[n, rng.integers(1, S + 1):] = False  # a padded tail, at least one real position
    return s, h, mask, rng.standard_normal((H, A)) * 0.5, rng.standard_normal((He, A)) * 0.5, rng.standard_normal(A)


def torch_attention(s, h, mask, Wq, Wk, v):
    """The same function written directly in torch (the reference for autograd)."""
    e = torch.tanh((s @ Wq)[:, None, :] + h @ Wk) @ v
    a = torch.softmax(e.masked_fill(~torch.as_tensor(mask), float("-inf")), dim=1)
    return torch.einsum("ns,nsh->nh", a, h), a


@pytest.mark.parametrize(("N", "S", "H", "He", "A"), SHAPES)
def test_attention_forward_and_backward_match_torch(rng, N, S, H, He, A):
    s, h, mask, Wq, Wk, v = attention_inputs(rng, N, S, H, He, A)
    c, a, cache = seq2seq.attention_forward(s, h, mask, Wq, Wk, v)
    dc = rng.standard_normal(c.shape)
    grads = seq2seq.attention_backward(dc, cache)
    inputs = [t(x, True) for x in (s, h, Wq, Wk, v)]
    tc, ta = torch_attention(inputs[0], inputs[1], mask, *inputs[2:])
    tc.backward(t(dc))
    assert_close(c, tc)
    assert_close(a, ta)
    for mine, theirs in zip(grads, inputs, strict=True):
        assert_close(mine, theirs.grad)
    assert np.allclose(a.sum(axis=1), 1) and np.all(a[~mask] == 0)
    assert np.all(grads[1][~mask] == 0)  # padding receives no gradient


@pytest.mark.parametrize(("N", "S", "H", "He", "A"), SHAPES[1:])
def test_attention_backward_matches_numerical_gradient(rng, N, S, H, He, A):
    s, h, mask, Wq, Wk, v = attention_inputs(rng, N, S, H, He, A)
    c, _, cache = seq2seq.attention_forward(s, h, mask, Wq, Wk, v)
    dc = rng.standard_normal(c.shape)
    grads = seq2seq.attention_backward(dc, cache)

    def f():
        return np.sum(seq2seq.attention_forward(s, h, mask, Wq, Wk, v)[0] * dc)

    for grad, value in zip(grads, (s, h, Wq, Wk, v), strict=True):
        assert rel_error(grad, numerical_gradient(f, value)) < 1e-7


def test_attention_module_equals_numpy(rng):
    s, h, mask, Wq, Wk, v = attention_inputs(rng, 3, 5, 4, 6, 2)
    module = seq2seq.AdditiveAttention.from_numpy(Wq, Wk, v)
    c, a, _ = seq2seq.attention_forward(s, h, mask, Wq, Wk, v)
    tc, ta = module(t(s)[:, None, :], t(h), torch.as_tensor(mask))
    assert_close(c, tc[:, 0])
    assert_close(a, ta[:, 0])
    c_all, _, _ = seq2seq.attention_forward(s, h, None, Wq, Wk, v)  # no mask: every position counts
    assert_close(c_all, module(t(s)[:, None, :], t(h), torch.ones(3, 5, dtype=torch.bool))[0][:, 0])


def small_model(attention=True, seed=0, **kw):
    torch.manual_seed(seed)
    config = seq2seq.ModelConfig(src_vocab=11, tgt_vocab=13, emb=6, hidden=5, attention=attention, attn_size=4,
                                 out_size=7, **kw)
    return seq2seq.Seq2Seq(config).double().eval()


def random_batch(rng, N=4, S=6, T=5):
    lengths = rng.integers(1, S + 1, N)
    lengths[0] = S
    src = np.zeros((N, S), dtype=np.int64)
    for i, n in enumerate(lengths):
        src[i, :n] = rng.integers(4, 11, n)
    tgt = np.concatenate([np.full((N, 1), BOS_ID), rng.integers(4, 13, (N, T - 1))], axis=1)
    return torch.as_tensor(src), torch.as_tensor(lengths), torch.as_tensor(tgt)


@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_model_shapes_and_padding_is_never_read(rng, attention, bidirectional):
    model = small_model(attention, bidirectional=bidirectional)
    src, lengths, tgt = random_batch(rng)
    logits, weights = model(src, lengths, tgt, return_attention=True)
    assert logits.shape == (4, 5, 13)
    if attention:
        assert weights.shape == (4, 5, 6)
        assert_close(weights.sum(-1), torch.ones(4, 5))
        assert torch.all(weights.masked_select(~(src != PAD_ID)[:, None, :].expand_as(weights)) == 0)
    else:
        assert weights is None
    padded = torch.cat([src, torch.zeros(4, 3, dtype=torch.long)], dim=1)  # more padding changes nothing
    assert_close(model(padded, lengths, tgt), logits)
    garbage = src.clone()  # tokens beyond each length are not read either
    for i, n in enumerate(lengths.tolist()):
        garbage[i, n:] = 7
    assert_close(model(garbage, lengths, tgt), logits)


@pytest.mark.parametrize("attention", [True, False])
def test_stepping_the_decoder_equals_the_one_call_forward(rng, attention):
    model = small_model(attention)
    src, lengths, tgt = random_batch(rng)
    expected = torch.log_softmax(model(src, lengths, tgt), dim=-1)
    values, mask, h0, keys = model.encode(src, lengths)
    state = (h0[0], values, mask, keys)
    for step in range(tgt.shape[1]):
        log_probs, state = model.step(tgt[:, step], state)
        assert_close(log_probs, expected[:, step])


def test_sequence_loss_ignores_padding():
    logits = torch.randn(2, 3, 5)
    target = torch.tensor([[1, 2, 0], [3, 0, 0]])
    manual = -(torch.log_softmax(logits, -1)[0, 0, 1] + torch.log_softmax(logits, -1)[0, 1, 2]
               + torch.log_softmax(logits, -1)[1, 0, 3]) / 3
    assert_close(seq2seq.sequence_loss(logits, target), manual)


# ------------------------------------------------------------------------------------------------ decoding
class ToyModel:
    """Log-probabilities that depend on the previous token and the step: a table ``(T, V, V)``."""

    def __init__(self, rng, V=5, T=4, sharpness=2.0):
        table = rng.dirichlet(np.full(V, 1.0 / sharpness), size=(T, V))  # (T, V, V)
        table[:, :, [PAD_ID, BOS_ID]] = 0.0  # never emitted
        with np.errstate(divide="ignore"):
            self.table = np.log(table / table.sum(axis=2, keepdims=True))

    def step(self, tokens, state):
        (t,) = state
        return self.table[np.minimum(t, len(self.table) - 1), tokens], (t + 1,)

    def init(self, n):
        return (np.zeros(n, dtype=np.int64),)


def enumerate_best(model, max_len, alpha, bos=BOS_ID, eos=EOS_ID):
    """The best normalised score by brute force over every output of at most ``max_len`` tokens."""
    V = model.table.shape[1]
    best = (-np.inf, None)
    for length in range(1, max_len + 1):
        for seq in itertools.product(range(V), repeat=length):
            if eos in seq[:-1] or (length < max_len and seq[-1] != eos) or {PAD_ID, BOS_ID} & set(seq):
                continue
            prev, score = bos, 0.0
            for step, token in enumerate(seq):
                score += model.table[min(step, len(model.table) - 1), prev, token]
                prev = token
            best = max(best, (score / length ** alpha, seq), key=lambda x: x[0])
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_finds_the_enumerated_best(seed, alpha):
    rng = np.random.default_rng(seed)
    model, max_len = ToyModel(rng, V=6), 4
    V = model.table.shape[1]
    score, seq = enumerate_best(model, max_len, alpha)
    tokens, scores = seq2seq.beam_search(model.step, model.init(1), 1, V ** max_len, max_len, alpha=alpha)
    assert scores[0] == pytest.approx(score, abs=1e-12)
    assert tokens[0].tolist() == list(seq)


@pytest.mark.parametrize("seed", range(5))
def test_beam_of_width_one_is_greedy(seed):
    rng = np.random.default_rng(seed)
    model = ToyModel(rng, V=7, T=6)
    greedy = seq2seq.greedy_decode(model.step, model.init(5), 5, 6)
    beam, _ = seq2seq.beam_search(model.step, model.init(5), 5, 1, 6)
    np.testing.assert_array_equal(beam, greedy)


def test_beam_beats_greedy_where_the_first_word_misleads():
    # step 0: token 4 (p=0.6) or 5 (p=0.4); after 4 the model is unsure (every token 0.2), after 5 it is sure
    V = 6
    table = np.full((3, V, V), 1e-9)
    table[0, BOS_ID, 4], table[0, BOS_ID, 5] = 0.6, 0.4
    table[1, 4, :] = 0.2
    table[1, 5, EOS_ID] = 0.99
    table[2, :, EOS_ID] = 1.0
    model = ToyModel(np.random.default_rng(0), V=V, T=3)
    model.table = np.log(table / table.sum(axis=2, keepdims=True))
    greedy = seq2seq.greedy_decode(model.step, model.init(1), 1, 3)
    beam, _ = seq2seq.beam_search(model.step, model.init(1), 1, 2, 3, alpha=0.0)
    assert greedy[0, 0] == 4 and beam[0].tolist() == [5, EOS_ID]


def test_greedy_stops_rows_at_eos_and_pads(rng):
    table = np.log(np.full((3, 6, 6), 0.01))
    table[0, BOS_ID, 4] = table[1, 4, EOS_ID] = table[2, :, 5] = 0.0
    model = ToyModel(rng, V=6, T=3)
    model.table = table
    out = seq2seq.greedy_decode(model.step, model.init(2), 2, 5)
    assert out.tolist() == [[4, EOS_ID], [4, EOS_ID]]


@pytest.mark.parametrize("attention", [True, False])
def test_torch_model_beam_one_equals_greedy_and_translate(rng, attention):
    model = small_model(attention, seed=3)
    src, lengths, _ = random_batch(rng, N=5)
    values, mask, h0, keys = model.encode(src, lengths)
    state = (h0[0], values, mask, keys)
    greedy = seq2seq.greedy_decode(seq2seq.model_step(model), state, 5, 8)
    beam, _ = seq2seq.beam_search(seq2seq.model_step(model), state, 5, 1, 8)
    np.testing.assert_array_equal(beam, greedy)
    wide, _ = seq2seq.beam_search(seq2seq.model_step(model), state, 5, 4, 8)
    assert wide.shape[0] == 5
    vocab = Vocab(["<pad>", "<bos>", "<eos>", "<unk>"] + [f"w{i}" for i in range(9)])
    data = PairDataset([s[:n].numpy() for s, n in zip(src, lengths, strict=True)], [np.array([1, 2])] * 5,
                       [""] * 5, [""] * 5)
    out = seq2seq.translate(model, data, vocab, beam=1, max_len=8)
    assert out == [vocab.decode(row) for row in greedy]


def test_attention_map_rows_are_distributions():
    model = small_model(True)
    weights = seq2seq.attention_map(model, np.array([4, 5, 6, EOS_ID]), [7, 8, EOS_ID])
    assert weights.shape == (3, 4) and np.allclose(weights.sum(axis=1), 1)
    with pytest.raises(ValueError, match="no attention"):
        seq2seq.attention_map(small_model(False), np.array([4, EOS_ID]), [EOS_ID])


# ------------------------------------------------------------------------------------------------ BLEU
def random_corpus(rng, n, vocab=8, max_len=12):
    words = [f"w{i}" for i in range(vocab)]
    refs = [list(rng.choice(words, rng.integers(1, max_len))) for _ in range(n)]
    hyps = []
    for ref in refs:  # a noisy copy: some words replaced, dropped or added
        hyp = [w if rng.random() > 0.3 else str(rng.choice(words)) for w in ref if rng.random() > 0.1]
        hyps.append(hyp + list(rng.choice(words, rng.integers(0, 3))))
    return hyps, refs


@pytest.mark.parametrize("seed", range(8))
def test_bleu_equals_sacrebleu(seed):
    rng = np.random.default_rng(seed)
    hyps, refs = random_corpus(rng, 30)
    mine = seq2seq.corpus_bleu(hyps, refs)
    theirs = sacrebleu.corpus_bleu([" ".join(h) for h in hyps], [[" ".join(r) for r in refs]],
                                   tokenize="none", smooth_method="none")
    assert mine["bleu"] == pytest.approx(theirs.score, abs=1e-9)
    assert mine["bp"] == pytest.approx(theirs.bp, abs=1e-12)
    assert mine["precisions"] == pytest.approx(theirs.precisions, abs=1e-9)
    assert (mine["hyp_len"], mine["ref_len"]) == (theirs.sys_len, theirs.ref_len)


def test_bleu_edge_cases():
    ref = ["el", "gato", "está", "en", "la", "casa"]
    assert seq2seq.corpus_bleu([ref], [ref])["bleu"] == pytest.approx(100)
    short = seq2seq.corpus_bleu([ref[:4]], [ref])  # precisions 100%, brevity penalty exp(1 - 6/4)
    assert short["bp"] == pytest.approx(math.exp(1 - 6 / 4)) and short["bleu"] == pytest.approx(100 * short["bp"])
    assert seq2seq.corpus_bleu([["a", "b", "c", "d"]], [ref])["bleu"] == 0.0  # no 4-gram matches: 0
    assert seq2seq.corpus_bleu([[]], [ref])["bleu"] == 0.0
    clipped = seq2seq.corpus_bleu([["la"] * 4], [["la", "casa", "la", "mesa"]])
    assert clipped["precisions"][0] == pytest.approx(50.0)  # "la" counts at most twice
    with pytest.raises(ValueError, match="hypotheses for"):
        seq2seq.corpus_bleu([ref], [])


def test_bleu_by_length_bins():
    hyps, refs = [["a"], ["a", "b"], ["c", "d", "e", "f"]], [["a"], ["a", "b"], ["c", "d", "e", "f"]]
    bins = seq2seq.bleu_by_length(hyps, refs, [1, 2, 4], [1, 3, 5, 9])
    assert [b["n"] for b in bins] == [2, 1, 0] and bins[2]["bleu"] is None
    assert bins[1]["bleu"] == pytest.approx(100)


# ------------------------------------------------------------------------------------------------ training
def toy_data(rng, n=60):
    src, tgt = [], []
    for _ in range(n):
        words = rng.integers(4, 11, rng.integers(1, 5))
        src.append(np.append(words, EOS_ID))
        tgt.append(np.concatenate([[BOS_ID], words + 2, [EOS_ID]]))  # "translate": shift every id by 2
    return PairDataset(src, tgt, [""] * n, [""] * n)


def test_training_lowers_the_loss_and_resumes_exactly(rng, tmp_path):
    torch.set_default_dtype(torch.float32)
    try:
        data = toy_data(rng)
        config = seq2seq.TrainConfig(epochs=3, batch_size=8, lr=1e-2, checkpoint_every=3)
        whole = small_model(True, seed=1).float()
        history = seq2seq.train(whole, data, config, val=data, progress=False)
        assert history["done"] and history["val_loss"][-1] < history["val_loss"][0]
        parts = small_model(True, seed=1).float()
        seq2seq.train(parts, data, config, checkpoint_dir=tmp_path, progress=False, stop_after=7)
        assert (tmp_path / "last.pt").exists()
        resumed = small_model(True, seed=99).float()  # different weights: all must come from the checkpoint
        again = seq2seq.train(resumed, data, config, val=data, checkpoint_dir=tmp_path, resume=True, progress=False)
        for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        assert again["train_loss"] == history["train_loss"]
        with pytest.raises(ValueError, match="cannot resume"):
            seq2seq.train(resumed, data, seq2seq.TrainConfig(epochs=4), checkpoint_dir=tmp_path, resume=True,
                          progress=False)
    finally:
        torch.set_default_dtype(torch.float64)


@pytest.mark.parametrize("seed", range(4))
def test_top_k_equals_a_stable_full_sort(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(-3, 3, (6, 40)).astype(float)  # many ties
    scores[0, :] = -np.inf
    scores[1, 5:] = -np.inf
    for k in (1, 3, 7, 40):
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(seq2seq._top_k(scores, k), expected)


def test_learning_rate_warms_up_then_falls_linearly_to_zero():
    constant = seq2seq.TrainConfig(lr=1e-3)
    assert [constant.lr_at(s, 0.0, 100) for s in (0, 50, 99)] == [1e-3] * 3
    steps = seq2seq.TrainConfig(lr=1e-3, schedule="linear", warmup=10)
    lrs = [steps.lr_at(s, 0.0, 100) for s in range(100)]
    np.testing.assert_allclose(lrs[:3], [1e-4, 2e-4 * 0.99, 3e-4 * 0.98])  # warm-up times the fall
    assert max(lrs) == lrs[9] and all(a > b for a, b in zip(lrs[9:], lrs[10:], strict=False)) and lrs[-1] > 0
    clock = seq2seq.TrainConfig(lr=1e-3, schedule="linear", max_seconds=60.0)
    assert clock.lr_at(0, 30.0, 10**6) == pytest.approx(5e-4)  # half the budget spent: half the rate
    assert clock.lr_at(5, 61.0, 10**6) == 0.0 and clock.lr_at(10**6 - 1, 0.0, 10**6) < 1e-8  # whichever ends first
    with pytest.raises(ValueError, match="schedule"):
        seq2seq.TrainConfig(schedule="cosine").lr_at(0, 0.0, 10)


def test_label_smoothing_is_cross_entropy_against_spread_targets(rng):
    logits = torch.as_tensor(rng.standard_normal((2, 3, 5)))
    tgt = torch.tensor([[4, 2, PAD_ID], [1, PAD_ID, PAD_ID]])
    eps, keep = 0.1, tgt != PAD_ID
    logp = torch.log_softmax(logits, dim=-1)[keep]
    target = torch.full_like(logp, eps / 5)
    target[torch.arange(len(target)), tgt[keep]] += 1 - eps
    expected = -(target * logp).sum(-1).mean()
    torch.testing.assert_close(seq2seq.sequence_loss(logits, tgt, label_smoothing=eps), expected)
    assert seq2seq.sequence_loss(logits, tgt, label_smoothing=0.0) < expected  # the plain loss of the same logits


def test_training_with_smoothing_and_a_schedule_records_the_plain_loss(rng):
    torch.set_default_dtype(torch.float32)
    try:
        data = toy_data(rng)
        config = seq2seq.TrainConfig(epochs=2, batch_size=8, lr=1e-2, checkpoint_every=1000, label_smoothing=0.2,
                                     schedule="linear", warmup=3)
        model = small_model(True, seed=1).float()
        history = seq2seq.train(model, data, config, val=data, progress=False)
        # the history's last training loss is that epoch's plain cross-entropy, as evaluate_loss measures it
        assert history["done"] and history["val_loss"][-1] < history["val_loss"][0]
        assert history["train_loss"][-1] < 1.5 * history["val_loss"][-1]
    finally:
        torch.set_default_dtype(torch.float64)
