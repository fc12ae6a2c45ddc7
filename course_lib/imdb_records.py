r"""Result records of IMDb runs: a few kilobytes of JSON per run, committed under ``book/results/imdb/``.

:func:`make_record` turns a run's results (``results.json`` of :func:`course_lib.imdb_runs.train_run`, NBSVM's, an
ensemble's or a hybrid's) into a record: accuracies, training time, configuration, commit, machine, torch
version, date and :func:`code_hash`, with nothing derived from the reviews' text. ``benchmarks/bench_imdb.py``
writes them (:func:`write_record`); the IMDb chapter reads them (:func:`read_records`), which marks a record
*stale* when the code that produced it has changed since.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

from .imdb import _atomic_write

# The modules whose code decides what a run of each kind computes (data, tokenizer, model and training loop, or the
# baseline). A record whose code hash differs from the current one was produced by other code and is shown as stale.
# Neither this module nor course_lib.imdb_runs (presets, orchestration, the command line) is hashed: a run's full
# configuration is in its record. A run whose model (or one of whose members) has bigram inputs also depends on
# course_lib.bigrams; its record lists the modules it was hashed over, so that adding such a model leaves the others
# fresh.
CODE_MODULES = {"recurrent": ("imdb", "text", "models", "train"), "nbsvm": ("imdb", "text", "bow"),
                "ensemble": ("imdb", "text", "models", "train"), "hybrid": ("imdb", "text", "models", "train", "bow")}
RECORDS_DIR = Path(__file__).resolve().parents[1] / "book" / "results" / "imdb"
RECORD_VERSION = 1


def run_modules(kind: str, model_configs=()) -> tuple[str, ...]:
    """The modules behind a run of ``kind`` whose model configurations (its own, or its members') are given:
    :data:`CODE_MODULES`, then ``bigrams`` for a model with bigram inputs, then ``imdb_split`` (the validation
    cut) for every kind but NBSVM, whose held-out part :mod:`course_lib.bow` cuts. Records written before the
    cut could follow movies list no ``imdb_split`` and stay fresh: without the archive's URL lists its cut is the
    random one they used."""
    if kind not in CODE_MODULES:
        raise ValueError(f"kind must be one of {sorted(CODE_MODULES)}, not {kind!r}")
    bigrams = ("bigrams",) if any(has_bigrams(c) for c in model_configs) else ()
    return CODE_MODULES[kind] + bigrams + (() if kind == "nbsvm" else ("imdb_split",))


def device_tag(device: str) -> str:
    """The suffix of the record names of runs on ``device``: "" on the CPU, "_cuda" for "cuda" or "cuda:1"."""
    kind = device.split(":")[0]
    return "" if kind == "cpu" else f"_{kind}"


def has_bigrams(model_config: dict) -> bool:
    """Whether a run's model configuration has bigram inputs (as :func:`course_lib.bigrams.build_model` reads it)."""
    return "bigram_dim" in model_config


def code_hash(kind: str = "recurrent", package_dir: str | os.PathLike | None = None,
              modules: tuple[str, ...] | None = None) -> str:
    """SHA-256 (first 16 hex digits) of the source of ``modules`` (default: those behind runs of ``kind``,
    :data:`CODE_MODULES`), line endings normalised."""
    if kind not in CODE_MODULES:
        raise ValueError(f"kind must be one of {sorted(CODE_MODULES)}, not {kind!r}")
    folder = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in modules or CODE_MODULES[kind]:
        digest.update(f"{name}.py\0".encode())
        digest.update((folder / f"{name}.py").read_bytes().replace(b"\r\n", b"\n"))
    return digest.hexdigest()[:16]


def provenance(kind: str = "recurrent", modules: tuple[str, ...] | None = None) -> dict:
    """What produced a run, taken when it starts: the git commit, whether ``modules`` (default: those behind
    ``kind``) had uncommitted changes (None for both outside a git checkout), their names and :func:`code_hash`."""
    modules = tuple(modules or CODE_MODULES[kind])
    return {**_commit(modules), "modules": list(modules), "code_hash": code_hash(kind, modules=modules)}


def _commit(modules: tuple[str, ...]) -> dict:
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10,
                             check=True).stdout.strip()
        paths = [f"course_lib/{n}.py" for n in modules]
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=root, capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip() != ""
        return {"commit": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _machine_record(device: str) -> dict:
    import torch

    m = {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
         "threads": torch.get_num_threads(), "device": device, "python": platform.python_version()}
    if device.startswith("cuda") and torch.cuda.is_available():
        m["gpu"] = torch.cuda.get_device_name(0)
    return m


def make_record(results: dict, kind: str, device: str = "cpu", loadavg: tuple | None = None,
                origin: dict | None = None) -> dict:
    """A small JSON-ready record of one run's results (``results.json`` of :func:`train_run`, NBSVM's or an
    ensemble's): accuracies, times, configuration and provenance. Nothing derived from the reviews' text.

    Args:
        results: the run's results dictionary.
        kind: ``"recurrent"``, ``"nbsvm"``, ``"ensemble"`` or ``"hybrid"``.
        device: where it trained (``"cpu"``, ``"cuda"``).
        loadavg: the 1-minute load average at the start and at the end of the run.
        origin: :func:`provenance` taken when the run started (default: taken now).
    """
    import torch

    if kind not in CODE_MODULES:
        raise ValueError(f"kind must be one of {sorted(CODE_MODULES)}, not {kind!r}")
    if "test" not in results:
        raise ValueError(f"the run {results.get('name')!r} has no test result; a record needs one")
    record = {"record_version": RECORD_VERSION, "name": results.get("name", kind), "kind": kind,
              "test": {k: results["test"][k] for k in ("accuracy", "n", "confusion")},
              "train_seconds": float(results["train_seconds"]), "val_split": val_split(results, kind)}
    if kind == "recurrent":
        h = results["history"]
        record.update(val_accuracy=max(h["val_accuracy"]), n_train=results["n_train"], n_val=results["n_val"],
                      parameters=results["parameters"], model_config=results["model_config"],
                      train_config=results["train_config"], data=results["data"],
                      history={k: h[k] for k in ("epoch", "train_loss", "train_accuracy", "val_loss",
                                                 "val_accuracy", "seconds", "best_epoch")})
    elif kind == "nbsvm":
        record.update(val_accuracy=max(results["val_accuracy"].values()), features=results["features"],
                      weight_decay=results["weight_decay"], val_accuracy_by_weight_decay=results["val_accuracy"])
    elif kind == "ensemble":
        record.update(val_accuracy=results["val_accuracy"], members=results["members"], n_val=results["n_val"],
                      budget_seconds=results["budget_seconds"])
    else:  # hybrid: a recurrent run and NBSVM, mixed with a weight chosen on validation
        record.update(val_accuracy=results["val_accuracy"], members=results["members"], n_val=results["n_val"],
                      weight=results["weight"])
    record["provenance"] = {**(origin or provenance(kind)), "torch": torch.__version__,
                            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                            "machine": _machine_record(device),
                            "loadavg_start_end": list(loadavg) if loadavg is not None else None}
    return record


def val_split(results: dict, kind: str) -> str:
    """How a run's validation reviews were cut: ``"by_movie"`` (whole movies, :mod:`course_lib.imdb_split`) or
    ``"random"``. NBSVM's held-out part is always random; a recurrent run says it in ``results["data"]``, an
    ensemble or hybrid in ``results["val_split"]`` (runs from before the choice existed: random)."""
    if kind == "nbsvm":
        return "random"
    if kind == "recurrent":
        return results["data"].get("val_split", "random")
    return results.get("val_split", "random")


def write_record(record: dict, records_dir: str | os.PathLike = RECORDS_DIR) -> Path:
    """Write ``<records_dir>/<name>.json`` atomically; return its path."""
    path = Path(records_dir) / f"{record['name']}.json"
    _atomic_write(path, lambda f: f.write((json.dumps(record, indent=1) + "\n").encode()))
    return path


def read_records(records_dir: str | os.PathLike = RECORDS_DIR) -> dict[str, dict]:
    """The committed result records by name, each with ``stale`` added: True when :func:`code_hash` of the
    modules the run was hashed over (its ``provenance["modules"]``, else those of its kind) differs from the one
    it recorded: the code that produces its results has changed since."""
    records = {}
    for path in sorted(Path(records_dir).glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("record_version") != RECORD_VERSION:
            raise ValueError(f"{path}: record version {record.get('record_version')}, expected {RECORD_VERSION}")
        modules = tuple(record["provenance"].get("modules") or CODE_MODULES[record["kind"]])
        record["stale"] = record["provenance"]["code_hash"] != code_hash(record["kind"], modules=modules)
        records[record["name"]] = record
    return records
