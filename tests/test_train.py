"""Tests of course_lib.train (loop, evaluation, early stopping, checkpoints, resume) and the IMDb command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import imdb, imdb_runs
from course_lib.models import ModelConfig, SentimentRNN
from course_lib.text import SequenceDataset, Vocabulary, pad_batch, tokenize
from course_lib.train import TrainConfig, evaluate, fit, load_checkpoint, predict_texts, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models train fastest, and most predictably on a busy machine, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    """A tiny synthetic IMDb in the official layout, encoded."""
    base = tmp_path_factory.mktemp("imdb")
    root = imdb.write_fake_dataset(base / "aclImdb", n_per_label=80, seed=0)
    return imdb.load_imdb(vocab_size=100, data_dir=root, cache=base / "cache")


def tiny_model(vocab_size, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=vocab_size, embed_dim=8, hidden_size=8, cell="gru", pooling="max_mean") | kw
    return SentimentRNN(ModelConfig(**cfg))


def test_training_lowers_the_loss_and_learns(fake_data):
    train, val = fake_data.train.split(0.25, seed=0)
    model = tiny_model(len(fake_data.vocab))
    config = TrainConfig(epochs=8, batch_size=16, lr=3e-2, seed=0)
    history = fit(model, train, val, config, device="cpu", progress=False)
    assert history["epoch"] == list(range(1, 9))
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert max(history["val_accuracy"]) >= 0.9
    test = evaluate(model, fake_data.test, max_len=None)
    assert test["accuracy"] >= 0.9


def test_fit_is_reproducible_and_restores_the_best_epoch(fake_data):
    train, val = fake_data.train.split(0.25, seed=0)
    config = TrainConfig(epochs=4, batch_size=16, lr=1e-2, seed=3, monitor="val_loss")
    runs = []
    for _ in range(2):
        model = tiny_model(len(fake_data.vocab), emb_dropout=0.3, dropout=0.3)
        runs.append((fit(model, train, val, config, device="cpu", progress=False), model))
    (h1, m1), (h2, m2) = runs
    assert h1["train_loss"] == h2["train_loss"] and h1["val_loss"] == h2["val_loss"]
    best = int(np.argmin(h1["val_loss"]))
    assert h1["best_epoch"] == best + 1
    ev = evaluate(m1, val, batch_size=2 * config.batch_size, max_len=config.max_len)
    assert ev["loss"] == pytest.approx(h1["val_loss"][best], rel=1e-12)


def test_learning_rate_decays_once_per_epoch(fake_data):
    train, val = fake_data.train.split(0.25, seed=0)
    made, seen = [], []

    def adam(params):
        made.append(torch.optim.Adam(params, lr=0.02))
        return made[-1]

    config = TrainConfig(epochs=3, batch_size=16, lr=0.02, lr_decay=0.5, seed=0)
    fit(tiny_model(len(fake_data.vocab)), train, val, config, device="cpu", progress=False, optimizer_factory=adam,
        on_epoch_end=lambda h: seen.append(made[0].param_groups[0]["lr"]))
    assert seen == pytest.approx([0.02, 0.01, 0.005])


def test_early_stopping(fake_data):
    train, val = fake_data.train.split(0.25, seed=0)
    config = TrainConfig(epochs=10, batch_size=16, lr=0.0, patience=2, seed=0)  # lr 0: nothing ever improves
    history = fit(tiny_model(len(fake_data.vocab)), train, val, config, device="cpu", progress=False)
    assert history["epoch"] == [1, 2, 3] and history["stopped_early"] and history["best_epoch"] == 1


def test_evaluate_keeps_the_dataset_order(fake_data):
    model = tiny_model(len(fake_data.vocab)).eval()
    ev = evaluate(model, fake_data.test, batch_size=7, max_len=20)
    for n in [0, 5, 77, len(fake_data.test) - 1]:
        tokens, lengths = pad_batch([fake_data.test.seqs[n]], max_len=20)
        assert ev["probs"][n] == pytest.approx(float(model.predict_proba(tokens, lengths)), abs=1e-12)
    assert ev["accuracy"] == np.mean((ev["probs"] > 0.5) == fake_data.test.labels)


def test_checkpoints_load_for_inference_and_resume_exactly_in_process(fake_data, tmp_path):
    train, val = fake_data.train.split(0.25, seed=0)
    config = TrainConfig(epochs=5, batch_size=16, lr=1e-2, seed=1)
    extra = {"vocab": fake_data.vocab.to_dict()}
    full = tiny_model(len(fake_data.vocab), emb_dropout=0.2)
    h_full = fit(full, train, val, config, tmp_path / "full", device="cpu", progress=False, extra=extra)

    class Stop(Exception):
        pass

    def stop_after_2(history):
        if history["epoch"][-1] == 2:
            raise Stop

    with pytest.raises(Stop):
        fit(tiny_model(len(fake_data.vocab), emb_dropout=0.2), train, val, config, tmp_path / "cut",
            device="cpu", progress=False, extra=extra, on_epoch_end=stop_after_2)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2
    # a fresh model with other initial weights: everything must come from the checkpoint
    resumed = tiny_model(len(fake_data.vocab), seed=99, emb_dropout=0.2)
    h_res = fit(resumed, train, val, config, tmp_path / "cut", resume=True, device="cpu", progress=False)
    for key in ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "best_epoch"):
        assert h_res[key] == h_full[key], key
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k

    state = load_checkpoint(tmp_path / "full" / "best.pt")
    assert state["epoch"] == h_full["best_epoch"] and Vocabulary.from_dict(state["extra"]["vocab"]) == fake_data.vocab
    loaded = tiny_model(len(fake_data.vocab), seed=5, emb_dropout=0.2)
    loaded.load_state_dict(state["model"])
    texts = ["superb and moving, brilliant", "a boring, stupid mess"]
    np.testing.assert_array_equal(predict_texts(loaded, fake_data.vocab, texts),
                                  predict_texts(full, fake_data.vocab, texts))
    with pytest.raises(ValueError, match="cannot resume"):
        fit(tiny_model(len(fake_data.vocab)), train, val, TrainConfig(epochs=6, batch_size=16, lr=1e-2, seed=1),
            tmp_path / "cut", resume=True, device="cpu", progress=False)


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def cli(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop(imdb.ENV_DATA_DIR, None)
    return [sys.executable, "-m", "course_lib.imdb", *args], env


@pytest.mark.slow
def test_a_killed_run_resumed_ends_exactly_like_an_uninterrupted_one(tmp_path):
    """Kill a real training process after its epoch-2 checkpoint, resume it, compare with a run never killed."""
    data = imdb.write_fake_dataset(tmp_path / "aclImdb", n_per_label=150, seed=1)
    common = ["--quiet", "--cache-dir", str(tmp_path / "cache"), "train", "--runs-dir", str(tmp_path / "runs"),
              "--data-dir", str(data), "--vocab-size", "80", "--embed-dim", "8", "--hidden-size", "16",
              "--cell", "lstm", "--bidirectional", "--pooling", "max_mean", "--emb-dropout", "0.2",
              "--dropout", "0.2", "--epochs", "6", "--batch-size", "8", "--lr", "0.003", "--threads", "1"]
    cmd, env = cli(*common, "--name", "full")
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)

    cmd, env = cli(*common, "--name", "killed")
    last = tmp_path / "runs" / "killed" / "last.pt"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        killed_after = None
        while time.monotonic() < deadline and proc.poll() is None:
            if last.exists() and (epoch := load_checkpoint(last)["epoch"]) >= 2:
                proc.kill()
                killed_after = epoch
                break
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    assert killed_after is not None and proc.returncode == -9, "the run finished before it could be killed"
    assert load_checkpoint(last)["epoch"] < 6
    assert not (tmp_path / "runs" / "killed" / "results.json").exists()

    cmd, env = cli(*common, "--name", "killed", "--resume")
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    full = json.loads((tmp_path / "runs" / "full" / "results.json").read_text())
    resumed = json.loads((tmp_path / "runs" / "killed" / "results.json").read_text())
    for key in ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "best_epoch"):
        assert resumed["history"][key] == full["history"][key], key
    assert resumed["test"] == {**full["test"], "seconds": resumed["test"]["seconds"]}
    a = load_checkpoint(tmp_path / "runs" / "full" / "best.pt")["model"]
    b = load_checkpoint(tmp_path / "runs" / "killed" / "best.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_train_evaluate_predict(tmp_path, capsys):
    data = imdb.write_fake_dataset(tmp_path / "aclImdb", n_per_label=40, seed=2)
    cache = str(tmp_path / "cache")
    assert imdb_runs.main(["--quiet", "--cache-dir", cache, "train", "--name", "tiny", "--data-dir", str(data),
                           "--vocab-size", "60", "--embed-dim", "8", "--hidden-size", "8", "--cell", "gru",
                           "--epochs", "3", "--batch-size", "16", "--lr", "0.01"]) == 0
    run = tmp_path / "cache" / "runs" / "tiny"  # the default runs folder is under the cache
    results = json.loads((run / "results.json").read_text())
    assert results["history"]["epoch"] == [1, 2, 3] and results["test"]["n"] == 80
    assert sum(map(sum, results["test"]["confusion"])) == 80
    with np.load(run / "test_predictions.npz") as z:
        assert z["probs"].shape == (80,) and np.mean((z["probs"] > 0.5) == z["labels"]) == results["test"]["accuracy"]
    assert "test accuracy" in capsys.readouterr().out
    assert imdb_runs.main(["--quiet", "--cache-dir", cache, "evaluate", "--run", str(run),
                           "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {results['test']['accuracy']:.4f} (80 reviews)" in out
    assert imdb_runs.main(["--quiet", "predict", "--run", str(run), "superb film", "awful mess"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].endswith("superb film") and 0 <= float(lines[0].split()[0]) <= 1
    model, vocab, _ = imdb_runs.load_run(run)
    assert vocab.encode(tokenize("superb")).tolist() != [vocab.unk_id]


def test_cli_trains_a_model_with_bigram_and_trigram_inputs(tmp_path, capsys):
    data = imdb.write_fake_dataset(tmp_path / "aclImdb", n_per_label=40, seed=2)
    cache = str(tmp_path / "cache")
    assert imdb_runs.main(["--quiet", "--cache-dir", cache, "train", "--name", "bi", "--data-dir", str(data),
                           "--vocab-size", "60", "--embed-dim", "8", "--hidden-size", "8", "--cell", "gru",
                           "--epochs", "1", "--batch-size", "16", "--bigram-dim", "3", "--bigram-min-count", "2",
                           "--bigram-dropout", "0.5", "--max-trigrams", "30"]) == 0
    config = json.loads((tmp_path / "cache" / "runs" / "bi" / "results.json").read_text())["model_config"]
    assert config["bigram_dim"] == 3 and config["bigram_min_count"] == 2 and config["bigram_dropout"] == 0.5
    assert config["bigrams"] > 0 and 0 < config["trigrams"] <= config["max_trigrams"] == 30
    assert imdb_runs.main(["--quiet", "predict", "--run", str(tmp_path / "cache" / "runs" / "bi"), "fine"]) == 0
    assert capsys.readouterr().out.strip().endswith("fine")


def test_cli_reports_missing_data_clearly(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(imdb.ENV_DATA_DIR, raising=False)
    code = imdb_runs.main(["--quiet", "--cache-dir", str(tmp_path), "train", "--name", "x", "--data-dir",
                           str(tmp_path / "nowhere")])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err


def test_sequence_dataset_with_fit_requires_no_validation(fake_data):
    small = SequenceDataset(fake_data.train.seqs[:32], fake_data.train.labels[:32])
    history = fit(tiny_model(len(fake_data.vocab)), small, None, TrainConfig(epochs=2, batch_size=16),
                  device="cpu", progress=False)
    assert history["val_loss"] == [] and history["best_epoch"] is None and len(history["train_loss"]) == 2


def test_best_ensemble_is_chosen_on_validation_within_the_time_budget(tmp_path):
    data = imdb.write_fake_dataset(tmp_path / "aclImdb", n_per_label=40, seed=3)
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    names = ["gru", "lstm", "rnn"]
    for name in names:
        imdb_runs.train_run(name, {"cell": name, "embed_dim": 8, "hidden_size": 8, "pooling": "max_mean"},
                            {"epochs": 2, "batch_size": 16, "lr": 0.01, "seed": 0}, vocab_size=60,
                            val_fraction=0.25, data_dir=data, cache=cache, runs_dir=runs, progress=False)
    val = {}
    for name in names:
        probs, labels = imdb_runs.val_probabilities(runs / name, data, cache)
        results = json.loads((runs / name / "results.json").read_text())
        assert len(labels) == results["n_val"] == 20
        assert np.mean((probs > 0.5) == labels) == pytest.approx(results["history"]["best_value"])  # same split
        val[name] = probs, labels
    best = imdb_runs.best_ensemble(runs, names, budget_seconds=None, data_dir=data, cache=cache)  # no limit
    groups = [["gru", "lstm"], ["gru", "rnn"], ["lstm", "rnn"], names]
    accuracy = {tuple(g): np.mean((np.mean([val[n][0] for n in g], axis=0) > 0.5) == val["gru"][1]) for g in groups}
    assert best["val_accuracy"] == pytest.approx(max(accuracy.values()))
    assert accuracy[tuple(best["members"])] == max(accuracy.values())
    assert best["test"]["n"] == 80 and sum(map(sum, best["test"]["confusion"])) == 80
    assert best["budget_seconds"] is None
    assert imdb_runs.best_ensemble(runs, names, budget_seconds=0.0, data_dir=data, cache=cache) is None
    seconds = {n: json.loads((runs / n / "results.json").read_text())["train_seconds"] for n in names}
    pair = min(groups[:3], key=lambda g: sum(seconds[n] for n in g))  # the only group within its own time
    fits = imdb_runs.best_ensemble(runs, names, budget_seconds=sum(seconds[n] for n in pair), data_dir=data,
                                   cache=cache)
    assert fits["members"] == pair and fits["val_accuracy"] == pytest.approx(accuracy[tuple(pair)])
