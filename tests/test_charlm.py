"""Tests of course_lib.charlm: the review reader, the vocabulary, the character model against torch, training."""

import os

import numpy as np
import pytest
import torch
from conftest import assert_close, t

from course_lib import charlm
from course_lib.gradcheck import numerical_gradient, rel_error

FAKE_REVIEWS = {
    "pos": {"0_9.txt": "Great film.<br /><br />Loved it.", "10_8.txt": "Fine  acting,\nfine plot.", "2_7.txt": "Good."},
    "neg": {"1_1.txt": "Awful.<br />Just awful.", "11_2.txt": "Boring.", "3_4.txt": "Bad <br/>ending."},
}


def write_fake_imdb(root):
    """A tiny copy of the official aclImdb layout: {train,test}/{pos,neg}/<id>_<rating>.txt."""
    for split in ("train", "test"):
        for label, files in FAKE_REVIEWS.items():
            folder = root / split / label
            folder.mkdir(parents=True)
            for name, text in files.items():
                (folder / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def imdb_dir(tmp_path):
    """The real dataset when RNN_COURSE_IMDB_DIR is set (as in CI), otherwise a fake one of the same layout."""
    return os.environ.get(charlm.IMDB_DIR_ENV) or write_fake_imdb(tmp_path / "aclImdb")


def test_read_reviews_sorts_by_name_alternates_labels_and_strips_line_breaks(tmp_path):
    root = write_fake_imdb(tmp_path / "aclImdb")
    texts = charlm.read_reviews(2, root)
    # sorted by name as strings: "0_9" < "10_8" < "2_7", and "11_2" < "1_1" < "3_4" (since "1" < "_")
    assert texts == ["Great film. Loved it.", "Boring.", "Fine acting, fine plot.", "Awful. Just awful."]
    assert charlm.read_reviews(1, root, split="test") == texts[:2]


def test_read_reviews_falls_back_to_the_download_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(charlm.IMDB_DIR_ENV, raising=False)
    monkeypatch.setenv("RNN_COURSE_CACHE_DIR", str(tmp_path / "cache"))
    root = write_fake_imdb(tmp_path / "cache" / "aclImdb")
    assert charlm.read_reviews(3) == charlm.read_reviews(3, root)


def test_read_reviews_reads_the_environment_variable(tmp_path, monkeypatch):
    root = write_fake_imdb(tmp_path / "aclImdb")
    monkeypatch.setenv(charlm.IMDB_DIR_ENV, str(root))
    assert charlm.read_reviews(3) == charlm.read_reviews(3, root)


def test_read_reviews_on_the_configured_dataset(imdb_dir):
    texts = charlm.read_reviews(3, imdb_dir)
    assert len(texts) == 6
    assert all(text and "<br" not in text and "  " not in text for text in texts)


def test_read_reviews_errors_name_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(charlm.IMDB_DIR_ENV, raising=False)
    monkeypatch.setenv("RNN_COURSE_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(FileNotFoundError, match=charlm.IMDB_DIR_ENV):
        charlm.read_reviews(1)
    with pytest.raises(FileNotFoundError, match=charlm.IMDB_DIR_ENV):
        charlm.read_reviews(1, tmp_path / "nowhere")
    root = write_fake_imdb(tmp_path / "aclImdb")
    with pytest.raises(ValueError, match="fewer"):
        charlm.read_reviews(4, root)


def test_vocab_round_trip_and_unknown_characters():
    vocab = charlm.CharVocab.build("hello world")
    assert vocab.chars == (" ", "d", "e", "h", "l", "o", "r", "w")
    ids = vocab.encode("hello")
    np.testing.assert_array_equal(ids, [3, 2, 4, 4, 5])
    assert vocab.decode(ids) == "hello"
    with pytest.raises(ValueError, match="'z'"):
        vocab.encode("zebra")


def random_model(seed=0, V=6, H=5):
    model = charlm.CharRNN.create(V, H, seed=seed)
    rng = np.random.default_rng(seed + 1)
    model.params["b"] = rng.standard_normal(H) * 0.1  # non-zero biases, so that their gradients are tested
    model.params["b_out"] = rng.standard_normal(V) * 0.1
    return model


@pytest.mark.parametrize(("N", "T"), [(1, 1), (2, 5), (3, 4)])
def test_charrnn_loss_and_gradients_match_torch(rng, N, T):
    model = random_model()
    V = model.vocab_size
    x, y = rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T))
    h0 = rng.standard_normal((N, model.hidden_size)) * 0.5
    loss, grads, h_last = model.loss(x, y, h0)

    module = charlm.TorchCharRNN.from_numpy(model)
    th0 = t(h0, True)
    scores, th_last = module(torch.from_numpy(x), th0)
    ref = torch.nn.functional.cross_entropy(scores.reshape(-1, V), torch.from_numpy(y).reshape(-1))
    ref.backward()
    assert_close(loss, ref.item())
    assert_close(h_last, th_last)
    assert_close(grads["Wx"], module.rnn.weight_ih_l0.grad.T)
    assert_close(grads["Wh"], module.rnn.weight_hh_l0.grad.T)
    assert_close(grads["b"], module.rnn.bias_ih_l0.grad)
    assert_close(grads["W_out"], module.out.weight.grad.T)
    assert_close(grads["b_out"], module.out.bias.grad)
    assert_close(grads["h0"], th0.grad)
    assert module.rnn.bias_hh_l0.grad is None  # the second torch bias is frozen at zero


