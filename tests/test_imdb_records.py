"""Tests of course_lib.imdb_records (result records of IMDb runs): what they hold, and when they turn stale."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from course_lib import imdb, imdb_records, imdb_runs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One recurrent run on a synthetic dataset: its results dictionary and the dataset's folder."""
    base = tmp_path_factory.mktemp("runs")
    data = imdb.write_fake_dataset(base / "aclImdb", n_per_label=30, seed=5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = imdb_runs.train_run("tiny", {"cell": "gru", "embed_dim": 8, "hidden_size": 8},
                                      {"epochs": 2, "batch_size": 16, "lr": 0.01}, vocab_size=60,
                                      val_fraction=0.25, data_dir=data, cache=base / "cache",
                                      runs_dir=base / "runs", progress=False)
    finally:
        torch.set_num_threads(threads)
    return results, data


def test_code_hash_follows_the_modules_behind_each_kind_of_run(tmp_path):
    package = tmp_path / "course_lib"
    shutil.copytree(imdb_records.Path(imdb_records.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = {kind: imdb_records.code_hash(kind, package) for kind in imdb_records.CODE_MODULES}
    assert before == {kind: imdb_records.code_hash(kind) for kind in imdb_records.CODE_MODULES}
    with open(package / "models.py", "a") as f:
        f.write("\n# a change\n")
    after = {kind: imdb_records.code_hash(kind, package) for kind in imdb_records.CODE_MODULES}
    assert after["recurrent"] != before["recurrent"]  # the model changed: recurrent runs are stale
    assert after["nbsvm"] == before["nbsvm"]  # the baseline does not use models.py
    (package / "bow.py").write_text((package / "bow.py").read_text().replace("\n", "\r\n"))
    assert imdb_records.code_hash("nbsvm", package) == before["nbsvm"]  # line endings alone change nothing
    with pytest.raises(ValueError, match="kind must be one of"):
        imdb_records.code_hash("transformer")


def test_a_run_with_bigram_inputs_is_hashed_over_the_bigram_module_too(tiny_run, tmp_path):
    results, _ = tiny_run
    plain = {"cell": "gru"}
    bigram = {"cell": "gru", "bigram_dim": 4}
    assert imdb_records.run_modules("recurrent", [plain]) == (*imdb_records.CODE_MODULES["recurrent"], "imdb_split")
    assert imdb_records.run_modules("hybrid", [plain, bigram]) == (*imdb_records.CODE_MODULES["hybrid"], "bigrams",
                                                                   "imdb_split")
    assert imdb_records.run_modules("nbsvm") == imdb_records.CODE_MODULES["nbsvm"]  # bow cuts its own held-out part
    package = tmp_path / "course_lib"
    shutil.copytree(imdb_records.Path(imdb_records.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    modules = imdb_records.run_modules("recurrent", [bigram])
    before = imdb_records.code_hash("recurrent", package, modules)
    assert before != imdb_records.code_hash("recurrent", package)
    with open(package / "bigrams.py", "a") as f:
        f.write("\n# a change\n")
    assert imdb_records.code_hash("recurrent", package, modules) != before  # the bigram run turns stale ...
    assert imdb_records.code_hash("recurrent", package) == imdb_records.code_hash("recurrent")  # ... the others do not
    # a record from before the validation cut could follow movies lists no imdb_split: it stays fresh when that
    # module changes, a newer one does not
    newer = imdb_records.run_modules("recurrent", [plain])
    split_before = imdb_records.code_hash("recurrent", package, newer)
    with open(package / "imdb_split.py", "a") as f:
        f.write("\n# a change\n")
    assert imdb_records.code_hash("recurrent", package, newer) != split_before
    assert imdb_records.code_hash("recurrent", package) == imdb_records.code_hash("recurrent")
    # read_records hashes each record over the modules it lists
    for name, mods in [("plain", None), ("bigram", modules)]:
        origin = imdb_records.provenance("recurrent", mods)
        assert origin["modules"] == list(mods or imdb_records.CODE_MODULES["recurrent"])
        record = imdb_records.make_record({**results, "name": name}, "recurrent", origin=origin)
        imdb_records.write_record(record, tmp_path)
    records = imdb_records.read_records(tmp_path)
    assert not records["plain"]["stale"] and not records["bigram"]["stale"]
    record = json.loads((tmp_path / "bigram.json").read_text())
    record["provenance"]["code_hash"] = "0" * 16  # as if the bigram module had changed since the run
    (tmp_path / "bigram.json").write_text(json.dumps(record))
    assert imdb_records.read_records(tmp_path)["bigram"]["stale"] is True


def test_a_record_holds_results_and_provenance_and_no_review_text(tiny_run):
    results, data = tiny_run
    origin = imdb_records.provenance("recurrent")
    record = imdb_records.make_record(results, "recurrent", "cpu", (0.5, 0.7), origin)
    assert record["test"]["accuracy"] == results["test"]["accuracy"] and record["test"]["n"] == 60
    assert record["val_accuracy"] == max(results["history"]["val_accuracy"])
    assert record["train_seconds"] == pytest.approx(sum(results["history"]["seconds"]))
    assert record["model_config"]["cell"] == "gru" and record["train_config"]["epochs"] == 2
    prov = record["provenance"]
    assert prov["code_hash"] == imdb_records.code_hash("recurrent") and prov["torch"] == torch.__version__
    assert prov["loadavg_start_end"] == [0.5, 0.7] and prov["machine"]["device"] == "cpu"
    assert len(prov["commit"] or "") in (0, 40) and prov["date"].endswith("+00:00")
    assert record["val_split"] == results["data"]["val_split"] == "random"  # the fake data have no URL lists
    text = json.dumps(record)
    assert len(text) < 10_000
    words = {w.strip(".!").lower() for p in data.rglob("*.txt") for w in p.read_text().split()}
    assert not [w for w in words if len(w) > 3 and f'"{w}"' in text]  # no vocabulary, no review text
    with pytest.raises(ValueError, match="no test result"):
        imdb_records.make_record({k: v for k, v in results.items() if k != "test"}, "recurrent")
    with pytest.raises(ValueError, match="kind must be"):
        imdb_records.make_record(results, "svm")


def test_read_records_marks_a_record_stale_when_its_code_changed(tiny_run, tmp_path):
    results, _ = tiny_run
    record = imdb_records.make_record(results, "recurrent")
    imdb_records.write_record(record, tmp_path)
    old = {**record, "name": "old", "provenance": {**record["provenance"], "code_hash": "0" * 16}}
    imdb_records.write_record(old, tmp_path)
    records = imdb_records.read_records(tmp_path)
    assert sorted(records) == ["old", "tiny"]
    assert records["tiny"]["stale"] is False and records["old"]["stale"] is True
    (tmp_path / "future.json").write_text(json.dumps({**record, "name": "future", "record_version": 99}))
    with pytest.raises(ValueError, match="record version 99"):
        imdb_records.read_records(tmp_path)


def test_the_committed_records_are_small_complete_and_checked_for_staleness():
    paths = sorted(imdb_records.RECORDS_DIR.glob("*.json"))
    if not paths:
        pytest.skip(f"no result records in {imdb_records.RECORDS_DIR}: run benchmarks/bench_imdb.py and commit them")
    records = imdb_records.read_records()
    for path in paths:
        assert path.stat().st_size < 20_000, path
        r = records[path.stem]
        assert r["kind"] in imdb_records.CODE_MODULES and r["test"]["n"] == 25_000
        assert 0.5 < r["test"]["accuracy"] < 1 and 0.5 < r["val_accuracy"] < 1
        assert sum(map(sum, r["test"]["confusion"])) == 25_000
        assert {"commit", "code_hash", "torch", "date", "machine"} <= set(r["provenance"])
        modules = tuple(r["provenance"].get("modules") or imdb_records.CODE_MODULES[r["kind"]])
        assert set(imdb_records.CODE_MODULES[r["kind"]]) <= set(modules)
        assert r["stale"] == (r["provenance"]["code_hash"] != imdb_records.code_hash(r["kind"], modules=modules))


def test_a_hybrid_record_holds_its_members_and_weight(tiny_run):
    results, _ = tiny_run
    hybrid = {"name": "hybrid", "members": ["tiny", "nbsvm"], "weight": 0.35, "val_accuracy": 0.9, "n_val": 15,
              "train_seconds": 12.0, "test": results["test"]}
    record = imdb_records.make_record(hybrid, "hybrid")
    assert record["members"] == ["tiny", "nbsvm"] and record["weight"] == 0.35 and record["n_val"] == 15
    assert record["provenance"]["code_hash"] == imdb_records.code_hash("hybrid") != imdb_records.code_hash("recurrent")


def test_score_predictions_counts_the_confusion_matrix():
    res = imdb_runs.score_predictions(np.array([0.9, 0.2, 0.6, 0.4, 0.5]), np.array([1, 0, 0, 1, 0]))
    assert res == {"accuracy": 0.6, "n": 5, "confusion": [[2, 1], [1, 1]]}  # 0.5 is negative


def test_device_tag_names_the_records_of_runs_off_the_cpu():
    assert [imdb_records.device_tag(d) for d in ("cpu", "cuda", "cuda:1")] == ["", "_cuda", "_cuda"]


def test_every_record_says_how_its_validation_reviews_were_cut(tiny_run):
    results, _ = tiny_run
    assert imdb_records.val_split(results, "recurrent") == "random"
    by_movie = {**results, "data": {**results["data"], "val_split": "by_movie"}}
    assert imdb_records.make_record(by_movie, "recurrent")["val_split"] == "by_movie"
    old = {**results, "data": {k: v for k, v in results["data"].items() if k != "val_split"}}
    assert imdb_records.val_split(old, "recurrent") == "random"  # runs from before the choice existed
    assert imdb_records.val_split({"val_split": "by_movie"}, "ensemble") == "by_movie"
    assert imdb_records.val_split({"val_split": "by_movie"}, "nbsvm") == "random"
    for r in imdb_records.read_records().values():  # the committed ones
        assert r["val_split"] in ("by_movie", "random")


def test_the_probe_scores_a_run_on_the_course_sentences(tiny_run):
    results, data = tiny_run
    run = data.parent / "runs" / "tiny"
    answers = imdb_runs.probe_run(run)
    n = sum(len(group) for group in imdb_runs.PROBE.values())
    assert len(answers["sentences"]) == n and answers["checkpoint"] == "best.pt"
    assert answers["checkpoint_test_accuracy"] == results["test"]["accuracy"]
    first = answers["sentences"][0]
    assert first["group"] == "plain" and first["label"] == 1 and 0 < first["p_positive"] < 1
    assert first["read"][0] == "a" and "<unk>" in first["read"]  # the fake vocabulary lacks most of its words
