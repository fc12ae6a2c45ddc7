"""Tests of course_lib.models: the masked, bucketing-friendly RNN classifier against torch's packed sequences."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_lib.models import CELLS, ModelConfig, SentimentRNN, count_parameters, reverse_padded, valid_mask


def batch(N=5, T=9, V=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (N,), generator=g)
    lengths[0] = T  # one full-length sequence, so T is the batch's longest
    tokens = torch.randint(2, V, (N, T), generator=g) * valid_mask(lengths, T)
    return tokens, lengths


def reference(model: SentimentRNN) -> nn.Module:
    """torch's own (bidirectional, stacked) module with the model's weights."""
    c = model.config
    ref = CELLS[c.cell](c.embed_dim, c.hidden_size, num_layers=c.num_layers, bidirectional=c.bidirectional,
                        batch_first=True)
    with torch.no_grad():
        for layer in range(c.num_layers):
            for suffix, rnn in [("", model.forward_rnns[layer])] + (
                    [("_reverse", model.backward_rnns[layer])] if c.bidirectional else []):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(ref, f"{name}_l{layer}{suffix}").copy_(getattr(rnn, f"{name}_l0"))
    return ref


def test_reverse_padded():
    x = torch.arange(12.0).reshape(2, 6, 1)
    out = reverse_padded(x, torch.tensor([4, 6]))
    assert out[..., 0].tolist() == [[3, 2, 1, 0, 4, 5], [11, 10, 9, 8, 7, 6]]
    assert_close(reverse_padded(out, torch.tensor([4, 6])), x)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional, num_layers", [(False, 1), (True, 1), (True, 2), (False, 2)])
@pytest.mark.parametrize("packed", [False, True])
def test_valid_steps_and_last_state_match_torch_packed_sequences(cell, bidirectional, num_layers, packed):
    torch.manual_seed(0)
    model = SentimentRNN(ModelConfig(vocab_size=30, embed_dim=4, hidden_size=3, cell=cell, num_layers=num_layers,
                                     bidirectional=bidirectional, pooling="last", packed=packed))
    tokens, lengths = batch()
    ref = reference(model)
    x = model.embedding(tokens)
    out, h_n = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    out = pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])[0]
    mask = valid_mask(lengths, tokens.shape[1]).unsqueeze(-1)
    h = model.features(tokens, lengths)
    assert h.shape == out.shape
    assert_close(h * mask, out * mask)
    h_n = h_n[0] if cell == "lstm" else h_n  # (layers * directions, N, H)
    last = torch.cat([h_n[-2], h_n[-1]], dim=1) if bidirectional else h_n[-1]
    assert_close(model.pool(h, lengths), last)


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "max_mean"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_the_output(pooling, bidirectional):
    torch.manual_seed(1)
    model = SentimentRNN(ModelConfig(vocab_size=30, embed_dim=4, hidden_size=3, cell="gru", pooling=pooling,
                                     bidirectional=bidirectional, dropout=0.5, emb_dropout=0.5)).eval()
    tokens, lengths = batch()
    logits = model(tokens, lengths)
    assert logits.shape == (5,)
    padded = torch.cat([tokens, torch.zeros(5, 7, dtype=torch.long)], dim=1)
    assert_close(model(padded, lengths), logits)
    for n in range(5):  # each review alone, without any padding, gets the same logit as in the batch
        alone = tokens[n : n + 1, : lengths[n]]
        assert_close(model(alone, lengths[n : n + 1]), logits[n : n + 1])


def test_pooling_by_hand():
    torch.manual_seed(2)
    model = SentimentRNN(ModelConfig(vocab_size=30, embed_dim=4, hidden_size=3, pooling="max_mean"))
    h = torch.randn(2, 4, 3)
    lengths = torch.tensor([2, 4])
    pooled = model.pool(h, lengths)
    expected = torch.stack([torch.cat([h[n, : lengths[n]].amax(0), h[n, : lengths[n]].mean(0)]) for n in range(2)])
    assert_close(pooled, expected)


def test_gradients_flow_and_probabilities():
    torch.manual_seed(3)
    model = SentimentRNN(ModelConfig(vocab_size=30, embed_dim=4, hidden_size=3, cell="lstm", bidirectional=True,
                                     pooling="max_mean"))
    tokens, lengths = batch()
    loss = nn.functional.binary_cross_entropy_with_logits(model(tokens, lengths), torch.ones(5))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.embedding.weight.grad[0].abs().max() == 0  # the pad embedding is never trained
    p = model.predict_proba(tokens, lengths)
    assert p.shape == (5,) and ((p > 0) & (p < 1)).all() and model.training


def test_configuration_errors_and_size():
    with pytest.raises(ValueError):
        SentimentRNN(ModelConfig(vocab_size=10, cell="transformer"))
    with pytest.raises(ValueError):
        SentimentRNN(ModelConfig(vocab_size=10, pooling="median"))
    model = SentimentRNN(ModelConfig(vocab_size=10, embed_dim=4, hidden_size=3, cell="rnn"))
    # embedding 10*4, RNN 4*3 + 3*3 + 3 + 3, output 3 + 1
    assert count_parameters(model) == 40 + 12 + 9 + 6 + 4