def test_charrnn_gradients_match_numerical(rng):
    model = random_model(seed=3)
    x, y = rng.integers(0, 6, (2, 4)), rng.integers(0, 6, (2, 4))
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=bool)
    h0 = rng.standard_normal((2, model.hidden_size)) * 0.5
    _, grads, _ = model.loss(x, y, h0, mask)
    f = lambda: model.loss(x, y, h0, mask)[0]  # noqa: E731
    for name, value in [*model.params.items(), ("h0", h0)]:
        assert rel_error(grads[name], numerical_gradient(f, value)) < 1e-7, name


def test_sampling_is_seeded_and_greedy_sampling_follows_the_argmax():
    model = random_model(seed=5)
    prefix = np.array([1, 2])
    a = model.sample(prefix, 20, temperature=1.0, seed=11, num_samples=3)
    np.testing.assert_array_equal(a, model.sample(prefix, 20, temperature=1.0, seed=11, num_samples=3))
    assert a.shape == (3, 20) and a.min() >= 0 and a.max() < model.vocab_size
    assert not np.array_equal(a, model.sample(prefix, 20, temperature=1.0, seed=12, num_samples=3))
    greedy = model.sample(prefix, 6, temperature=0.0)[0]
    # the greedy text is the argmax of the model's own scores, fed back one character at a time
    seq = list(prefix)
    for expected in greedy:
        scores, _, _ = model.forward(np.array([seq]))
        assert scores[0, -1].argmax() == expected
        seq.append(expected)


def test_tbptt_batches_continue_each_stream_and_shift_targets():
    ids = np.arange(1000)
    batches = charlm.tbptt_batches(ids, batch_size=4, seq_len=10, seed=0)
    x0, y0, reset0 = next(batches)
    x1, y1, reset1 = next(batches)
    assert x0.shape == y0.shape == (4, 10)
    assert reset0 and not reset1
    np.testing.assert_array_equal(y0, x0 + 1)  # targets are the next ids
    np.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)  # each row continues where it stopped
    assert x0[0, 0] < 10  # a random offset below seq_len
    n_chunks = 2 + sum(1 for _ in iter(lambda: next(batches)[2], True))  # chunks until the next reset
    assert n_chunks == (1000 - x0[0, 0] - 1) // 4 // 10
    with pytest.raises(ValueError, match="too few"):
        next(charlm.tbptt_batches(np.arange(50), batch_size=4, seq_len=10))


def test_adam_step_matches_torch(rng):
    params = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal(4)}
    tparams = [t(p, True) for p in params.values()]
    optimiser = torch.optim.Adam(tparams, lr=0.01)
    state = {}
    for _ in range(5):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        charlm.adam_step(params, grads, state, lr=0.01)
        for tp, g in zip(tparams, grads.values(), strict=True):
            tp.grad = t(g)
        optimiser.step()
    for p, tp in zip(params.values(), tparams, strict=True):
        assert_close(p, tp)


def test_numpy_and_torch_training_agree_step_by_step():
    text = "the cat sat on the mat. the dog sat on the log. " * 20
    vocab = charlm.CharVocab.build(text)
    ids = vocab.encode(text)
    settings = dict(steps=30, batch_size=4, seq_len=12, lr=0.01, clip=0.25, seed=0, progress=False)
    model = charlm.CharRNN.create(len(vocab), 16, seed=0)
    module = charlm.TorchCharRNN.from_numpy(model)
    history = charlm.train_charlm(model, ids, **settings)
    torch_history = charlm.train_charlm_torch(module, ids, **settings)
    assert_close(np.array(history.loss), np.array(torch_history.loss))
    assert_close(np.array(history.grad_norm), np.array(torch_history.grad_norm))
    assert min(history.grad_norm) > 0.25  # clipping was active, so the test covers it
    assert_close(model.params["Wh"], module.rnn.weight_hh_l0.T)
    assert history.loss[-1] < 0.7 * history.loss[0]


def test_training_learns_a_repeated_phrase():
    text = "hello, recurrent world! " * 60
    vocab = charlm.CharVocab.build(text)
    model = charlm.CharRNN.create(len(vocab), 32, seed=0)
    calls = []
    history = charlm.train_charlm(model, vocab.encode(text), steps=150, batch_size=8, seq_len=16, lr=0.02,
                                  seed=0, progress=False, callback=lambda step, m: calls.append(step))
    assert calls == list(range(1, 151))
    assert history.loss[-1] < 0.1
    assert vocab.decode(model.sample(vocab.encode("hello, "), 17, temperature=0.0)[0]) == "recurrent world! "


def test_evaluate_charlm_is_the_torch_cross_entropy_of_the_streams_read_with_carried_state(rng):
    model = charlm.CharRNN.create(7, 5, seed=1)
    module = charlm.TorchCharRNN.from_numpy(model)
    ids = rng.integers(0, 7, 103)
    N, L = 4, (103 - 1) // 4
    x, y = ids[: N * L].reshape(N, L), ids[1 : 1 + N * L].reshape(N, L)
    with torch.no_grad():
        scores, _ = module(torch.as_tensor(x))  # one pass over each whole stream
        want = torch.nn.functional.cross_entropy(scores.reshape(-1, 7), torch.as_tensor(y).reshape(-1)).item()
    got = charlm.evaluate_charlm(model, ids, batch_size=N, seq_len=7)  # chunks of 7, state carried
    assert abs(got - want) < 1e-10
    with pytest.raises(ValueError, match="too few"):
        charlm.evaluate_charlm(model, ids[:3], batch_size=4)
