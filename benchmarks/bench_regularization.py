"""Regularising a character language model: dropout (per step vs one mask per sequence), layer normalisation,
weight tying and a second layer, each against the plain model (whose runs are in the dropout group's record);
and a bidirectional tagger against a unidirectional one. Several seeds each; every record keeps each seed's
value so the page can show the spread.

The language model (:class:`course_lib.regularization.CharLM`) reads a deliberately small text (the first few
training reviews of IMDb, :func:`course_lib.charlm.read_reviews`) for many passes, so that it overfits within
a short run and regularisation has something to fix; it is scored on held-out test reviews (nats per
character) every ``--eval-every`` steps. One group per process, so that two can run side by side:

    python benchmarks/bench_regularization.py dropout --out book/results/regularization/dropout.json
    python benchmarks/bench_regularization.py architecture --out book/results/regularization/architecture.json
    python benchmarks/bench_regularization.py bidirectional --out book/results/regularization/bidirectional.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from course_lib import charlm
from course_lib import regularization as reg

GROUPS = {
    "dropout": {"plain": {}, "standard": {"dropout_mode": "standard"},
                "variational": {"dropout_mode": "variational"}},
    "architecture": {"layer_norm": {"layer_norm": True}, "tied": {"tie_weights": True},
                     "two_layers": {"num_layers": 2}},
}


def provenance(load_start: float, t_start: float) -> dict:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = "unknown"
    return {"commit": head, "date": datetime.datetime.now(datetime.UTC).isoformat(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "loadavg_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
            "seconds": time.perf_counter() - t_start}


def texts(args):
    train = " ".join(charlm.read_reviews(args.train_reviews))
    held_out = " ".join(charlm.read_reviews(args.eval_reviews, split="test"))
    vocab = charlm.CharVocab.build(train + held_out)
    return train, held_out, vocab


def run_lm_group(args) -> dict:
    train, held_out, vocab = texts(args)
    ids, eval_ids = vocab.encode(train), vocab.encode(held_out)
    runs = []
    for name, overrides in GROUPS[args.group].items():
        for seed in args.seeds:
            cfg = reg.LMConfig(len(vocab), args.hidden, dropout=args.dropout if "dropout_mode" in overrides else 0.0,
                               **overrides)
            torch.manual_seed(seed)
            model = reg.CharLM(cfg)
            t0 = time.perf_counter()
            hist = reg.train_lm(model, ids, steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len,
                                lr=args.lr, seed=seed, eval_ids=eval_ids, eval_every=args.eval_every)
            train_loss = reg.evaluate_lm(model, ids[: len(eval_ids)])
            runs.append({"name": name, "seed": seed, "config": cfg.to_dict(),
                         "parameters": reg.count_parameters(model), "eval_step": hist["eval_step"],
                         "eval_loss": hist["eval_loss"], "final_train_text_loss": train_loss,
                         "seconds": time.perf_counter() - t0})
            print(f"{name:12} seed {seed}: held-out {min(hist['eval_loss']):.3f} best, {hist['eval_loss'][-1]:.3f} "
                  f"last; training text {train_loss:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return {"data": {"train_chars": len(train), "eval_chars": len(held_out), "vocab": len(vocab),
                     "chars_read": args.steps * args.batch_size * args.seq_len}, "runs": runs}


def run_tagger_group(args) -> dict:
    train, held_out, vocab = texts(args)
    ids, eval_ids = vocab.encode(train), vocab.encode(held_out)
    labels, eval_labels = reg.long_word_labels(train), reg.long_word_labels(held_out)
    runs = []
    for name, bidirectional, layers in (("forward", False, 1), ("bidirectional", True, 1),
                                        ("forward_2_layers", False, 2)):
        for seed in args.seeds:
            torch.manual_seed(seed)
            model = reg.Tagger(len(vocab), args.tagger_hidden, layers, bidirectional)
            t0 = time.perf_counter()
            losses = reg.train_tagger(model, ids, labels, steps=args.tagger_steps, seq_len=64, seed=seed)
            acc = reg.tagger_accuracy(model, eval_ids, eval_labels)
            runs.append({"name": name, "seed": seed, "bidirectional": bidirectional, "num_layers": layers,
                         "parameters": reg.count_parameters(model), "accuracy": acc,
                         "loss": losses[:: max(1, len(losses) // 100)], "seconds": time.perf_counter() - t0})
            print(f"{name:16} seed {seed}: accuracy {acc:.4f}", flush=True)
    base_rate = float(max(eval_labels.mean(), 1 - eval_labels.mean()))
    return {"data": {"train_chars": len(train), "eval_chars": len(held_out), "long_word_min": 7,
                     "majority_accuracy": base_rate}, "runs": runs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("group", choices=[*GROUPS, "bidirectional"])
    ap.add_argument("--train-reviews", type=int, default=6, help="training reviews per label (a small text)")
    ap.add_argument("--eval-reviews", type=int, default=6, help="held-out test reviews per label")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--eval-every", type=int, default=30)
    ap.add_argument("--tagger-hidden", type=int, default=32)
    ap.add_argument("--tagger-steps", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start, t_start = os.getloadavg()[0], time.perf_counter()
    body = run_tagger_group(args) if args.group == "bidirectional" else run_lm_group(args)
    record = {"group": args.group, "settings": {k: (str(v) if isinstance(v, Path) else v)
                                                for k, v in vars(args).items()},
              **body, "provenance": provenance(load_start, t_start)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
