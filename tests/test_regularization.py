"""Tests of course_lib.regularization: dropout masks over time, the step-by-step LSTM against nn.LSTM, layer
normalisation against a hand-written step, weight tying, the bidirectional tagger's shapes."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torch.testing import assert_close

from course_lib import regularization as reg


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_mask_values_and_mean(p):
    m = reg.dropout_mask((200, 50), p, torch.Generator().manual_seed(0), torch.float64)
    values = set(np.unique(m.numpy()).round(12))
    assert values <= {0.0, round(1 / (1 - p), 12)}
    assert abs(float((m == 0).double().mean()) - p) < 0.02
    assert abs(float(m.mean()) - 1.0) < 0.05  # inverted dropout keeps the expectation


def test_dropout_mask_rejects_p_one():
    with pytest.raises(ValueError):
        reg.dropout_mask((2, 2), 1.0)


@pytest.mark.parametrize("N,T,D", [(3, 7, 5), (1, 2, 16)])
def test_variational_mask_is_constant_over_time(N, T, D):
    x = torch.ones(N, T, D, dtype=torch.float64)
    out = reg.sequence_dropout(x, 0.5, "variational", generator=torch.Generator().manual_seed(1))
    assert out.shape == (N, T, D)
    assert torch.equal(out, out[:, :1].expand(N, T, D))  # every step has the first step's mask


def test_standard_mask_changes_over_time():
    x = torch.ones(4, 20, 32, dtype=torch.float64)
    out = reg.sequence_dropout(x, 0.5, "standard", generator=torch.Generator().manual_seed(2))
    assert out.shape == x.shape
    assert not torch.equal(out, out[:, :1].expand_as(out))


@pytest.mark.parametrize("mode", reg.MODES)
def test_no_dropout_at_evaluation(mode):
    x = torch.randn(2, 3, 4)
    assert torch.equal(reg.sequence_dropout(x, 0.5, mode, training=False), x)


def test_unknown_mode():
    with pytest.raises(ValueError):
        reg.sequence_dropout(torch.ones(1, 1, 1), 0.5, "per-word")
    with pytest.raises(ValueError):
        reg.RegularizedLSTM(2, 2, 0.1, "per-word")


@pytest.mark.parametrize("N,T,D,H", [(2, 5, 3, 4), (4, 1, 6, 2), (1, 9, 4, 8)])
@pytest.mark.parametrize("with_state", [False, True])
def test_regularized_lstm_equals_torch(N, T, D, H, with_state):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(D, H, batch_first=True).double()
    layer = reg.RegularizedLSTM.from_torch(lstm)
    x = torch.randn(N, T, D, dtype=torch.float64)
    state = (torch.randn(N, H, dtype=torch.float64), torch.randn(N, H, dtype=torch.float64)) if with_state else None
    out, (h, c) = layer(x, state)
    ref, (h_ref, c_ref) = lstm(x, None if state is None else (state[0][None], state[1][None]))
    assert_close(out, ref)
    assert_close(h, h_ref[0])
    assert_close(c, c_ref[0])


@pytest.mark.parametrize("mode,shapes", [("standard", {"x": (3, 6, 4), "out": (3, 6, 5), "h": None}),
                                         ("variational", {"x": (3, 1, 4), "out": (3, 1, 5), "h": (3, 5)})])
def test_lstm_mask_shapes(mode, shapes):
    layer = reg.RegularizedLSTM(4, 5, 0.3, mode)
    masks = layer.masks(3, 6, torch.float32)
    for name, shape in shapes.items():
        assert (masks[name] is None) if shape is None else (tuple(masks[name].shape) == shape)
    layer.eval()
    assert all(m is None for m in layer.masks(3, 6, torch.float32).values())


def test_variational_lstm_drops_the_same_units_at_every_step():
    """With the input and state masks fixed per sequence, a dropped output unit is 0 at every step."""
    torch.manual_seed(0)
    layer = reg.RegularizedLSTM(3, 16, 0.5, "variational").double()
    out, _ = layer(torch.randn(2, 8, 3, dtype=torch.float64), generator=torch.Generator().manual_seed(3))
    zero = out == 0
    assert zero.any()
    assert torch.equal(zero, zero[:, :1].expand_as(zero))


def test_layer_norm_lstm_matches_a_hand_written_step():
    torch.manual_seed(1)
    N, D, H = 3, 4, 5
    layer = reg.RegularizedLSTM(D, H, layer_norm=True).double()
    with torch.no_grad():  # non-trivial gains and biases
        for ln in (layer.ln_ih, layer.ln_hh, layer.ln_c):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.5, 0.5)
    x = torch.randn(N, 1, D, dtype=torch.float64)
    h0, c0 = torch.randn(N, H, dtype=torch.float64), torch.randn(N, H, dtype=torch.float64)
    out, (h, c) = layer(x, (h0, c0))

    def ln(z, m):
        return F.layer_norm(z, z.shape[-1:], m.weight, m.bias, m.eps)

    a = ln(x[:, 0] @ layer.weight_ih.T, layer.ln_ih) + ln(h0 @ layer.weight_hh.T, layer.ln_hh)
    i, f, g, o = (a + layer.bias_ih + layer.bias_hh).chunk(4, dim=1)
    c_ref = torch.sigmoid(f) * c0 + torch.sigmoid(i) * torch.tanh(g)
    h_ref = torch.sigmoid(o) * torch.tanh(ln(c_ref, layer.ln_c))
    assert_close(c, c_ref)
    assert_close(h, h_ref)
    assert_close(out[:, 0], h_ref)


@pytest.mark.parametrize("layers", [1, 2])
def test_char_lm_shapes_and_tying(layers):
    V, H = 11, 6
    untied = reg.CharLM(reg.LMConfig(V, H, num_layers=layers))
    tied = reg.CharLM(reg.LMConfig(V, H, num_layers=layers, tie_weights=True))
    assert tied.output.weight is tied.embedding.weight
    assert reg.count_parameters(untied) - reg.count_parameters(tied) == V * H
    scores, state = tied(torch.randint(0, V, (2, 7)))
    assert scores.shape == (2, 7, V)
    assert len(state) == layers and state[0][0].shape == (2, H)


def test_train_lm_lowers_the_loss_and_is_deterministic():
    ids = np.tile(np.arange(7), 200)
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        model = reg.CharLM(reg.LMConfig(7, 8, dropout=0.2, dropout_mode="variational"))
        hist = reg.train_lm(model, ids, steps=40, batch_size=4, seq_len=10, lr=1e-2, eval_ids=ids[:300],
                            eval_every=20)
        losses.append(hist["eval_loss"])
    assert losses[0] == losses[1]
    assert hist["eval_step"] == [20, 40]
    assert hist["eval_loss"][-1] < 0.5 * np.log(7)


def test_long_word_labels():
    text = "a wonderful, unbelievably dull film"
    labels = reg.long_word_labels(text)
    marked = "".join(ch if lab else "_" for ch, lab in zip(text, labels, strict=False))
    assert marked == "__wonderful__unbelievably" + "_" * 10
    assert reg.long_word_labels("extraordinary")[-1] == 1  # a long word at the very end


@pytest.mark.parametrize("bidirectional,layers", [(False, 1), (True, 1), (True, 2)])
def test_tagger_shapes(bidirectional, layers):
    model = reg.Tagger(9, 4, layers, bidirectional)
    assert model(torch.randint(0, 9, (3, 10))).shape == (3, 10)
    assert model.lstm.weight_hh_l0.shape == (16, 4)
    if bidirectional:
        assert hasattr(model.lstm, "weight_hh_l0_reverse")
