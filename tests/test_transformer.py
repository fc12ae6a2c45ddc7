"""course_lib.transformer: the Transformer encoder-decoder has the recurrent models' interface and trains with
the same loop; its decoder never reads the future; stepping equals the one-call forward; padding is never read."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_seq2seq import random_batch, toy_data

from course_lib import seq2seq
from course_lib import transformer as tf
from course_lib.spa_eng import EOS_ID, PairDataset, Vocab


def small(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    config = tf.TransformerConfig(src_vocab=11, tgt_vocab=13, width=8, heads=2, ff=16, encoder_layers=2,
                                  decoder_layers=2, dropout=dropout, max_len=32)
    return tf.TransformerSeq2Seq(config).double().eval()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_shapes_causality_and_padding(rng):
    model = small()
    src, lengths, tgt = random_batch(rng)
    logits = model(src, lengths, tgt)
    assert logits.shape == (4, 5, 13)
    changed = tgt.clone()
    changed[:, 3:] = 9  # later target words change nothing before them
    torch.testing.assert_close(model(src, lengths, changed)[:, :3], logits[:, :3])
    assert not torch.allclose(model(src, lengths, changed)[:, 3:], logits[:, 3:])
    garbage = src.clone()  # source tokens beyond each length are not read
    for i, n in enumerate(lengths.tolist()):
        garbage[i, n:] = 7
    torch.testing.assert_close(model(garbage, lengths, tgt), logits)


def test_stepping_equals_the_one_call_forward_and_decoders_agree(rng):
    model = small(1)
    src, lengths, tgt = random_batch(rng)
    expected = torch.log_softmax(model(src, lengths, tgt), dim=-1)
    state = model.initial_state(src, lengths)
    for t in range(tgt.shape[1]):
        log_probs, state = model.step(tgt[:, t], state)
        torch.testing.assert_close(log_probs, expected[:, t])
    state = model.initial_state(src, lengths)
    greedy = seq2seq.greedy_decode(tf.transformer_step(model), state, 4, 8)
    beam, _ = seq2seq.beam_search(tf.transformer_step(model), state, 4, 1, 8)
    np.testing.assert_array_equal(beam, greedy)
    vocab = Vocab(["<pad>", "<bos>", "<eos>", "<unk>"] + [f"w{i}" for i in range(9)])
    data = PairDataset([s[:n].numpy() for s, n in zip(src, lengths, strict=True)], [np.array([1, 2])] * 4,
                       [""] * 4, [""] * 4)
    assert tf.translate(model, data, vocab, beam=1, max_len=8) == [vocab.decode(row) for row in greedy]
    assert len(tf.translate(model, data, vocab, beam=3, max_len=8)) == 4


def test_trains_with_the_course_loop_and_resumes(rng, tmp_path):
    torch.set_default_dtype(torch.float32)
    try:
        data = toy_data(rng)
        config = seq2seq.TrainConfig(epochs=4, batch_size=8, lr=3e-3, checkpoint_every=3)
        model = small(2).float()
        history = seq2seq.train(model, data, config, val=data, checkpoint_dir=tmp_path, progress=False)
        assert history["done"] and history["val_loss"][-1] < history["val_loss"][0]
        state = seq2seq.load_checkpoint(tmp_path / "last.pt")
        again = tf.TransformerSeq2Seq(tf.TransformerConfig.from_dict(state["model_config"])).float()
        again.load_state_dict(state["model"])
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    finally:
        torch.set_default_dtype(torch.float64)


def test_cross_attention_map_rows_are_distributions():
    weights = tf.cross_attention_map(small(3), np.array([4, 5, 6, EOS_ID]), [7, 8, EOS_ID])
    assert weights.shape == (3, 4) and np.allclose(weights.sum(axis=1), 1)


def test_too_long_a_sequence_is_a_clear_error():
    model = small()
    with pytest.raises(ValueError, match="longer than max_len"):
        model(torch.full((1, 40), 5), torch.tensor([40]), torch.full((1, 3), 5))


def test_an_untrained_model_starts_near_the_uniform_loss():
    """At the benchmark's size (width 256, 8,000 Spanish words) the first loss is about ln V: with torch's default
    N(0, 1) embeddings, scaled by sqrt(E) and tied to the output, it was about 23 nats and training diverged."""
    import math

    torch.manual_seed(0)
    model = tf.TransformerSeq2Seq(tf.TransformerConfig(src_vocab=9386, tgt_vocab=8000)).eval()
    src, tgt = torch.randint(4, 9000, (8, 10)), torch.randint(4, 7900, (8, 13))
    logits = model(src, torch.full((8,), 10), tgt[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 8000), tgt[:, 1:].reshape(-1)).item()
    assert abs(loss - math.log(8000)) < 2.0, loss
    assert not model.tgt_embed.weight[0].any() and not model.src_embed.weight[0].any()  # padding rows stay zero
