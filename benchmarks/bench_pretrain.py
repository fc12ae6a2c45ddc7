"""Pretraining on the training reviews' text, then fine-tuning, against the same classifier from scratch.

A word-level language model (:class:`course_lib.pretrain.WordLM`, a GRU) is trained on the text of the training
part of the IMDb split that every course run uses (:func:`course_lib.imdb.fit_val_split`, 10% held out for
validation), plus the archive's 50,000 unlabelled training reviews (``train/unsup``) where the copy of the
data has them: no label is read, and no validation or test text. Then, for each seed, two classifiers of the same
shape (:class:`course_lib.models.SentimentRNN`, unidirectional GRU, max-and-mean pooling) are trained on the
same small balanced subset of labelled training reviews for the same number of epochs (the same steps, the same
examples): one from random weights, one starting from the language model's embedding and GRU. Each keeps its
best epoch by validation accuracy (:func:`course_lib.train.fit`); test accuracy is measured once, on a fixed
balanced subset of the test split, for the page's final figure. The language model's own steps are recorded
separately.

    python benchmarks/bench_pretrain.py --out book/results/imdb_pretrain/pretrain.json

The record holds the settings, the language model's loss curve, each run's validation history and accuracy,
the test accuracies, and the provenance (commit, date, torch, threads, load average before and after).
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

import numpy as np
import torch

from course_lib import pretrain
from course_lib.imdb import fit_val_split, load_imdb
from course_lib.models import ModelConfig, SentimentRNN, count_parameters
from course_lib.train import TrainConfig, evaluate, fit


def commit() -> tuple[str, bool]:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "course_lib", "benchmarks"],
                                    capture_output=True, text=True, check=True).stdout.strip())
        return head, dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab-size", type=int, default=10_000)
    ap.add_argument("--embed-dim", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lm-outputs", type=int, default=2000, help="the LM predicts the most frequent ids only")
    ap.add_argument("--lm-steps", type=int, default=600)
    ap.add_argument("--lm-batch", type=int, default=32)
    ap.add_argument("--lm-seq-len", type=int, default=32)
    ap.add_argument("--lm-lr", type=float, default=3e-3)
    ap.add_argument("--lm-eval-reviews", type=int, default=100, help="validation reviews whose text scores the LM")
    ap.add_argument("--unsup-limit", type=int, default=None, help="unlabelled reviews for the LM (all: None)")
    ap.add_argument("--labels", type=int, default=1000, help="labelled training reviews for fine-tuning")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-len", type=int, default=200)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--val-reviews", type=int, default=500, help="validation reviews used (all: 2500)")
    ap.add_argument("--test-reviews", type=int, default=1000, help="balanced test subset for the final figure")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    t_start = time.perf_counter()

    data = load_imdb(vocab_size=args.vocab_size)
    fit_part, val = fit_val_split(data.train, None, 0.1, seed=0)  # the course's split: 22,500 / 2,500
    val = pretrain.label_subset(val, args.val_reviews, seed=0) if args.val_reviews < len(val) else val
    test = pretrain.label_subset(data.test, args.test_reviews, seed=0)

    # 1. the language model, on the training part's text only
    unsup = pretrain.unlabelled_reviews(data.root, data.vocab, args.unsup_limit)  # [] without train/unsup
    stream = pretrain.lm_stream(fit_part.seqs + unsup)
    held_out = pretrain.lm_stream(val.seqs[: args.lm_eval_reviews])
    lm_cfg = pretrain.LMConfig(args.vocab_size, args.embed_dim, args.hidden, "gru", output_vocab=args.lm_outputs)
    torch.manual_seed(0)
    lm = pretrain.WordLM(lm_cfg)
    lm_loss_before = pretrain.evaluate_word_lm(lm, held_out)
    t0 = time.perf_counter()
    lm_hist = pretrain.train_word_lm(lm, stream, steps=args.lm_steps, batch_size=args.lm_batch,
                                     seq_len=args.lm_seq_len, lr=args.lm_lr, seed=0, progress=False)
    lm_seconds = time.perf_counter() - t0
    lm_loss_after = pretrain.evaluate_word_lm(lm, held_out)
    K = lm_cfg.n_outputs  # the word-frequency baseline over the same targets
    predicted = stream[(stream >= 2) & (stream < K)]
    unigram = np.bincount(predicted, minlength=K) / len(predicted)
    held = held_out[(held_out >= 2) & (held_out < K)]
    unigram_loss = float(-np.mean(np.log(unigram[held] + 1e-12)))
    print(f"LM: {args.lm_steps} steps in {lm_seconds:.0f} s; held-out loss {lm_loss_before:.3f} -> "
          f"{lm_loss_after:.3f} nats/token (unigram {unigram_loss:.3f})", flush=True)

    # 2. the classifiers, from scratch and from the language model, at an equal budget
    model_cfg = ModelConfig(args.vocab_size, args.embed_dim, args.hidden, "gru", pooling="max_mean",
                            dropout=args.dropout, emb_dropout=args.dropout)
    runs = []
    for seed in args.seeds:
        labelled = pretrain.label_subset(fit_part, args.labels, seed=seed)
        for arm in ("scratch", "pretrained"):
            torch.manual_seed(seed)
            model = SentimentRNN(model_cfg)
            if arm == "pretrained":
                pretrain.transfer(lm, model)
            cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, max_len=args.max_len,
                              seed=seed)
            t0 = time.perf_counter()
            hist = fit(model, labelled, val, cfg, device="cpu", progress=False)
            seconds = time.perf_counter() - t0
            test_acc = evaluate(model, test, 256, args.max_len)["accuracy"]
            steps = args.epochs * -(-len(labelled) // args.batch_size)
            runs.append({"arm": arm, "seed": seed, "steps": steps, "examples": args.epochs * len(labelled),
                         "val_accuracy": hist["best_value"], "best_epoch": hist["best_epoch"],
                         "history": {k: hist[k] for k in ("train_loss", "train_accuracy", "val_loss",
                                                          "val_accuracy", "seconds")},
                         "test_accuracy": test_acc, "seconds": seconds})
            print(f"seed {seed} {arm:10}: val {hist['best_value']:.4f} (epoch {hist['best_epoch']}), "
                  f"test {test_acc:.4f}, {seconds:.0f} s", flush=True)

    head, dirty = commit()
    record = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "data": {"fit_reviews": len(fit_part), "val_reviews": len(val), "test_reviews": len(test),
                 "unsup_reviews": len(unsup), "lm_tokens_in_text": int(len(stream)),
                 "lm_tokens_read": lm_hist["tokens"],
                 "lm_held_out_tokens": int(len(held_out))},
        "lm": {"config": lm_cfg.to_dict(), "steps": args.lm_steps, "seconds": lm_seconds,
               "loss": lm_hist["loss"], "held_out_loss_before": lm_loss_before,
               "held_out_loss_after": lm_loss_after, "unigram_loss": unigram_loss},
        "classifier": {"config": model_cfg.to_dict(), "parameters": count_parameters(SentimentRNN(model_cfg))},
        "runs": runs,
        "provenance": {"commit": head, "dirty": dirty, "date": datetime.datetime.now(datetime.UTC).isoformat(),
                       "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "cpu_count": os.cpu_count(), "platform": platform.platform(),
                       "loadavg_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
                       "seconds": time.perf_counter() - t_start},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
