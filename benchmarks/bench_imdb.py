"""The course's IMDb results on the official 25,000-review test split, with the training time of each model.

Trains (or, unless ``--fresh``, reuses from an earlier run of this script) the configurations of
``course_lib.imdb_runs.PRESETS`` through the same code as ``python -m course_lib.imdb train``, plus the
NBSVM-style bag-of-words baseline of ``course_lib.bow``, and prints one table beside the published figures.
Every run writes ``results.json`` (and the recurrent ones ``best.pt``, ``last.pt``, ``test_predictions.npz``)
into ``<runs-dir>/<name>`` (default ``<cache>/runs``), and a *result record* of a few kilobytes (accuracies,
training time, configuration, commit, code hash, machine, torch version, load average, date; no checkpoint and
nothing derived from the reviews' text) into ``book/results/imdb/<name>.json``: commit those, and the book's
IMDb chapter shows them with their provenance, marked stale when the code has changed since.

Hyperparameters were chosen on the validation split (10% of the training reviews); the test split is used
once per run, for the final figure. Training times depend on the machine and on what else runs on it: the
script prints the load average before and after each run.

    python benchmarks/bench_imdb.py                      # everything, 2 CPU threads
    python benchmarks/bench_imdb.py --only bilstm --fresh  # retrain one
    python benchmarks/bench_imdb.py --only bigru_800 --device cuda  # on a GPU (recorded in the record)
    python benchmarks/bench_imdb.py --batching           # padded vs packed vs bucketed LSTM batches

Without ``--only`` (or with ``--combine``), it also averages the probabilities of groups of two or three
recurrent runs and reports the group with the best validation accuracy among those trained in 15 minutes or
less in all (``<runs-dir>/ensemble/results.json``) and, when that is another group or none, the best group with
no time limit (``<runs-dir>/ensemble_nolimit/results.json``: what averaging can give at all). It mixes the best
recurrent run with the NBSVM baseline fitted on the same training part, the weight chosen on validation
(``<runs-dir>/hybrid/results.json``; Mesnil et al. 2014 combine a recurrent model with NBSVM the same way).
A run on another device than the CPU writes its record under its own name (``bigru_wide_cuda.json`` beside
``bigru_wide.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from course_lib import bow, imdb, imdb_records, imdb_runs
from course_lib.text import tokenize

PUBLISHED = [("NBSVM-bi (Wang and Manning, 2012)", 0.912), ("Maas et al. (2011), full model", 0.8889)]


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"


def goal(text: str, reached: bool) -> str:
    """A goal of issue 14, with whether this run reached it (training times depend on the load printed above)."""
    return f"goal: {text}: {'REACHED' if reached else 'not reached'}"


def load1() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def run_nbsvm(run: Path, progress: bool) -> dict:
    train, test = imdb.load_reviews("train", progress=progress), imdb.load_reviews("test", progress=progress)
    before = load()
    t0 = time.perf_counter()
    train_tokens = [tokenize(t) for t in train.texts]
    test_tokens = [tokenize(t) for t in test.texts]
    results = bow.train_nbsvm(train_tokens, train.labels, test_tokens, test.labels, keep_held_out=True)
    tokenizing = time.perf_counter() - t0 - results["train_seconds"]
    results["train_seconds"] += tokenizing  # tokenizing included
    held_out = results.pop("held_out")
    held_out["seconds"] += tokenizing
    results["machine_start"] = {"loadavg": before, "threads": torch.get_num_threads()}
    results["machine_end"] = {"loadavg": load()}
    probs = results.pop("probs")
    results.pop("model")
    run.mkdir(parents=True, exist_ok=True)
    np.savez(run / "test_predictions.npz", probs=probs, labels=test.labels)
    np.savez(run / "held_out.npz", **held_out, val_labels=train.labels[held_out["val_idx"]])
    (run / "results.json").write_text(json.dumps(results, indent=1))
    return results


def run_hybrid(runs: Path, name: str) -> dict:
    """The recurrent run ``name`` mixed with the NBSVM baseline fitted on the same training part (the run's
    validation reviews held out of both): the weight is chosen on validation, the test split read once."""
    nb = np.load(runs / "nbsvm" / "held_out.npz")
    res = json.loads((runs / name / "results.json").read_text())
    d, seed = res["data"], res["train_config"]["seed"]
    if d["train_limit"] is not None:
        raise ValueError(f"{name} was trained on part of the training split; a hybrid needs all of it")
    # train_run's validation cut (imdb.fit_val_split) and train_nbsvm's, from the same seed and fraction
    perm = np.random.default_rng(seed).permutation(len(nb["val_idx"]) + res["n_train"])
    if not np.array_equal(np.sort(perm[: res["n_val"]]), nb["val_idx"]):
        raise ValueError(f"{name} and the NBSVM run held out different validation reviews")
    rnn_val, y_val = imdb_runs.val_probabilities(runs / name)
    if not np.array_equal(y_val, nb["val_labels"]):
        raise ValueError(f"{name}'s validation labels differ from the NBSVM run's")
    weight, val_accuracy = bow.best_mixture(rnn_val, nb["val_probs"], y_val)
    test = np.load(runs / name / "test_predictions.npz")
    return {"name": "hybrid", "members": [name, "nbsvm"], "weight": weight, "val_accuracy": val_accuracy,
            "val_split": "random",
            "n_val": len(y_val), "train_seconds": res["train_seconds"] + float(nb["seconds"]),
            "test": imdb_runs.score_predictions(weight * test["probs"] + (1 - weight) * nb["test_probs"],
                                                test["labels"])}


def save_combined(results: dict, kind: str, runs: Path, args, tag: str, name: str | None = None) -> None:
    """Write a combination's (``ensemble`` or ``hybrid``) results.json into ``<runs>/<name>`` (default: its kind)
    and, unless ``--no-records``, its record under the same name."""
    name = name or kind
    (runs / name).mkdir(exist_ok=True)
    (runs / name / "results.json").write_text(json.dumps(results, indent=1))
    if not args.no_records:
        configs = [json.loads((runs / m / "results.json").read_text())["model_config"]
                   for m in results["members"] if m != "nbsvm"]
        origin = imdb_records.provenance(kind, imdb_records.run_modules(kind, configs))
        record = imdb_records.make_record({**results, "name": name + tag}, kind, args.device, origin=origin)
        print(f"record: {imdb_records.write_record(record, args.records_dir)}")


def batching(threads: int) -> None:
    """One LSTM batch (N=64, T=400, E=H=64) forward+backward: padded vs packed, and bucketing's padding saving."""
    from course_lib.models import ModelConfig, SentimentRNN

    torch.manual_seed(0)
    lengths = torch.randint(50, 401, (64,))
    lengths[0] = 400
    tokens = torch.randint(2, 1000, (64, 400))
    for packed in (False, True):
        model = SentimentRNN(ModelConfig(vocab_size=1000, embed_dim=64, hidden_size=64, cell="lstm", packed=packed))
        times = []
        for _ in range(6):
            t0 = time.perf_counter()
            model(tokens, lengths).sum().backward()
            times.append(time.perf_counter() - t0)
        print(f"LSTM batch N=64 T=400 E=H=64, {'packed' if packed else 'padded'}: {1000 * np.median(times[1:]):.0f} ms "
              f"(median of 5, {threads} threads, load {load()})")
    data = imdb.load_imdb(10_000)
    lens = np.minimum(data.train.lengths(), 400)
    from course_lib.text import bucket_batches

    for shuffle_only in (True, False):
        if shuffle_only:
            idx = np.split(np.random.default_rng(0).permutation(len(lens)), range(64, len(lens), 64))
        else:
            idx = bucket_batches(lens, 64, shuffle=True, seed=0)
        steps = sum(len(b) * lens[b].max() for b in idx)
        print(f"{'random' if shuffle_only else 'bucketed'} batches of 64: {steps / lens.sum():.3f} x the real tokens "
              "processed (1.000 = no padding)")


