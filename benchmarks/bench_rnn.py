"""Speed of course_lib's numpy RNN against torch.nn.RNN (CPU): one forward + backward pass over whole sequences.

Both run in the same process, on the same inputs and weights, interleaved repeat by repeat (so a burst of load
from other processes hits both), and the script prints the median time of each and their ratio. The numpy side
is ``rnn_forward`` + ``rnn_backward``; the torch side is ``nn.RNN(...)(x, h0)`` + ``out.backward(dh)`` with
gradients for the input, the initial state and the weights.

    python benchmarks/bench_rnn.py                      # N=64, T=100, D=H=128, float32 and float64
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_rnn.py --threads 1   # one thread each (a busy machine)
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from course_lib import rnn


def numpy_step(x, h0, Wx, Wh, b, dh):
    h, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
    return rnn.rnn_backward(dh, cache)


def make_torch_step(x, h0, Wx, Wh, b, dh):
    module = rnn.to_torch(Wx, Wh, b)
    tx = torch.from_numpy(x).requires_grad_(True)
    th0 = torch.from_numpy(h0)[None].requires_grad_(True)
    tdh = torch.from_numpy(dh)

    def step():
        module.zero_grad(set_to_none=True)
        tx.grad = th0.grad = None
        out, _ = module(tx, th0)
        out.backward(tdh)
        return tx.grad, th0.grad, module.weight_ih_l0.grad, module.weight_hh_l0.grad, module.bias_ih_l0.grad

    return step


def bench(N: int, T: int, D: int, H: int, dtype, repeats: int, warmup: int = 3) -> dict[str, float]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype)
    Wx = (rng.standard_normal((D, H)) / np.sqrt(D)).astype(dtype)
    Wh = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(dtype)
    b = np.zeros(H, dtype=dtype)
    dh = rng.standard_normal((N, T, H)).astype(dtype)
    torch_step = make_torch_step(x, h0, Wx, Wh, b, dh)

    # same answer first (a benchmark of a wrong result is worthless)
    ours = numpy_step(x, h0, Wx, Wh, b, dh)
    theirs = [g.detach().numpy() for g in torch_step()]
    theirs = [theirs[0], theirs[1][0], theirs[2].T, theirs[3].T, theirs[4]]
    tol = 1e-3 if dtype == np.float32 else 1e-9
    for a, ref in zip(ours, theirs, strict=True):
        assert a.dtype == dtype, f"numpy result is {a.dtype}, expected {np.dtype(dtype)}"
        err = np.max(np.abs(a - ref)) / max(1e-8, np.max(np.abs(a) + np.abs(ref)))
        assert err < tol, f"numpy and torch disagree (relative error {err:.1e})"

    times: dict[str, list[float]] = {"numpy": [], "torch": []}
    for i in range(warmup + repeats):
        for name, fn in [("numpy", lambda: numpy_step(x, h0, Wx, Wh, b, dh)), ("torch", torch_step)]:
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times[name].append(elapsed)
    return {name: float(np.median(v)) for name, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=64)
    parser.add_argument("--T", type=int, default=100)
    parser.add_argument("--D", type=int, default=128)
    parser.add_argument("--H", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads); numpy's BLAS reads "
          + ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")))
    print(f"forward + backward, N={args.N}, T={args.T}, D={args.D}, H={args.H}, median of {args.repeats} "
          "interleaved repeats")
    print(f"{'dtype':8s} {'numpy (ms)':>11s} {'torch (ms)':>11s} {'numpy/torch':>12s}")
    for dtype in (np.float32, np.float64):
        result = bench(args.N, args.T, args.D, args.H, dtype, args.repeats)
        ratio = result["numpy"] / result["torch"]
        print(f"{np.dtype(dtype).name:8s} {1e3 * result['numpy']:11.2f} {1e3 * result['torch']:11.2f} {ratio:12.2f}")


if __name__ == "__main__":
    main()
