"""Time of one training step against sequence length: GRU, minGRU by loop and by parallel scan, a Transformer layer.

Each model maps ``(N, T, D)`` to ``(N, T, H)`` (a causal Transformer encoder layer of width H after a linear input
projection); one step is forward, a mean-square loss, backward. Printed per model and length: the median of
``--repeats`` timed steps (after a warm-up) and its ratio to the GRU's at the same length. Also the numpy scan
against the numpy loop (:mod:`course_lib.scan`), forward only. The scan does ``O(T log T)`` work in
``log2 T`` dependent rounds, the loop ``O(T)`` work in ``T`` dependent steps: on a machine with few cores the
scan's extra work can cost more than its fewer rounds save, so measure before believing either way.

    python benchmarks/bench_scan.py --threads 2 --out book/results/after_attention/scan_timing.json

Timings depend on what else runs: the load average is printed and recorded before and after.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from course_lib import scan


def load() -> float:
    return round(os.getloadavg()[0], 2)


def models(D: int, H: int, heads: int) -> dict[str, torch.nn.Module]:
    class Causal(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = torch.nn.Linear(D, H)
            self.layer = torch.nn.TransformerEncoderLayer(H, heads, 4 * H, dropout=0.0, batch_first=True,
                                                          norm_first=True)

        def forward(self, x):
            T = x.shape[1]
            mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
            return self.layer(self.inp(x), src_mask=mask, is_causal=True)

    class GRU(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(D, H, batch_first=True)

        def forward(self, x):
            return self.gru(x)[0]

    return {"gru": GRU(), "mingru_loop": scan.MinGRU(D, H, scan=False), "mingru_scan": scan.MinGRU(D, H, scan=True),
            "transformer_layer": Causal()}


def time_step(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    def step():
        model.zero_grad(set_to_none=True)
        model(x).pow(2).mean().backward()

    step()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_numpy(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nets = models(args.inputs, args.hidden, args.heads)
    result = {"provenance": {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                             "machine": f"{platform.machine()}, {os.cpu_count()} cores", "torch": torch.__version__,
                             "threads": args.threads, "loadavg_start": load(), "settings": vars(args) | {"out": None}},
              "torch_seconds": {}, "numpy_seconds": {}}
    print(f"load {load()}; batch {args.batch}, {args.inputs} inputs, {args.hidden} hidden, {args.threads} threads")
    print(f"{'T':>6}  " + "  ".join(f"{name:>22}" for name in nets) + "   numpy loop / scan (forward)")
    rng = np.random.default_rng(0)
    for T in args.lengths:
        x = torch.randn(args.batch, T, args.inputs)
        row = {name: time_step(net, x, args.repeats) for name, net in nets.items()}
        a = rng.uniform(0.5, 1.0, (args.batch, T, args.hidden))
        b = rng.standard_normal((args.batch, T, args.hidden))
        loop = time_numpy(lambda a=a, b=b: scan.linear_recurrence_loop(a, b), args.repeats)
        par = time_numpy(lambda a=a, b=b: scan.parallel_scan(a, b), args.repeats)
        result["torch_seconds"][str(T)] = row
        result["numpy_seconds"][str(T)] = {"loop": loop, "scan": par}
        cells = "  ".join(f"{1000 * s:9.1f} ms ({s / row['gru']:5.2f}x GRU)" for s in row.values())
        print(f"{T:>6}  {cells}   {1000 * loop:8.1f} / {1000 * par:8.1f} ms ({loop / par:4.2f}x)", flush=True)
    result["provenance"]["loadavg_end"] = load()
    print(f"load {load()}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
