"""IMDb experiments: the course's presets, training runs, ensembles and the command line.

The data (download, parse, cache, encode, the train/validation cut) live in :mod:`course_lib.imdb`; this
module trains and compares models on them.

- :data:`PRESETS` are the configurations of the course's results table; :func:`train_run` trains one into a run
  folder (``results.json``, ``best.pt``, ``last.pt``, ``test_predictions.npz``) and :func:`best_ensemble`
  averages the best group of runs within a training-time budget, chosen on validation accuracy.
- Result records (what the benchmark commits and the chapter shows) are in :mod:`course_lib.imdb_records`.

Command line (full runs outside the book; ``python -m course_lib.imdb_runs --help``, or the same through
``python -m course_lib.imdb``)::

    python -m course_lib.imdb download
    python -m course_lib.imdb train --name bigru --cell gru --bidirectional --pooling max_mean --epochs 3
    python -m course_lib.imdb evaluate --run ~/.cache/rnn-course/runs/bigru
    python -m course_lib.imdb predict --run ~/.cache/rnn-course/runs/bigru "A wonderful, moving film."
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import fields
from itertools import combinations
from pathlib import Path

import numpy as np

from .imdb import (
    ENV_CACHE_DIR,
    ENV_DATA_DIR,
    SPLITS,
    DatasetError,
    ImdbData,
    _atomic_write,
    cache_dir,
    load_imdb,
    locate,
)
from .imdb_records import has_bigrams
from .imdb_split import fit_val_split as movie_val_split
from .imdb_split import movie_ids
from .text import Vocabulary

# ----------------------------------------------------------------------------------------------- runs (CLI)
# The configurations of the course's results table (benchmarks/bench_imdb.py trains them; the chapter reads
# their results.json). "seed_*": the seed article's setup (10,000 words, embedding 32, one 32-unit recurrent
# layer read to its last state, 10 epochs at batch size 128; reviews cut to their last 500 tokens).
# "bilstm*", "bigru*": candidates for the course's best recurrent model on a 2-core CPU; the best is the one with the
# highest validation accuracy (see best_recurrent), never the one with the best test accuracy. "bigru_bigram" is
# bigru_wide with bigram inputs (course_lib.bigrams): every pair seen 10 times or more in the training part, each
# dropped with probability 1/2 while training; "bigru_trigram" adds the triples kept by the same rule.
PRESETS = {
    "seed_rnn": {"vocab_size": 10_000, "model": {"cell": "rnn", "embed_dim": 32, "hidden_size": 32},
                 "train": {"epochs": 10, "batch_size": 128, "lr": 1e-3, "max_len": 500}},
    "seed_lstm": {"vocab_size": 10_000, "model": {"cell": "lstm", "embed_dim": 32, "hidden_size": 32},
                  "train": {"epochs": 10, "batch_size": 128, "lr": 1e-3, "max_len": 500}},
    "bilstm": {"vocab_size": 30_000,
               "model": {"cell": "lstm", "embed_dim": 64, "hidden_size": 64, "bidirectional": True,
                         "pooling": "max_mean", "emb_dropout": 0.3, "dropout": 0.3},
               "train": {"epochs": 4, "batch_size": 64, "lr": 2e-3, "max_len": 400}},
    "bilstm_e128": {"vocab_size": 30_000,
                    "model": {"cell": "lstm", "embed_dim": 128, "hidden_size": 64, "bidirectional": True,
                              "pooling": "max_mean", "emb_dropout": 0.4, "dropout": 0.4},
                    "train": {"epochs": 4, "batch_size": 64, "lr": 2e-3, "max_len": 400}},
    "bigru": {"vocab_size": 30_000,
              "model": {"cell": "gru", "embed_dim": 64, "hidden_size": 64, "bidirectional": True,
                        "pooling": "max_mean", "emb_dropout": 0.3, "dropout": 0.3},
              "train": {"epochs": 4, "batch_size": 64, "lr": 2e-3, "max_len": 400}},
    "bigru_800": {"vocab_size": 30_000,
                  "model": {"cell": "gru", "embed_dim": 64, "hidden_size": 64, "bidirectional": True,
                            "pooling": "max_mean", "emb_dropout": 0.3, "dropout": 0.3},
                  "train": {"epochs": 4, "batch_size": 64, "lr": 2e-3, "max_len": 800}},
    "bigru_wide": {"vocab_size": 30_000,
                   "model": {"cell": "gru", "embed_dim": 96, "hidden_size": 80, "bidirectional": True,
                             "pooling": "max_mean", "emb_dropout": 0.4, "dropout": 0.4},
                   "train": {"epochs": 6, "batch_size": 64, "lr": 3e-3, "lr_decay": 0.6, "max_len": 800,
                             "max_seconds": 840}},
}


def _with_model(base: str, **model) -> dict:
    """The preset ``base`` with some model settings added or changed (same data and training settings)."""
    return {**PRESETS[base], "model": {**PRESETS[base]["model"], **model}, "train": dict(PRESETS[base]["train"])}


PRESETS["bigru_bigram"] = _with_model("bigru_wide", bigram_dim=96, max_bigrams=1_000_000, bigram_min_count=10,
                                      bigram_dropout=0.5)
PRESETS["bigru_trigram"] = _with_model("bigru_bigram", max_trigrams=1_000_000)


# Sentences written for the course (not reviews) in three groups, each with the label a reader would give it:
# plain ones, negations, and contrasts where the last clause decides. The IMDb results page scores its own short
# run on them; ``benchmarks/bench_imdb.py --probe <run>`` scores a full run and writes the answers into its record.
PROBE = {
    "plain": [
        (1, "A wonderful film, beautifully acted and deeply moving."),
        (0, "A boring, predictable film with terrible acting."),
        (1, "I loved every minute of it."),
        (0, "I hated every minute of it."),
        (1, "One of the best films of the year."),
        (0, "One of the worst films of the year."),
    ],
    "negation": [
        (0, "This film is not good."),
        (1, "This film is not bad."),
        (0, "The acting was not good at all."),
        (1, "Not bad at all, actually."),
        (0, "I did not enjoy it."),
        (1, "There is nothing bad about this film."),
        (0, "There is nothing good about this film."),
        (0, "Not a great film, not even a good one."),
    ],
    "contrast": [
        (1, "I expected to hate it, but it was wonderful."),
        (0, "I expected to love it, but it was terrible."),
        (1, "The first hour is dull, but the ending is brilliant and worth the wait."),
        (0, "The first hour is brilliant, but the ending is dull and ruins everything."),
        (1, "The critics called it a mess, but I loved it."),
        (0, "The critics loved it, but I found it a mess."),
        (1, "Despite a weak script, the performances make it a great film."),
        (0, "Despite great performances, the weak script makes it a bad film."),
    ],
}


def probe_run(run: str | os.PathLike, which: str = "best") -> dict:
    """A trained run's answers on :data:`PROBE`: for each sentence its group, label, the tokens the model read
    (words outside its vocabulary as ``<unk>``) and p(positive); with the checkpoint probed and, from the run's
    saved test predictions, the test accuracy of that checkpoint (the one the run evaluated)."""
    from .text import tokenize
    from .train import predict_texts

    run = Path(run)
    model, vocab, tcfg = load_run(run, which)
    items = [(g, y, s) for g, group in PROBE.items() for y, s in group]
    probs = predict_texts(model, vocab, [s for _, _, s in items], tcfg.max_len, tcfg.keep)
    saved = np.load(run / "test_predictions.npz")
    return {"checkpoint": f"{which}.pt", "checkpoint_test_accuracy": score_predictions(saved["probs"],
                                                                                      saved["labels"])["accuracy"],
            "sentences": [{"group": g, "label": int(y), "text": s, "read": vocab.decode(vocab.encode(tokenize(s))),
                           "p_positive": float(p)} for (g, y, s), p in zip(items, probs, strict=True)]}


def best_recurrent(runs: dict[str, dict]) -> str | None:
    """Name of the non-seed recurrent run with the highest validation accuracy (the test split plays no part)."""
    candidates = {n: max(r["history"]["val_accuracy"]) for n, r in runs.items()
                  if "history" in r and r["history"]["val_accuracy"] and not n.startswith("seed")}
    return max(candidates, key=candidates.get) if candidates else None


def _run_dir(args) -> Path:
    if getattr(args, "run", None):
        return Path(args.run).expanduser()
    runs = Path(args.runs_dir).expanduser() if args.runs_dir else cache_dir(args.cache_dir) / "runs"
    return runs / args.name


def _machine() -> dict:
    import torch

    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def train_run(
    name: str,
    model_config: dict,
    train_config: dict,
    vocab_size: int | None = 10_000,
    min_freq: int = 1,
    val_fraction: float = 0.1,
    train_limit: int | None = None,
    test: bool = True,
    data_dir=None,
    cache=None,
    runs_dir=None,
    resume: bool = False,
    progress: bool = True,
    device=None,
) -> dict:
    """Train one model on IMDb, evaluate it on the test split, and write ``results.json`` beside its checkpoints.

    The validation split (``val_fraction`` of the training reviews, drawn with ``train_config["seed"]``; whole
    movies where the data have the archive's URL lists, see :mod:`course_lib.imdb_split`) picks the best epoch;
    the test split is read only after training. ``results["data"]["val_split"]`` says which cut it used
    (``"by_movie"`` or ``"random"``). Returns the results dictionary.
    """
    import torch

    from .bigrams import BigramConfig, build_model, count_ngrams
    from .models import count_parameters
    from .train import TrainConfig, default_device, evaluate, fit, set_seed

    run = (Path(runs_dir).expanduser() if runs_dir else cache_dir(cache) / "runs") / name
    t_load = time.perf_counter()
    _download_with_urls(data_dir, cache, progress)
    data = load_imdb(vocab_size, min_freq, data_dir, cache, progress=progress)
    load_seconds = time.perf_counter() - t_load
    tcfg = TrainConfig.from_dict(train_config)
    fit_set, val_set, val_split = movie_val_split(data.train, train_limit, val_fraction, tcfg.seed,
                                                  movie_ids(data.root, "train"))
    model_config = {**model_config, "vocab_size": len(data.vocab)}
    keys = trigram_keys = None
    if has_bigrams(model_config):  # n-gram inputs: the n-grams kept come from the training part only
        chosen = BigramConfig(**model_config)
        keys = count_ngrams(fit_set.seqs, len(data.vocab), chosen.max_bigrams, chosen.bigram_min_count, n=2)
        model_config["bigrams"] = len(keys)
        if chosen.max_trigrams:
            trigram_keys = count_ngrams(fit_set.seqs, len(data.vocab), chosen.max_trigrams, chosen.bigram_min_count,
                                        n=3)
            model_config["trigrams"] = len(trigram_keys)
    set_seed(tcfg.seed)
    model = build_model(model_config)
    if keys is not None:
        model.set_keys(keys, trigram_keys)
    mcfg = model.config
    device = torch.device(device) if device else default_device()
    extra = {"vocab": data.vocab.to_dict(), "model_config": mcfg.to_dict(), "data": {
        "vocab_size": vocab_size, "min_freq": min_freq, "val_fraction": val_fraction, "train_limit": train_limit,
        "val_split": val_split}}
    machine_before = _machine()
    history = fit(model, fit_set, val_set, tcfg, checkpoint_dir=run, resume=resume, device=device,
                  progress=progress, extra=extra)
    results = {"name": name, "model_config": mcfg.to_dict(), "train_config": tcfg.to_dict(), "data": extra["data"],
               "n_train": len(fit_set), "n_val": len(val_set), "parameters": count_parameters(model),
               "history": history, "train_seconds": float(sum(history["seconds"])),
               "load_seconds": load_seconds, "device": str(device), "machine_start": machine_before}
    if test:
        t0 = time.perf_counter()
        ev = evaluate(model, data.test, tcfg.batch_size * 2, tcfg.max_len, tcfg.keep, device, progress)
        y = data.test.labels
        results["test"] = {"loss": ev["loss"], **score_predictions(ev["probs"], y),
                           "seconds": time.perf_counter() - t0}
        _atomic_write(run / "test_predictions.npz", lambda f: np.savez(f, probs=ev["probs"], labels=y))
    results["machine_end"] = _machine()
    _atomic_write(run / "results.json", lambda f: f.write(json.dumps(results, indent=1).encode()))
    return results


def _download_with_urls(data_dir, cache, progress: bool) -> None:
    """Download the data (with the archive's URL lists, :func:`course_lib.imdb_split.download`) unless found."""
    from .imdb_split import download

    try:
        locate(data_dir, cache)
    except DatasetError:
        if data_dir is not None or os.environ.get(ENV_DATA_DIR):
            raise
        download(cache, progress)


def val_probabilities(run: str | os.PathLike, data_dir=None, cache=None,
                      data: ImdbData | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A run's predicted probabilities and the labels on its own validation split, rebuilt as it was cut.
    ``data``: the encoded dataset, if the caller already loaded it with the run's vocabulary settings."""
    from .train import evaluate

    results = json.loads((Path(run) / "results.json").read_text())
    model, vocab, tcfg = load_run(run)
    if data is None:
        data = load_imdb(results["data"]["vocab_size"], results["data"]["min_freq"], data_dir, cache)
    if data.vocab != vocab:
        raise DatasetError(f"the data no longer give the vocabulary that {run} was trained with")
    d = results["data"]
    movies = movie_ids(data.root, "train") if d.get("val_split", "random") == "by_movie" else None
    if d.get("val_split") == "by_movie" and movies is None:
        raise DatasetError(f"{run} was validated on whole movies, but the data have no URL lists to rebuild that cut")
    _, val, _ = movie_val_split(data.train, d["train_limit"], d["val_fraction"], tcfg.seed, movies)
    return evaluate(model, val, 2 * tcfg.batch_size, tcfg.max_len, tcfg.keep)["probs"], val.labels


def best_ensemble(runs_dir: str | os.PathLike, names: list[str], budget_seconds: float | None = 900.0,
                  max_size: int = 3, data_dir=None, cache=None) -> dict | None:
    """The group of 2 to ``max_size`` recurrent runs, trained in at most ``budget_seconds`` together (None: no
    limit), whose averaged probabilities have the highest validation accuracy; its test accuracy comes from the
    members' saved test predictions, read only for the chosen group. Runs must share their validation split. None
    if no group fits the budget."""
    runs_dir = Path(runs_dir)
    results = {n: json.loads((runs_dir / n / "results.json").read_text()) for n in names}
    split_of = {n: (json.dumps(r["data"], sort_keys=True), r["train_config"]["seed"]) for n, r in results.items()}
    loaded: dict[tuple, ImdbData] = {}  # one load per vocabulary setting, not one per run
    val = {}
    for n in names:
        key = (results[n]["data"]["vocab_size"], results[n]["data"]["min_freq"])
        if key not in loaded:
            loaded[key] = load_imdb(*key, data_dir, cache)
        val[n] = val_probabilities(runs_dir / n, data=loaded[key])
    best = None
    for k in range(2, max_size + 1):
        for group in combinations(names, k):
            seconds = sum(results[n]["train_seconds"] for n in group)
            if (budget_seconds is not None and seconds > budget_seconds) or len({split_of[n] for n in group}) > 1:
                continue
            labels = val[group[0]][1]
            accuracy = float(np.mean((np.mean([val[n][0] for n in group], axis=0) > 0.5) == labels))
            if best is None or accuracy > best["val_accuracy"]:
                best = {"members": list(group), "val_accuracy": accuracy, "train_seconds": seconds,
                        "budget_seconds": budget_seconds, "n_val": len(labels),
                        "val_split": results[group[0]]["data"].get("val_split", "random")}
    if best is None:
        return None
    tests = [np.load(runs_dir / n / "test_predictions.npz") for n in best["members"]]
    best["test"] = score_predictions(np.mean([t["probs"] for t in tests], axis=0), tests[0]["labels"])
    return best


def score_predictions(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, count and confusion matrix ``[[true neg, false pos], [false neg, true pos]]`` of positive-class
    probabilities ``(N,)`` thresholded at 1/2, against 0/1 labels ``(N,)``."""
    y = np.asarray(labels)
    pred = (np.asarray(probs) > 0.5).astype(np.int64)
    return {"accuracy": float(np.mean(pred == y)), "n": len(y),
            "confusion": [[int(np.sum((y == a) & (pred == b))) for b in (0, 1)] for a in (0, 1)]}


def load_run(run: str | os.PathLike, which: str = "best", device="cpu"):
    """Rebuild a trained model from a run folder: returns ``(model, vocab, train_config)`` ready for inference."""
    from .bigrams import build_model
    from .train import TrainConfig, load_checkpoint

    state = load_checkpoint(Path(run) / f"{which}.pt", map_location=device)
    model = build_model(state["extra"]["model_config"])
    model.load_state_dict(state["model"])
    model.eval()
    return model, Vocabulary.from_dict(state["extra"]["vocab"]), TrainConfig.from_dict(state["train_config"])


def _parser() -> argparse.ArgumentParser:
    from .bigrams import BigramConfig
    from .models import ModelConfig
    from .train import TrainConfig

    p = argparse.ArgumentParser(prog="python -m course_lib.imdb", description=__doc__.splitlines()[0])
    p.add_argument("--cache-dir", help=f"cache folder (default: ${ENV_CACHE_DIR}, $XDG_CACHE_HOME/rnn-course "
                                       "or ~/.cache/rnn-course)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("download", help="download, verify and extract the dataset into the cache")

    t = sub.add_parser("train", help="train a model, evaluate it on the test split, write results.json")
    t.add_argument("--name", required=True, help="run name: the run folder is <runs-dir>/<name>")
    t.add_argument("--runs-dir", help="default <cache>/runs")
    t.add_argument("--data-dir", help=f"an aclImdb folder (default ${ENV_DATA_DIR}, or the cache)")
    t.add_argument("--resume", action="store_true", help="continue from the run's last.pt")
    t.add_argument("--vocab-size", type=int, default=10_000)
    t.add_argument("--min-freq", type=int, default=1)
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--train-limit", type=int, help="use only this many training reviews (for quick trials)")
    t.add_argument("--no-test", action="store_true", help="skip the test split (tuning uses validation only)")
    t.add_argument("--threads", type=int, help="torch CPU threads")
    t.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    defaults = ModelConfig(vocab_size=0)
    for f in fields(ModelConfig):
        if f.name == "vocab_size":
            continue
        if f.type == "bool":
            t.add_argument("--" + f.name.replace("_", "-"), action="store_true")
        else:
            t.add_argument("--" + f.name.replace("_", "-"), type=type(getattr(defaults, f.name)),
                           default=getattr(defaults, f.name))
    t.add_argument("--bigram-dim", type=int, default=0,
                   help="add bigram inputs of this width (course_lib.bigrams; default 0: none)")
    bigram = BigramConfig(vocab_size=0)
    t.add_argument("--max-bigrams", type=int, default=bigram.max_bigrams, help="with --bigram-dim: bigrams kept")
    t.add_argument("--bigram-min-count", type=int, default=bigram.bigram_min_count,
                   help="with --bigram-dim: fewest occurrences in the training part for a bigram to be kept")
    t.add_argument("--bigram-dropout", type=float, default=bigram.bigram_dropout,
                   help="with --bigram-dim: probability of dropping a whole bigram (or trigram) while training")
    t.add_argument("--max-trigrams", type=int, default=bigram.max_trigrams,
                   help="with --bigram-dim: also trigram inputs, this many at most (same width, minimum count and "
                        "dropout as the bigrams; default 0: none)")
    tdefaults = TrainConfig()
    for f in fields(TrainConfig):
        kind = {"int | None": int, "float | None": float}.get(f.type, type(getattr(tdefaults, f.name)))
        t.add_argument("--" + f.name.replace("_", "-"), type=kind, default=getattr(tdefaults, f.name))

    e = sub.add_parser("evaluate", help="evaluate a run's best model on a split")
    e.add_argument("--run", required=True, help="the run folder")
    e.add_argument("--split", default="test", choices=SPLITS)
    e.add_argument("--data-dir")
    r = sub.add_parser("predict", help="print the probability that each text is a positive review")
    r.add_argument("--run", required=True)
    r.add_argument("texts", nargs="+")
    return p


def main(argv: list[str] | None = None) -> int:
    from .models import ModelConfig
    from .train import TrainConfig

    args = _parser().parse_args(argv)
    progress = not args.quiet
    try:
        if args.command == "download":
            from .imdb_split import download

            print(download(args.cache_dir, progress))
            return 0
        if args.command == "train":
            import torch

            if args.threads:
                torch.set_num_threads(args.threads)
            mcfg = {f.name: getattr(args, f.name) for f in fields(ModelConfig) if f.name != "vocab_size"}
            if args.bigram_dim:
                mcfg.update(bigram_dim=args.bigram_dim, max_bigrams=args.max_bigrams,
                            bigram_min_count=args.bigram_min_count, bigram_dropout=args.bigram_dropout,
                            max_trigrams=args.max_trigrams)
            tcfg = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
            res = train_run(args.name, mcfg, tcfg, args.vocab_size, args.min_freq, args.val_fraction,
                            args.train_limit, not args.no_test, args.data_dir, args.cache_dir, args.runs_dir,
                            args.resume, progress, args.device)
            line = f"{args.name}: {res['train_seconds']:.0f} s of training, best epoch {res['history']['best_epoch']}"
            if res["history"]["val_accuracy"]:
                line += f", val accuracy {max(res['history']['val_accuracy']):.4f}"
            if "test" in res:
                line += f", test accuracy {res['test']['accuracy']:.4f}"
            print(line)
            return 0
        from .train import evaluate, predict_texts

        model, vocab, tcfg = load_run(args.run)
        if args.command == "evaluate":
            data = load_imdb(len(vocab), data_dir=args.data_dir, cache=args.cache_dir, progress=progress)
            if data.vocab != vocab:
                raise DatasetError("the run's vocabulary differs from the one rebuilt from the data")
            ev = evaluate(model, getattr(data, args.split), tcfg.batch_size * 2, tcfg.max_len, tcfg.keep,
                          progress=progress)
            print(f"{args.split}: loss {ev['loss']:.4f}, accuracy {ev['accuracy']:.4f} ({len(ev['probs'])} reviews)")
            return 0
        for text, p in zip(args.texts, predict_texts(model, vocab, args.texts, tcfg.max_len, tcfg.keep), strict=True):
            print(f"{p:.4f}  {text}")
        return 0
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
