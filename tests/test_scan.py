"""course_lib.scan: the parallel scan against the loop, its backward against numerical gradients and autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import scan as sc
from course_lib.gradcheck import numerical_gradient, rel_error


def coefficients(seed=0, N=2, T=7, H=3):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 1.0, (N, T, H)), rng.standard_normal((N, T, H)), rng.standard_normal((N, H))


@pytest.mark.parametrize("T", [1, 2, 3, 7, 8, 64, 100])
def test_scan_equals_the_loop_to_rounding(T):
    a, b, h0 = coefficients(T=T)
    for start in (None, h0):
        loop = sc.linear_recurrence_loop(a, b, start)
        np.testing.assert_allclose(sc.parallel_scan(a, b, start), loop, rtol=1e-13, atol=1e-14)


def test_scan_takes_log_rounds():
    assert [sc.scan_rounds(T) for T in (1, 2, 3, 8, 9, 1000)] == [0, 1, 2, 3, 4, 10]


def test_scan_does_not_change_its_inputs():
    a, b, h0 = coefficients(1)
    copies = a.copy(), b.copy(), h0.copy()
    sc.parallel_scan(a, b, h0)
    for x, y in zip((a, b, h0), copies, strict=True):
        np.testing.assert_array_equal(x, y)


def test_linear_recurrence_backward_matches_numerical():
    a, b, h0 = coefficients(2, T=6)
    dh = np.random.default_rng(3).standard_normal(b.shape)
    h = sc.linear_recurrence_loop(a, b, h0)
    da, db, dh0 = sc.linear_recurrence_backward(dh, a, h, h0)
    for x, g in ((a, da), (b, db), (h0, dh0)):
        num = numerical_gradient(lambda: sc.linear_recurrence_loop(a, b, h0), x, dh)
        assert rel_error(g, num) < 1e-8


def params(D=4, H=3, seed=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((D, H)), rng.standard_normal(H), rng.standard_normal((D, H)), rng.standard_normal(H)


def test_min_gru_scan_equals_loop_and_backward_matches_numerical():
    rng = np.random.default_rng(5)
    x, h0 = rng.standard_normal((2, 6, 4)), rng.standard_normal((2, 3))
    Wz, bz, Wh, bh = p = params()
    h, cache = sc.min_gru_forward(x, h0, *p)
    np.testing.assert_allclose(h, sc.min_gru_forward(x, h0, *p, scan=False)[0], rtol=1e-13, atol=1e-14)
    dh = rng.standard_normal(h.shape)
    grads = sc.min_gru_backward(dh, cache)
    for value, g in zip((x, h0, Wz, bz, Wh, bh), grads, strict=True):
        num = numerical_gradient(lambda: sc.min_gru_forward(x, h0, Wz, bz, Wh, bh)[0], value, dh)
        assert rel_error(g, num) < 1e-7


@pytest.mark.parametrize("scan", [True, False])
def test_torch_min_gru_matches_numpy(scan):
    torch.manual_seed(0)
    module = sc.MinGRU(4, 3, scan=scan).double()
    Wz = module.gates.weight[:3].detach().numpy().T
    Wh = module.gates.weight[3:].detach().numpy().T
    bz, bh = module.gates.bias[:3].detach().numpy(), module.gates.bias[3:].detach().numpy()
    rng = np.random.default_rng(6)
    x, h0 = rng.standard_normal((2, 9, 4)), rng.standard_normal((2, 3))
    tx, th0 = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    out = module(tx, th0)
    h, cache = sc.min_gru_forward(x, h0, Wz, bz, Wh, bh)
    np.testing.assert_allclose(out.detach().numpy(), h, rtol=1e-12, atol=1e-13)
    dh = rng.standard_normal(h.shape)
    out.backward(torch.tensor(dh))
    dx, dh0, dWz, dbz, dWh, dbh = sc.min_gru_backward(dh, cache)
    np.testing.assert_allclose(tx.grad.numpy(), dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(th0.grad.numpy(), dh0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(module.gates.weight.grad.numpy(), np.concatenate([dWz.T, dWh.T]), rtol=1e-10,
                               atol=1e-12)


def test_gradient_through_a_diagonal_recurrence_is_the_product_of_its_coefficients():
    """d h_T / d h_0 = prod_t a_t per unit, through 1,000 steps: no matrix, no mixing of units."""
    rng = np.random.default_rng(7)
    T = 1000
    a = rng.uniform(0.995, 1.0, (1, T, 3))
    b = rng.standard_normal((1, T, 3))
    h = sc.parallel_scan(a, b, np.zeros((1, 3)))
    dh = np.zeros_like(h)
    dh[:, -1] = 1.0
    _, _, dh0 = sc.linear_recurrence_backward(dh, a, h, np.zeros((1, 3)))
    np.testing.assert_allclose(dh0[0], np.prod(a[0], axis=0), rtol=1e-10)


def test_the_timing_benchmark_records_every_model_and_length(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scan.py"
    spec = importlib.util.spec_from_file_location("bench_scan", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "t.json"
    bench.main(["--lengths", "8", "16", "--batch", "2", "--inputs", "4", "--hidden", "8", "--heads", "2",
                "--repeats", "1", "--threads", "1", "--out", str(out)])
    record = json.loads(out.read_text())
    assert set(record["torch_seconds"]) == {"8", "16"}
    assert set(record["torch_seconds"]["8"]) == {"gru", "mingru_loop", "mingru_scan", "transformer_layer"}
    assert all(s > 0 for row in record["torch_seconds"].values() for s in row.values())
    assert record["provenance"]["loadavg_start"] >= 0


def test_linear_attention_as_a_recurrence_equals_its_parallel_form():
    rng = np.random.default_rng(8)
    q, k, v = rng.standard_normal((2, 9, 3)), rng.standard_normal((2, 9, 3)), rng.standard_normal((2, 9, 4))
    np.testing.assert_allclose(sc.linear_attention_recurrent(q, k, v), sc.linear_attention_parallel(q, k, v),
                               rtol=1e-12, atol=1e-13)
    changed = v.copy()
    changed[:, 5:] += 3.0  # causal: later values change nothing before them
    np.testing.assert_array_equal(sc.linear_attention_parallel(q, k, changed)[:, :5],
                                  sc.linear_attention_parallel(q, k, v)[:, :5])