def probe(args) -> None:
    """Score a trained run on the probe sentences and add the answers to its record (``"probe"``): the record must
    describe that run (same test accuracy as the checkpoint's saved test predictions)."""
    runs = Path(args.runs_dir).expanduser() if args.runs_dir else imdb.cache_dir() / "runs"
    name = args.probe
    path = Path(args.records_dir) / f"{name}{imdb_records.device_tag(args.device)}.json"
    record = json.loads(path.read_text())
    answers = imdb_runs.probe_run(runs / name)
    if abs(answers["checkpoint_test_accuracy"] - record["test"]["accuracy"]) > 1e-9:
        raise SystemExit(f"{runs / name} scores {answers['checkpoint_test_accuracy']:.5f} on the test split, its "
                         f"record {path} {record['test']['accuracy']:.5f}: not the run of that record")
    answers["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    record["probe"] = answers
    imdb_records.write_record(record, args.records_dir)
    by_group: dict[str, list[int]] = {}
    for s in answers["sentences"]:
        by_group.setdefault(s["group"], []).append(int((s["p_positive"] > 0.5) == s["label"]))
        print(f"{s['group']:<9} {s['label']} {s['p_positive']:.3f}  {s['text']}")
    print("correct: " + ", ".join(f"{g} {sum(v)}/{len(v)}" for g, v in by_group.items()))
    print(f"record: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of nbsvm,{','.join(imdb_runs.PRESETS)}")
    parser.add_argument("--fresh", action="store_true", help="retrain even if results exist")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--runs-dir", help="default <cache>/runs")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--batching", action="store_true", help="only the padded-vs-packed timing")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--records-dir", default=str(imdb_records.RECORDS_DIR),
                        help="where result records go (default book/results/imdb)")
    parser.add_argument("--no-records", action="store_true", help="write no result records")
    parser.add_argument("--no-time-budget", action="store_true",
                        help="train every epoch of the preset, whatever the wall-clock time (on a loaded machine a "
                             "preset's max_seconds would cut epochs that a quiet one completes)")
    parser.add_argument("--combine", action="store_true",
                        help="with --only: also the ensemble and the NBSVM hybrid of the runs named (always without)")
    parser.add_argument("--probe", metavar="RUN",
                        help="only score the trained run RUN (its best.pt in the runs dir) on the negation and "
                             "contrast sentences of course_lib.imdb_runs.PROBE, and write the answers into its record")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.probe:
        probe(args)
        return
    if args.batching:
        batching(args.threads)
        return
    runs = Path(args.runs_dir).expanduser() if args.runs_dir else imdb.cache_dir() / "runs"
    # a record of a run on another device is its own row: bigru_wide_cuda beside bigru_wide
    tag = imdb_records.device_tag(args.device)
    names = args.only.split(",") if args.only else ["nbsvm", *imdb_runs.PRESETS]
    rows, results = [], {}
    for name in names:
        path = runs / name / "results.json"
        stale = True
        if path.exists() and not args.fresh:
            old = json.loads(path.read_text())
            stale = "test" not in old or (name == "nbsvm" and not (runs / name / "held_out.npz").exists())
            if name != "nbsvm":  # reuse a run only if it was trained with the preset's current settings
                p = imdb_runs.PRESETS[name]
                stale = stale or any(old["model_config"][k] != v for k, v in p["model"].items()) or any(
                    old["train_config"][k] != v for k, v in p["train"].items())
        if stale:
            print(f"--- training {name} ({args.threads} threads, load average {load()})", flush=True)
            start_load = load1()
            kind = "nbsvm" if name == "nbsvm" else "recurrent"
            configs = [] if name == "nbsvm" else [imdb_runs.PRESETS[name]["model"]]
            origin = imdb_records.provenance(kind, imdb_records.run_modules(kind, configs))
            if name == "nbsvm":
                res = run_nbsvm(runs / name, not args.quiet)
            else:
                p = imdb_runs.PRESETS[name]
                train = {**p["train"], "max_seconds": None} if args.no_time_budget else p["train"]
                res = imdb_runs.train_run(name, p["model"], train, vocab_size=p["vocab_size"], runs_dir=runs,
                                          progress=not args.quiet, device=args.device)
            if not args.no_records:
                record = imdb_records.make_record({**res, "name": name + ("" if name == "nbsvm" else tag)}, kind,
                                               "cpu" if name == "nbsvm" else args.device, (start_load, load1()), origin)
                print(f"record: {imdb_records.write_record(record, args.records_dir)}")
        res = json.loads(path.read_text())
        results[name] = res
        epochs = res.get("history", {}).get("seconds", [])
        rows.append((name, res["test"]["accuracy"], res["train_seconds"], epochs,
                     res.get("machine_start", {}).get("loadavg"), res.get("machine_end", {}).get("loadavg")))
    print(f"\nIMDb test split (25,000 reviews); results in {runs}")
    print(f"{'model':<14} {'val acc':>8} {'test acc':>8} {'train s':>8} {'epochs':>6} {'s/epoch':>8}  "
          "load avg start/end")
    for name, acc, seconds, epochs, l0, l1 in rows:
        val = results[name].get("history", {}).get("val_accuracy")
        val = f"{max(val):8.4f}" if val else f"{max(results[name]['val_accuracy'].values()):8.4f}"
        per = f"{np.mean(epochs):8.0f}" if epochs else f"{'-':>8}"
        l0 = l0[0] if isinstance(l0, list) else l0
        l1 = l1[0] if isinstance(l1, list) else l1
        print(f"{name:<14} {val} {acc:8.4f} {seconds:8.0f} {len(epochs) or '-':>6} {per}  {l0}/{l1}")
    for name, acc in PUBLISHED:
        print(f"{name:<40} {acc:.4f} (published)")
    best_name = imdb_runs.best_recurrent(results)
    if best_name:
        best = dict((r[0], r) for r in rows)[best_name]
        val = max(results[best_name]["history"]["val_accuracy"])
        print(f"best recurrent model (chosen by validation accuracy {val:.4f}): {best_name}, test {best[1]:.4f} "
              f"in {best[2] / 60:.1f} min of training, {best[1] / 0.912:.3f} x NBSVM-bi's 0.912")
        print(goal("a single recurrent model >= 0.900 within 15 min", best[1] >= 0.90 and best[2] <= 900))
        if "nbsvm" in results:
            nb = results["nbsvm"]["test"]["accuracy"]
            print(goal(f"aim: a recurrent model above the course's NBSVM ({nb:.4f})", best[1] > nb))
    if args.only and not args.combine:
        return
    # Averaging the probabilities of a few recurrent runs: the group is chosen on validation accuracy among the
    # groups whose training times sum to at most the goal's 15 minutes; the test split is read for that group only.
    members = [n for n in results if n in imdb_runs.PRESETS and not n.startswith("seed")]
    ensemble = imdb_runs.best_ensemble(runs, members, budget_seconds=15 * 60)
    if ensemble:
        save_combined(ensemble, "ensemble", runs, args, tag)
        print(f"best ensemble within 15 min of training (chosen by validation accuracy {ensemble['val_accuracy']:.4f}):"
              f" mean of {', '.join(ensemble['members'])}: test {ensemble['test']['accuracy']:.4f} after "
              f"{ensemble['train_seconds'] / 60:.1f} min of training in all")
        print(goal("an ensemble of recurrent models >= 0.913 within 15 min in all",
                   ensemble["test"]["accuracy"] >= 0.913 and ensemble["train_seconds"] <= 900))
    else:
        times = ", ".join(f"{n} {results[n]['train_seconds'] / 60:.1f}" for n in members)
        print(f"no group of two or more recurrent runs was trained within 15 min in all (minutes: {times})")
        print(goal("an ensemble of recurrent models >= 0.913 within 15 min in all", False))
    # The same choice with no time limit: what averaging these models can give at all (not a goal figure).
    unlimited = imdb_runs.best_ensemble(runs, members, budget_seconds=None) if len(members) > 1 else None
    if unlimited and (not ensemble or unlimited["members"] != ensemble["members"]):
        save_combined(unlimited, "ensemble", runs, args, tag, name="ensemble_nolimit")
        top = max(unlimited["members"], key=lambda m: max(results[m]["history"]["val_accuracy"]))
        print(f"best ensemble with no time limit (validation {unlimited['val_accuracy']:.4f}): mean of "
              f"{', '.join(unlimited['members'])}: test {unlimited['test']['accuracy']:.4f} "
              f"({unlimited['test']['accuracy'] - results[top]['test']['accuracy']:+.4f} against {top}, its member "
              "of best validation accuracy) after "
              f"{unlimited['train_seconds'] / 60:.1f} min of training in all")

    # The best recurrent run mixed with the bag of words fitted on the same reviews (Mesnil et al. 2014 combine
    # a recurrent language model with NBSVM): its own row, not an ensemble of recurrent models.
    if results.get(best_name, {}).get("data", {}).get("val_split", "random") != "random":
        print(f"no hybrid: {best_name} was validated on whole movies, the NBSVM run on a random cut")
    elif best_name and "nbsvm" in results and results[best_name]["data"]["train_limit"] is None:
        hybrid = run_hybrid(runs, best_name)
        save_combined(hybrid, "hybrid", runs, args, tag)
        print(f"hybrid of {best_name} and NBSVM (weight {hybrid['weight']:.2f} on the recurrent model, chosen by "
              f"validation accuracy {hybrid['val_accuracy']:.4f}): test {hybrid['test']['accuracy']:.4f} after "
              f"{hybrid['train_seconds'] / 60:.1f} min of training in all")


if __name__ == "__main__":
    main()
