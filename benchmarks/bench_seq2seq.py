"""English to Spanish translation on the official test split: attention vs none vs a Transformer, greedy vs beam.

Trains a :class:`course_lib.seq2seq.Seq2Seq` with attention and one without (and, with ``--only transformer``, a
:class:`course_lib.transformer.TransformerSeq2Seq` through the same loop and decoders), each for the same wall-clock
budget (default 15 minutes of training, evaluation excluded), on the training part of the fixed split of
``course_lib.spa_eng``, then translates the whole test split with greedy decoding and with beam search and
prints BLEU beside the goals (issue 28: the best model at least 35 sacreBLEU on the whole test split after 15
minutes on 2 cores, aim for 40; records made before hold the goals of their time). Two BLEU figures are printed
for each: ``bleu`` (``course_lib.seq2seq.corpus_bleu`` on our tokens) and ``sacrebleu`` (sacrebleu's default, on
the detokenised output against the raw Spanish references, case-sensitive: the comparable figure).

Timings depend on what else runs on the machine: the load average is recorded before and after each run, in
the result file with the commit, date, machine, torch version and configuration (no text of the data).

    python benchmarks/bench_seq2seq.py download                 # fetch and verify the corpus into the cache
    python benchmarks/bench_seq2seq.py run --minutes 15 --beam-subset 500 --out book/results/seq2seq/full.json
    python benchmarks/bench_seq2seq.py run --minutes 2 --only attention --eval-split val   # a probe
    python benchmarks/bench_seq2seq.py run --resume ...         # continue runs stopped part-way
    python benchmarks/bench_seq2seq.py combine a.json b.json --out full.json   # runs made in two processes
    python benchmarks/bench_seq2seq.py maps book/results/seq2seq/attention_2t.json   # add attention maps
    python benchmarks/bench_seq2seq.py run --only transformer --threads 2 --subwords 8000 --label-smoothing 0.1 \
        --schedule linear --warmup 150 --lr 1.5e-3 --maps --out book/results/seq2seq/transformer_bpe_2t.json

Subword units (``--subwords N``: N byte-pair merges per language, :mod:`course_lib.subword`) replace the word
vocabularies; the record then says what share of the test references' words a word vocabulary of ``--tgt-vocab``
words would have left unknown, and what share of target tokens the run's own vocabulary writes ``<unk>``.
``--label-smoothing`` and ``--schedule linear`` (with ``--warmup`` batches) change only the training loss and
the learning rate (:class:`course_lib.seq2seq.TrainConfig`); BLEU is always computed on words.

Attention maps (``run --maps``, or the ``maps`` command on a record whose runs' checkpoints are still in the
cache): the models translate a few short sentences written for this benchmark (not from the corpus; Spanish
puts their words in another order than English: the adjective after its noun, the object pronoun before the
verb), greedily, and the record keeps each one's source tokens, output tokens and the weights over the source
of every output step (the GRU's additive attention; the Transformer's cross-attention in its last decoder
layer, averaged over its heads), with hints of which source word each reordered Spanish word translates.

Each process uses one thread by default: on 2 cores, two single-threaded processes (``--only attention`` and
``--only none``, run at the same time, then ``combine``) get more done than one process with two threads (the
attention model trained at 294 pairs/s on one thread and 366 pairs/s on two, on a quiet 2-core machine).

Checkpoints go to ``<cache>/runs/seq2seq-<name>/last.pt`` (``course_lib.imdb.cache_dir``).
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

from course_lib import seq2seq, spa_eng, subword, transformer
from course_lib.imdb import cache_dir

GOALS = {"minimum": 35.0, "aim": 40.0}  # sacreBLEU of the best model, whole test split
# Sentences written for the maps (not from Tatoeba), each with hints: an English word and the Spanish words that
# translate it, to find the step that wrote it (the page checks where that step's attention went).
MAP_SENTENCES = [
    ("I have a red car.", {"red": ["rojo", "roja"], "car": ["coche", "carro", "auto"]}),
    ("She has a big dog.", {"big": ["grande", "gran"], "dog": ["perro"]}),
    ("We live in a white house.", {"white": ["blanca", "blanco"], "house": ["casa"]}),
    ("I bought a new book.", {"new": ["nuevo", "nueva"], "book": ["libro"]}),
    ("I saw him yesterday.", {"him": ["lo", "Lo", "le", "Le"], "saw": ["vi", "Vi"]}),
]
EDGES = [1, 5, 8, 11, 15, 100]  # source length bins (English tokens, end mark excluded)


def load() -> float:
    return round(os.getloadavg()[0], 2)


def commit() -> str:
    try:
        root = Path(__file__).resolve().parents[1]
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def sacre(hyps: list[list[str]], refs: list[str]) -> float:
    import sacrebleu

    return sacrebleu.corpus_bleu([spa_eng.detokenize(h) for h in hyps], [refs]).score


def evaluate(model, data: spa_eng.PairDataset, prep: spa_eng.Prepared, beam: int, alpha: float,
             subset: str = "test") -> dict:
    t0 = time.perf_counter()
    translate = transformer.translate if isinstance(model, transformer.TransformerSeq2Seq) else seq2seq.translate
    hyps = [prep.words(h) for h in translate(model, data, prep.tgt_vocab, beam=beam, alpha=alpha)]
    seconds = time.perf_counter() - t0
    refs = [spa_eng.tokenize(r) for r in data.refs]
    lengths = [len(spa_eng.tokenize(s)) for s in data.src_text]  # in words, whatever the model's units
    score = seq2seq.corpus_bleu(hyps, refs)
    return {"beam": beam, "alpha": alpha, "subset": subset, "n": len(data), "bleu": score["bleu"], "bp": score["bp"],
            "precisions": score["precisions"], "sacrebleu": sacre(hyps, data.refs),
            "by_length": seq2seq.bleu_by_length(hyps, refs, lengths, EDGES), "seconds": seconds,
            "loadavg_after": load()}


def unknown_rates(pairs, prep: spa_eng.Prepared, word_vocab: int) -> dict:
    """Share of the test references' target tokens that the run's vocabulary writes ``<unk>``, and share of their
    words outside a vocabulary of the ``word_vocab`` most frequent training words (what subword units avoid)."""
    parts = spa_eng.split_pairs(pairs)
    words = spa_eng.Vocab.build((spa_eng.tokenize(es) for _, es in parts["train"]), max_size=word_vocab)
    test_words = [w for _, es in parts["test"] for w in spa_eng.tokenize(es)]
    ids = np.concatenate([t[1:-1] for t in prep.test.tgt])
    return {"test_unk_share": float(np.mean(ids == spa_eng.UNK_ID)),
            "test_words_outside_word_vocab": float(np.mean([w not in words.stoi for w in test_words])),
            "word_vocab": word_vocab}


def normalize(text: str) -> str:
    return " ".join(spa_eng.tokenize(text)).lower()


def attention_maps(model, prep: spa_eng.Prepared) -> list[dict]:
    """Greedy translations of :data:`MAP_SENTENCES` and, for each, the weights ``(output, source)`` of every
    output step over the source tokens (both lists end with ``<eos>``), rounded to 4 decimals."""
    is_transformer = isinstance(model, transformer.TransformerSeq2Seq)
    tokens = [(spa_eng.tokenize(en), []) for en, _ in MAP_SENTENCES]
    if prep.src_bpe is not None:  # the model reads (and writes) subword pieces
        tokens = [(prep.src_bpe.segment(s), t) for s, t in tokens]
    data = spa_eng.encode_pairs([(en, "") for en, _ in MAP_SENTENCES], prep.src_vocab, prep.tgt_vocab, tokens=tokens)
    hyps = (transformer.translate if is_transformer else seq2seq.translate)(model, data, prep.tgt_vocab, beam=1)
    corpus = {normalize(t) for part in (prep.train, prep.val, prep.test) for t in part.src_text}
    maps = []
    for (en, hints), src_ids, hyp in zip(MAP_SENTENCES, data.src, hyps, strict=True):
        out_ids = prep.tgt_vocab.encode(hyp)
        weights = (transformer.cross_attention_map(model, src_ids, out_ids) if is_transformer
                   else seq2seq.attention_map(model, src_ids, out_ids))
        maps.append({"sentence": en, "source": [prep.src_vocab.itos[i] for i in src_ids],
                     "output": [prep.tgt_vocab.itos[i] for i in out_ids],
                     "weights": np.round(weights, 4).tolist(), "hints": hints,
                     "in_corpus": normalize(en) in corpus})  # an English sentence of the data set?
    return maps


MAPS_OF = {"transformer": "cross-attention of the last decoder layer, averaged over its heads",
           "attention": "additive attention of the decoder"}


def build_model(name: str, prep: spa_eng.Prepared, args):
    """The model of run ``name``: the GRU encoder-decoder with or without attention, or the Transformer."""
    if name == "transformer":
        config = transformer.TransformerConfig(len(prep.src_vocab), len(prep.tgt_vocab), width=args.width,
                                               heads=args.heads, ff=args.ff, encoder_layers=args.layers,
                                               decoder_layers=args.layers, dropout=args.dropout)
        return transformer.TransformerSeq2Seq(config), config
    config = seq2seq.ModelConfig(len(prep.src_vocab), len(prep.tgt_vocab), emb=args.emb, hidden=args.hidden,
                                 attention=name == "attention", attn_size=args.attn, out_size=args.out_size,
                                 bidirectional=not args.unidirectional, dropout=args.rnn_dropout)
    return seq2seq.Seq2Seq(config), config


def run_one(name: str, prep: spa_eng.Prepared, args) -> dict:
    torch.manual_seed(args.seed)
    model, config = build_model(name, prep, args)
    attention = name != "none"
    train_config = seq2seq.TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                       seed=args.seed, max_seconds=args.minutes * 60,
                                       label_smoothing=args.label_smoothing, schedule=args.schedule,
                                       warmup=args.warmup)
    ckpt = cache_dir() / "runs" / f"seq2seq-{name}"
    before = load()
    if args.eval_only:  # evaluate the model of an earlier run (its checkpoint), without training further
        state = seq2seq.load_checkpoint(ckpt / "last.pt")
        model.load_state_dict(state["model"])
        history = state["history"]
        before = state["extra"].get("loadavg_before", before)
    else:
        history = seq2seq.train(model, prep.train, train_config, val=None, checkpoint_dir=ckpt,
                                resume=args.resume, progress=not args.quiet, extra={"loadavg_before": before})
    after_train = load()
    result = {"name": name, "attention": attention, "architecture": "transformer" if name == "transformer" else "gru",
              "model_config": config.to_dict(),
              "train_config": train_config.to_dict(), "parameters": sum(p.numel() for p in model.parameters()),
              "train_seconds": history["seconds"], "epochs_done": history["epoch"][-1] if history["epoch"] else 0,
              "train_loss": history["train_loss"][-1] if history["train_loss"] else None,
              "loss_curve": {"epoch": history["epoch"], "train_loss": history["train_loss"]},
              "val_loss": None if args.no_val_loss else seq2seq.evaluate_loss(model, prep.val),
              "loadavg_before": before, "loadavg_after_training": after_train, "evaluations": []}
    split = prep.val if args.eval_split == "val" else prep.test
    jobs = [(1, split, args.eval_split)]
    if args.beam > 1:
        if args.beam_subset:  # beam search on evenly spaced pairs of the split only (and greedy beside
            # it); the file is sorted by length, so evenly spaced pairs span every length
            idx = np.unique(np.linspace(0, len(split) - 1, min(args.beam_subset, len(split))).astype(int))
            part = split.subset(idx)
            label = f"{len(part)} evenly spaced {args.eval_split} pairs"
            jobs += [(1, part, label), (args.beam, part, label)]
        else:
            jobs.append((args.beam, split, args.eval_split))
    for beam, data, label in jobs:
        result["evaluations"].append(evaluate(model, data, prep, beam, args.alpha, label))
        line = result["evaluations"][-1]
        print(f"{name}: beam {beam} on {label} ({len(data)}): BLEU {line['bleu']:.2f} "
              f"(sacrebleu {line['sacrebleu']:.2f}), {line['seconds']:.0f} s to translate, "
              f"load {line['loadavg_after']}", flush=True)
    if args.maps and name in MAPS_OF:
        result["maps"], result["maps_of"] = attention_maps(model, prep), MAPS_OF[name]
        print_maps(name, result["maps"])
    return result


def print_maps(name: str, maps: list[dict]) -> None:
    for m in maps:
        pairs = zip(m["output"], m["weights"], strict=True)
        words = subword.BPE.join(m["output"][:-1])
        print(f"{name}: {m['sentence']!r} -> {spa_eng.detokenize(words)!r}; most attended: "
              + ", ".join(f"{o}:{m['source'][int(np.argmax(w))]}" for o, w in pairs))


def add_maps(path: Path) -> None:
    """Add attention maps to the runs of the record ``path`` from their checkpoints (which must be the
    checkpoints of those very runs: same training time and passes), without evaluating again."""
    record = json.loads(path.read_text())
    data = record["data"]
    pairs = spa_eng.load_pairs(download=True)
    prep = spa_eng.prepare(pairs, tgt_max_size=data["tgt_vocab"], max_len=data["max_len"],
                           subwords=data.get("subwords") or None)
    if (len(prep.src_vocab), len(prep.tgt_vocab)) != (data["src_vocab"], data["tgt_vocab"]):
        raise SystemExit("the data prepared now differ from the record's (vocabulary sizes)")
    for run in record["runs"]:
        if run["name"] not in MAPS_OF:
            continue
        state = seq2seq.load_checkpoint(cache_dir() / "runs" / f"seq2seq-{run['name']}" / "last.pt")
        history = state["history"]
        if (abs(history["seconds"] - run["train_seconds"]) > 1e-6
                or (history["epoch"][-1] if history["epoch"] else 0) != run["epochs_done"]):
            raise SystemExit(f"the checkpoint of {run['name']} is not the one of this record's run")
        if run["name"] == "transformer":
            model = transformer.TransformerSeq2Seq(transformer.TransformerConfig.from_dict(state["model_config"]))
        else:
            model = seq2seq.Seq2Seq(seq2seq.ModelConfig.from_dict(state["model_config"]))
        model.load_state_dict(state["model"])
        run["maps"], run["maps_of"] = attention_maps(model, prep), MAPS_OF[run["name"]]
        run["maps_provenance"] = {"commit": commit(), "date": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"), "from": "the run's checkpoint"}
        print_maps(run["name"], run["maps"])
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("download", help="download and verify spa.txt into the cache")
    run = sub.add_parser("run", help="train and evaluate; print the figures; write a result file")
    run.add_argument("--minutes", type=float, default=15.0, help="training budget of each model")
    run.add_argument("--only", choices=["attention", "none", "transformer"],
                     help="train only one model (by default the two GRU models, with and without attention)")
    run.add_argument("--width", type=int, default=256, help="Transformer: model width")
    run.add_argument("--heads", type=int, default=4, help="Transformer: attention heads")
    run.add_argument("--ff", type=int, default=1024, help="Transformer: feed-forward width")
    run.add_argument("--layers", type=int, default=3, help="Transformer: encoder and decoder layers (each)")
    run.add_argument("--dropout", type=float, default=0.1, help="Transformer: dropout")
    run.add_argument("--rnn-dropout", type=float, default=0.0, help="GRU models: dropout")
    run.add_argument("--tgt-vocab", type=int, default=8000, help="target vocabulary size (specials included)")
    run.add_argument("--max-len", type=int, default=20, help="leave out training pairs longer than this")
    run.add_argument("--emb", type=int, default=128)
    run.add_argument("--hidden", type=int, default=256)
    run.add_argument("--attn", type=int, default=128)
    run.add_argument("--out-size", type=int, default=256)
    run.add_argument("--unidirectional", action="store_true")
    run.add_argument("--batch-size", type=int, default=128)
    run.add_argument("--lr", type=float, default=3e-3)
    run.add_argument("--epochs", type=int, default=20)
    run.add_argument("--label-smoothing", type=float, default=0.0)
    run.add_argument("--schedule", choices=["constant", "linear"], default="constant",
                     help="learning rate: constant, or falling linearly to 0 at the end of the budget")
    run.add_argument("--warmup", type=int, default=0, help="batches of linear learning-rate warm-up")
    run.add_argument("--subwords", type=int, default=0,
                     help="byte-pair merges per language (course_lib.subword); 0: words, --tgt-vocab of them")
    run.add_argument("--beam", type=int, default=5)
    run.add_argument("--alpha", type=float, default=1.0)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--subset", type=int, help="use only this many training pairs (probes)")
    run.add_argument("--resume", action="store_true")
    run.add_argument("--eval-only", action="store_true", help="evaluate the checkpoints of an earlier run")
    run.add_argument("--beam-subset", type=int, default=0,
                     help="run beam search on N evenly spaced pairs of the split only (greedy on them too)")
    run.add_argument("--no-val-loss", action="store_true")
    run.add_argument("--eval-split", choices=["test", "val"], default="test",
                     help="translate the validation split instead (probes and tuning: the test split is read "
                          "once, for the final figure)")
    run.add_argument("--quiet", action="store_true")
    run.add_argument("--maps", action="store_true",
                     help="also record attention maps of the models with attention on MAP_SENTENCES")
    run.add_argument("--out", type=Path, help="write the results as JSON here")
    maps = sub.add_parser("maps", help="add attention maps to a record's runs, from their checkpoints")
    maps.add_argument("record", type=Path)
    maps.add_argument("--threads", type=int, default=1)
    combine = sub.add_parser("combine", help="merge the result files of runs made separately")
    combine.add_argument("files", nargs="+", type=Path)
    combine.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "combine":
        parts = [json.loads(f.read_text()) for f in args.files]
        merged = dict(parts[0], runs=[r for p in parts for r in p["runs"]])
        merged["provenance"] = dict(parts[0]["provenance"], processes=[p["provenance"] for p in parts])
        if any(p["data"] != parts[0]["data"] for p in parts):
            raise SystemExit("the runs used different data settings")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(merged, indent=1) + "\n")
        print(f"wrote {args.out}: runs {[r['name'] for r in merged['runs']]}")
        return
    if args.command == "maps":
        torch.set_num_threads(args.threads)
        add_maps(args.record)
        return
    if args.command == "download":
        print(spa_eng.download())
        return
    torch.set_num_threads(args.threads)
    pairs = spa_eng.load_pairs(download=True)
    prep = spa_eng.prepare(pairs, tgt_max_size=args.tgt_vocab, max_len=args.max_len, subwords=args.subwords or None)
    if args.subset:
        prep.train = prep.train.subset(range(min(args.subset, len(prep.train))))
    print(f"{len(prep.train):,} training pairs, {len(prep.val):,} validation, {len(prep.test):,} test; "
          f"vocabularies: {len(prep.src_vocab):,} English, {len(prep.tgt_vocab):,} Spanish; load {load()}",
          flush=True)
    results = {"provenance": {"commit": commit(), "date": datetime.datetime.now(datetime.UTC).isoformat(
                   timespec="seconds"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                   "platform": platform.platform(), "python": sys.version.split()[0], "torch": torch.__version__,
                   "threads": args.threads, "loadavg_start": load(), "argv": sys.argv[1:]},
               "data": {"train": len(prep.train), "val": len(prep.val), "test": len(prep.test),
                        "src_vocab": len(prep.src_vocab), "tgt_vocab": len(prep.tgt_vocab), "max_len": args.max_len,
                        "subwords": args.subwords, "edges": EDGES, **unknown_rates(pairs, prep, args.tgt_vocab)},
               "goals": GOALS, "runs": []}
    for name in (("attention", "none") if not args.only else (args.only,)):
        results["runs"].append(run_one(name, prep, args))
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\ngoals: test sacreBLEU of the best model >= {GOALS['minimum']:.0f} (aim {GOALS['aim']:.0f})")
    for r in results["runs"]:
        for t in r["evaluations"]:
            print(f"{r['name']:>10}  beam {t['beam']} on {t['subset']}: BLEU {t['bleu']:5.2f}  "
                  f"sacrebleu {t['sacrebleu']:5.2f}  "
                  f"({r['train_seconds'] / 60:.1f} min training, {r['epochs_done']:.2f} epochs, "
                  f"load {r['loadavg_before']} -> {r['loadavg_after_training']}); by source length: "
                  + ", ".join(f"{b['lo']}-{b['hi'] - 1}: {b['bleu'] if b['bleu'] is None else round(b['bleu'], 1)}"
                              for b in t["by_length"]))


if __name__ == "__main__":
    main()
