"""benchmarks/bench_seq2seq.py on a small made-up corpus: what its result file says it evaluated.

The script reads the pinned Tatoeba file; here ``spa_eng.load_pairs`` is replaced by a reader of a few hundred
made-up pairs (no pinned hash), so the test needs no data and trains for a fraction of a second.
"""

import importlib.util
import json
from pathlib import Path

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
