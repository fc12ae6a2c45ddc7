"""benchmarks/bench_recurrences.py with tiny budgets on made-up reviews: the record's fields, and that every model ran.

``charlm.read_reviews`` is replaced by a generator of a few made-up reviews, so the test needs no data; the models are
a few units wide and train for a handful of steps. Timings are not checked (they are the benchmark's to print).
"""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import charlm

ROOT = Path(__file__).resolve().parents[1]
WORDS = "the film was good bad long short and but a plot actor story I liked it not".split()


def fake_reviews(n_per_label=1, split="train", **_):
    rng = np.random.default_rng(0 if split == "train" else 1)
    return [" ".join(rng.choice(WORDS, 60)) + "." for _ in range(2 * n_per_label)]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.setattr(charlm, "read_reviews", fake_reviews)
    spec = importlib.util.spec_from_file_location("bench_recurrences", ROOT / "benchmarks" / "bench_recurrences.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--width", "8", "--layers", "1", "--ff", "16", "--heads", "2", "--context", "16", "--batch", "4",
        "--train-reviews", "20", "--heldout-reviews", "4", "--heldout-streams", "4", "--curve-chars", "64",
        "--warmup", "2", "--threads", "1"]


def test_the_record_holds_each_model_with_its_steps_and_held_out_bits(bench, tmp_path):
    out = tmp_path / "rec.json"
    bench.main([*TINY, "--seconds", "60", "--max-steps", "6", "--eval-every", "0.0001", "--out", str(out)])
    record = json.loads(out.read_text())
    assert set(record["provenance"]) >= {"commit", "date", "machine", "torch", "threads", "loadavg_start",
                                         "loadavg_end", "argv"}
    assert record["provenance"]["threads"] == 1 and "--max-steps" in record["provenance"]["argv"]
    assert [r["model"] for r in record["runs"]] == ["gru", "mingru", "transformer"]
    for r in record["runs"]:
        assert r["steps"] == 6 and r["characters_seen"] == 6 * 4 * 16 and r["parameters"] > 0
        assert {"train_seconds", "steps_per_second", "loadavg_before", "loadavg_after"} <= set(r)
        assert 0 < r["heldout_bpc"] < 8 and r["curve"][-1]["heldout_bpc"] == r["heldout_bpc"]
        assert [p["step"] for p in r["curve"]][:2] == [0, 1]  # a curve point before every step here
        assert r["curve"][0]["heldout_bpc"] == pytest.approx(math.log2(record["data"]["vocab"]), rel=0.3)
    assert record["ratios"]["gru"] == {"bpc_vs_gru": 1.0, "steps_vs_gru": 1.0}
    assert set(record["ratios"]) == {"gru", "mingru", "transformer"}
    data = record["data"]
    assert data["train_reviews"] == 40 and data["heldout_chars_scored"] > 0 and data["unigram_bpc"] > 0
    assert "the film" not in out.read_text()  # no text of the data in the record


def test_the_time_budget_stops_training(bench, tmp_path):
    record = bench.main([*TINY, "--models", "mingru", "--seconds", "0.05", "--eval-every", "100"])
    (run,) = record["runs"]
    assert run["train_seconds"] >= 0.05 and run["steps"] >= 1 and len(run["curve"]) == 2


@pytest.mark.parametrize("kind", ["gru", "mingru", "transformer"])
def test_held_out_scoring_reads_every_character_but_the_first_once(bench, kind):
    """A model that puts all its probability on the true next character scores 0 bits; one uniform over V, log2 V."""
    torch.manual_seed(0)
    model = bench.CharModel(kind, 5, 8, 1, 16, 2, context=6)
    streams = np.random.default_rng(0).integers(0, 5, (3, 23))
    seen = []

    def forward(ids, state=None):
        seen.append(ids.shape[1])
        return torch.zeros(*ids.shape, 5), state

    model.forward = forward
    assert bench.bits_per_char(model, streams, context=6) == pytest.approx(math.log2(5))
    assert sum(seen) == 22 if kind != "transformer" else sum(seen) > 22
