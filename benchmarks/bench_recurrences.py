"""Quality at an equal budget: a GRU, a minGRU trained with the parallel scan, and a small causal Transformer.

The task is the character model of the charlm chapter: predict the next character of IMDb reviews, measured in
bits per character on held-out reviews (the test split's, never read in training). Why this task and not the
copy task with distractors of the gradients chapter: the copy task's accuracy is close to all or nothing (a model
either finds the one long-range dependency or stays at chance), and a Transformer whose context covers the lag
solves it by looking back directly, so at an equal budget it would mostly measure the context length we chose.
Bits per character are graded, on real text with both short dependencies (spelling) and long ones (a name
repeated, a quote closed), the course's own data; a small difference in quality is visible, and so is the
trade-off between speed (steps done in the budget) and quality per step.

All three read the same chunks (:func:`course_lib.charlm.tbptt_batches`: ``--batch`` streams of ``--context``
characters), embed characters into ``--width`` features, and read out logits with a linear layer:

* ``gru``: ``torch.nn.GRU`` with ``--layers`` layers; its last state is carried from chunk to chunk (truncated
  backpropagation through time), as the charlm chapter does;
* ``mingru``: ``--layers`` blocks of ``x + minGRU(LayerNorm(x))`` then ``x + MLP(LayerNorm(x))`` (the shape of
  Feng et al.'s language model), each minGRU a :func:`course_lib.scan.MinGRU` computed with the parallel scan,
  its states carried from chunk to chunk;
* ``transformer``: ``--layers`` pre-norm causal ``torch.nn.TransformerEncoderLayer`` s with sinusoidal positions;
  no state: it sees the ``--context`` characters of its window only.

Each model trains for the same wall-clock seconds (``--seconds``, the time of the training steps only: data
slicing and evaluation excluded) with Adam, gradient clipping, a short warm-up and a cosine decay of the learning
rate over the *time* budget (so every model ends its schedule when its time is up). The steps each made are
recorded beside the quality, with the held-out bits per character every ``--eval-every`` seconds of training on
a slice of the held-out text, and at the end on all of it. Held-out scoring: the recurrent models read each held-out
stream from its start, carrying their state; the Transformer reads windows of ``--context`` characters that move
by half a window, each character scored once with at least half a window before it.

    python benchmarks/bench_recurrences.py --threads 2 --out book/results/after_attention/recurrences.json

Timings depend on what else runs on the machine: the load average is recorded before and after every run, with
the commit, date, machine, torch version, threads and command line (no text of the data).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from course_lib import charlm, scan
from course_lib.attention import sinusoidal_positions

MODELS = ("gru", "mingru", "transformer")


def load() -> float:
    return round(os.getloadavg()[0], 2)


def commit() -> str:
    try:
        root = Path(__file__).resolve().parents[1]
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ----------------------------------------------------------------------------------------------------------
# The three models
# ----------------------------------------------------------------------------------------------------------
class MinGRUBlock(nn.Module):
    """``x + minGRU(LayerNorm(x))``, then ``x + MLP(LayerNorm(x))``: ``(N, T, E) -> (N, T, E)`` and the last
    state ``(N, E)``."""

    def __init__(self, width: int, ff: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.rnn = scan.MinGRU(width, width, scan=True)
        self.mlp = nn.Sequential(nn.Linear(width, ff), nn.GELU(), nn.Linear(ff, width))

    def forward(self, x, h0=None):
        h = self.rnn(self.norm1(x), h0)  # (N, T, E)
        x = x + h
        return x + self.mlp(self.norm2(x)), h[:, -1]


class CharModel(nn.Module):
    """Embedding, then a GRU, minGRU blocks or Transformer layers, then logits: ``(ids (N, T), state) -> logits
    (N, T, V), state`` (the Transformer's state is always None)."""

    def __init__(self, kind: str, vocab: int, width: int, layers: int, ff: int, heads: int, context: int):
        super().__init__()
        self.kind = kind
        self.embed = nn.Embedding(vocab, width)
        if kind == "gru":
            self.core = nn.GRU(width, width, layers, batch_first=True)
        elif kind == "mingru":
            self.core = nn.ModuleList(MinGRUBlock(width, ff) for _ in range(layers))
        elif kind == "transformer":
            layer = nn.TransformerEncoderLayer(width, heads, ff, dropout=0.0, batch_first=True, norm_first=True)
            self.core = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            positions = torch.tensor(sinusoidal_positions(context, width), dtype=torch.float32)
            self.register_buffer("positions", positions, persistent=False)  # (context, E)
        else:
            raise ValueError(f"kind must be one of {MODELS}, got {kind!r}")
        self.norm = nn.Identity() if kind == "gru" else nn.LayerNorm(width)
        self.out = nn.Linear(width, vocab)

    def forward(self, ids, state=None):
        x = self.embed(ids)  # (N, T, E)
        if self.kind == "gru":
            h, last = self.core(x, state)
            return self.out(h), last
        if self.kind == "mingru":
            last = []
            for k, block in enumerate(self.core):
                x, h = block(x, None if state is None else state[k])
                last.append(h)
            return self.out(self.norm(x)), torch.stack(last)  # state (layers, N, E)
        T = ids.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=ids.device), diagonal=1)  # True: hidden
        h = self.core(x + self.positions[:T], mask=causal, is_causal=True)
        return self.out(self.norm(h)), None


