"""benchmarks/bench_seq2seq.py on a small made-up corpus: what its result file says it evaluated.

The script reads the pinned Tatoeba file; here ``spa_eng.load_pairs`` is replaced by a reader of a few hundred
made-up pairs (no pinned hash), so the test needs no data and trains for a fraction of a second.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from course_lib import spa_eng

ROOT = Path(__file__).resolve().parents[1]
WORDS = [("red", "rojo"), ("big", "grande"), ("old", "viejo"), ("new", "nuevo"), ("small", "pequeño")]
NOUNS = [("dog", "perro"), ("house", "casa"), ("car", "coche"), ("book", "libro"), ("cat", "gato"), ("tree", "árbol")]


@pytest.fixture
def bench(tmp_path, monkeypatch):
    lines = [f"the {n} is {a} number {k}.\tel {m} es {b} número {k}." for k in range(12)
             for n, m in NOUNS for a, b in WORDS]
    (tmp_path / "spa.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(spa_eng, "load_pairs", lambda **_: spa_eng.read_pairs(tmp_path / "spa.txt"))
    monkeypatch.setenv("RNN_COURSE_CACHE_DIR", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location("bench_seq2seq", ROOT / "benchmarks" / "bench_seq2seq.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(bench, tmp_path, *extra):
    out = tmp_path / "out.json"
    tiny = ["--emb", "8", "--hidden", "8", "--attn", "8", "--out-size", "8", "--epochs", "1", "--batch-size", "32",
            "--no-val-loss", "--quiet", "--tgt-vocab", "60"]
    bench.main(["run", "--only", "attention", *tiny, *extra, "--out", str(out)])
    return json.loads(out.read_text())


def test_a_validation_probe_is_labelled_as_one_and_never_filed_as_test(bench, tmp_path):
    result = run(bench, tmp_path, "--eval-split", "val", "--beam", "2", "--beam-subset", "5")
    (r,) = result["runs"]
    assert "test" not in r
    subsets = [(e["beam"], e["subset"], e["n"]) for e in r["evaluations"]]
    assert subsets == [(1, "val", result["data"]["val"]), (1, "5 evenly spaced val pairs", 5),
                       (2, "5 evenly spaced val pairs", 5)]


def test_the_final_run_evaluates_the_whole_test_split(bench, tmp_path):
    result = run(bench, tmp_path, "--beam", "1")
    (r,) = result["runs"]
    assert [(e["beam"], e["subset"], e["n"]) for e in r["evaluations"]] == [(1, "test", result["data"]["test"])]
    assert result["data"]["test"] > 0 and r["epochs_done"] == 1


def test_combine_refuses_runs_made_on_other_data(bench, tmp_path):
    a = run(bench, tmp_path, "--beam", "1")
    b = dict(a, data=dict(a["data"], max_len=a["data"]["max_len"] + 1))
    for name, part in (("a.json", a), ("b.json", b)):
        (tmp_path / name).write_text(json.dumps(part))
    with pytest.raises(SystemExit, match="different data settings"):
        bench.main(["combine", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "c.json")])
    assert not (tmp_path / "c.json").exists()


def test_the_transformer_goes_through_the_same_entry_point_and_record(bench, tmp_path):
    result = run(bench, tmp_path, "--only", "transformer", "--width", "8", "--heads", "2", "--ff", "16",
                 "--layers", "1", "--beam", "2", "--beam-subset", "4")
    (r,) = result["runs"]
    assert r["name"] == "transformer" and r["architecture"] == "transformer"
    assert r["model_config"]["width"] == 8 and r["model_config"]["encoder_layers"] == 1
    assert [(e["beam"], e["subset"]) for e in r["evaluations"]] == [
        (1, "test"), (1, "4 evenly spaced test pairs"), (2, "4 evenly spaced test pairs")]
    assert all(0 <= e["sacrebleu"] <= 100 for e in r["evaluations"])


def check_maps(bench, run_record):
    maps = run_record["maps"]
    assert [m["sentence"] for m in maps] == [en for en, _ in bench.MAP_SENTENCES]
    for m in maps:
        weights = np.array(m["weights"])
        assert weights.shape == (len(m["output"]), len(m["source"]))
        assert m["source"][-1] == "<eos>" and m["output"][-1] == "<eos>"
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-3)  # rows are distributions (rounded)
        assert m["hints"] and m["in_corpus"] is False
    return maps


@pytest.mark.parametrize("model", ["attention", "transformer"])
def test_maps_record_the_attention_of_each_output_step_over_the_source(bench, tmp_path, model):
    result = run(bench, tmp_path, "--only", model, "--beam", "1", "--maps", *TINY_TRANSFORMER)
    (r,) = result["runs"]
    check_maps(bench, r)
    assert r["maps_of"] == bench.MAPS_OF[model]


def test_a_model_without_attention_records_no_maps(bench, tmp_path):
    (r,) = run(bench, tmp_path, "--only", "none", "--beam", "1", "--maps")["runs"]
    assert "maps" not in r


def test_maps_added_to_a_record_from_its_checkpoint_equal_those_of_eval_only(bench, tmp_path):
    result = run(bench, tmp_path, "--beam", "1")
    record = tmp_path / "record.json"
    record.write_text(json.dumps(result))
    bench.main(["maps", str(record)])
    added = json.loads(record.read_text())
    (r,) = added["runs"]
    assert r["evaluations"] == result["runs"][0]["evaluations"]  # nothing evaluated again
    (again,) = run(bench, tmp_path, "--beam", "1", "--eval-only", "--maps")["runs"]
    assert check_maps(bench, r) == check_maps(bench, again)
    stale = dict(result, runs=[dict(result["runs"][0], train_seconds=result["runs"][0]["train_seconds"] + 1)])
    record.write_text(json.dumps(stale))
    with pytest.raises(SystemExit, match="not the one of this record's run"):
        bench.main(["maps", str(record)])


TINY_TRANSFORMER = ["--width", "8", "--heads", "2", "--ff", "16", "--layers", "1"]


def test_subword_runs_are_scored_on_words_and_keep_their_maps(bench, tmp_path, monkeypatch):
    scored = []
    monkeypatch.setattr(bench, "sacre", lambda hyps, refs: scored.append(hyps) or 0.0)
    result = run(bench, tmp_path, "--only", "transformer", "--beam", "1", "--maps", "--subwords", "40",
                 "--label-smoothing", "0.1", "--schedule", "linear", "--warmup", "2", *TINY_TRANSFORMER)
    (r,) = result["runs"]
    assert result["data"]["subwords"] == 40
    # the made-up test pairs' words are all in the training words: nothing unknown either way
    assert result["data"]["test_words_outside_word_vocab"] == 0.0 and result["data"]["test_unk_share"] == 0.0
    words = run(bench, tmp_path, "--beam", "1", "--tgt-vocab", "20")["data"]  # a vocabulary too small
    assert words["test_unk_share"] == words["test_words_outside_word_vocab"] > 0
    assert r["train_config"]["schedule"] == "linear" and r["train_config"]["label_smoothing"] == 0.1
    assert scored and all(not w.endswith("@@") for hyps in scored for h in hyps for w in h)  # pieces joined
    maps = check_maps(bench, r)
    # the model read pieces: words unseen in this corpus ("have", "live") come in several
    assert all(len(m["source"]) > len(spa_eng.tokenize(m["sentence"])) + 1 for m in maps)
    record = tmp_path / "record.json"
    record.write_text(json.dumps(result))
    bench.main(["maps", str(record)])  # the maps command prepares the same pieces from the record's settings
    assert json.loads(record.read_text())["runs"][0]["maps"] == r["maps"]