# ----------------------------------------------------------------------------------------------------------
# Held-out bits per character
# ----------------------------------------------------------------------------------------------------------
@torch.no_grad()
def bits_per_char(model: CharModel, streams: np.ndarray, context: int) -> float:
    """Mean bits per character over every character of ``streams (S, P)`` but each stream's first.

    Recurrent models read each stream from its start in pieces of ``context``, carrying their state; the
    Transformer reads windows of ``context`` moving by ``context // 2``, scoring each character once (after the
    first window, the second half of each window: at least half a window of context before every character).
    """
    model.eval()
    X = torch.from_numpy(streams)
    P = X.shape[1]
    total, state, done, start = 0.0, None, 0, 0  # done: characters 1..done of each stream are scored
    while done < P - 1:
        end = min(start + context, P - 1)
        logits, state = model(X[:, start:end], state)
        skip = done - start  # 0 for the recurrent models and the first window
        total += nn.functional.cross_entropy(logits[:, skip:].reshape(-1, logits.shape[-1]),
                                             X[:, done + 1:end + 1].reshape(-1), reduction="sum").item()
        done = end
        start = end if model.kind != "transformer" else start + max(1, context // 2)
    model.train()
    return total / (X.shape[0] * (P - 1)) / math.log(2)


def as_streams(ids: np.ndarray, n: int) -> np.ndarray:
    """``ids`` cut into ``n`` equal contiguous streams ``(n, len(ids) // n)`` (the remainder left out)."""
    P = len(ids) // n
    return np.ascontiguousarray(ids[: n * P].reshape(n, P))


# ----------------------------------------------------------------------------------------------------------
# Training for a time budget
# ----------------------------------------------------------------------------------------------------------
def train_one(kind: str, ids: np.ndarray, val: np.ndarray, val_slice: np.ndarray, vocab: int, seed: int,
              args) -> dict:
    torch.manual_seed(seed)
    model = CharModel(kind, vocab, args.width, args.layers, args.ff, args.heads, args.context)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    batches = charlm.tbptt_batches(ids, args.batch, args.context, seed=seed)
    before = load()
    elapsed, step, state, recent, curve = 0.0, 0, None, [], []
    next_eval = 0.0
    while elapsed < args.seconds and (args.max_steps is None or step < args.max_steps):
        if elapsed >= next_eval:  # a point of the curve (not counted in the budget)
            curve.append({"seconds": round(elapsed, 2), "step": step,
                          "train_bpc": float(np.mean(recent)) / math.log(2) if recent else None,
                          "heldout_bpc": bits_per_char(model, val_slice, args.context)})
            recent, next_eval = [], next_eval + args.eval_every
        x, y, reset = next(batches)
        t0 = time.perf_counter()
        warm = min(1.0, (step + 1) / args.warmup)
        decay = 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, elapsed / args.seconds)))  # 1 -> 0.1 over the budget
        for group in optimizer.param_groups:
            group["lr"] = args.lr * warm * decay
        logits, new_state = model(torch.from_numpy(x), None if reset else state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), torch.from_numpy(y).reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        state = None if new_state is None else new_state.detach()
        elapsed += time.perf_counter() - t0
        step += 1
        recent.append(loss.item())
    after_train = load()
    final = bits_per_char(model, val, args.context)
    curve.append({"seconds": round(elapsed, 2), "step": step,
                  "train_bpc": float(np.mean(recent)) / math.log(2) if recent else None, "heldout_bpc": final})
    return {"model": kind, "seed": seed, "parameters": sum(p.numel() for p in model.parameters()),
            "steps": step, "train_seconds": elapsed, "steps_per_second": step / max(elapsed, 1e-9),
            "characters_seen": step * args.batch * args.context, "heldout_bpc": final, "curve": curve,
            "loadavg_before": before, "loadavg_after_training": after_train, "loadavg_after": load()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--seconds", type=float, default=240.0, help="training time of each model")
    parser.add_argument("--max-steps", type=int, help="also stop after this many steps (tests, equal-step runs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--train-reviews", type=int, default=1000, help="per label, from the train split")
    parser.add_argument("--heldout-reviews", type=int, default=50, help="per label, from the test split")
    parser.add_argument("--heldout-streams", type=int, default=16)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--ff", type=int, default=512, help="minGRU's MLP and the Transformer's feed-forward")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--context", type=int, default=128, help="characters per chunk (the Transformer's window)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=100, help="steps of linear warm-up")
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--eval-every", type=float, default=30.0, help="seconds of training between curve points")
    parser.add_argument("--curve-chars", type=int, default=32768, help="held-out characters of each curve point")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = load()
    train_text = "\n".join(charlm.read_reviews(n_per_label=args.train_reviews, split="train", download=True))
    held_text = "\n".join(charlm.read_reviews(n_per_label=args.heldout_reviews, split="test", download=True))
    vocab = charlm.CharVocab.build(train_text)
    kept = "".join(c for c in held_text if c in vocab.index)  # characters never seen in training are left out
    ids, held = vocab.encode(train_text), vocab.encode(kept)
    val = as_streams(held, args.heldout_streams)
    val_slice = val[:, : max(2, args.curve_chars // args.heldout_streams)]
    counts = np.bincount(ids, minlength=len(vocab)) + 1.0  # add-one: every character has a probability
    unigram = float(-np.mean(np.log2(counts[val[:, 1:]] / counts.sum())))
    result = {"provenance": {"commit": commit(), "date": datetime.datetime.now(datetime.UTC).isoformat(
                  timespec="seconds"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "platform": platform.platform(), "python": sys.version.split()[0], "torch": torch.__version__,
                  "threads": args.threads, "loadavg_start": started, "argv": sys.argv[1:] if argv is None else argv},
              "data": {"train_reviews": 2 * args.train_reviews, "train_chars": len(ids),
                       "heldout_reviews": 2 * args.heldout_reviews, "heldout_chars_scored": int(val.size - len(val)),
                       "heldout_chars_left_out": len(held_text) - len(kept), "vocab": len(vocab),
                       "unigram_bpc": unigram},
              "settings": {k: v for k, v in vars(args).items() if k not in ("out", "threads")}, "runs": []}
    print(f"{len(ids):,} training characters, {val.size:,} held-out, {len(vocab)} symbols; "
          f"character frequencies alone: {unigram:.3f} bits/char; {args.seconds:.0f} s per model, "
          f"{args.threads} threads; load {started}", flush=True)
    for seed in args.seeds:
        for kind in args.models:
            run = train_one(kind, ids, val, val_slice, len(vocab), seed, args)
            result["runs"].append(run)
            print(f"{kind:>12} seed {seed}: {run['heldout_bpc']:.3f} bits/char held out, {run['steps']:,} steps in "
                  f"{run['train_seconds']:.0f} s ({run['steps_per_second']:.1f}/s), {run['parameters']:,} parameters, "
                  f"load {run['loadavg_before']} -> {run['loadavg_after_training']}", flush=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(result, indent=1) + "\n")
    mean = {k: {f: float(np.mean([r[f] for r in result["runs"] if r["model"] == k])) for f in ("heldout_bpc", "steps")}
            for k in args.models}
    base = mean.get("gru")
    result["ratios"] = {k: {"bpc_vs_gru": v["heldout_bpc"] / base["heldout_bpc"],
                            "steps_vs_gru": v["steps"] / base["steps"]} for k, v in mean.items()} if base else {}
    result["provenance"]["loadavg_end"] = load()
    print(f"\n{'model':>12}  {'bits/char':>9}  {'steps':>8}  ratios to the GRU (bits/char, steps); mean over seeds")
    for k, v in mean.items():
        ratio = result["ratios"].get(k)
        cells = f"{ratio['bpc_vs_gru']:.3f}, {ratio['steps_vs_gru']:.2f}" if ratio else "-"
        print(f"{k:>12}  {v['heldout_bpc']:9.3f}  {v['steps']:8.0f}  {cells}")
    print(f"load {result['provenance']['loadavg_end']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
