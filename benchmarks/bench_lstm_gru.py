"""Speed of course_lib's numpy LSTM and GRU against torch.nn.LSTM / torch.nn.GRU on the CPU.

One forward and backward pass over a batch (N=64, T=100, D=H=128 by default), with the gradients of the
inputs, the initial state and all weights, in float32 and float64. numpy and torch run interleaved, repeat
after repeat, in the same process, and the script prints the median time of each and their ratio
(numpy / torch: below 1 means numpy is faster). Both get the same number of threads (``--threads``, 1 by
default: with more, numpy's BLAS threads and torch's OpenMP threads spin while the other library runs and the
interleaved timings measure that contention rather than the code). On a shared machine, run it a few times
and compare the ratios.

    python benchmarks/bench_lstm_gru.py [--threads 1] [--repeats 15] [--N 64 --T 100 --D 128 --H 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# The thread count must be fixed before numpy and torch load their thread pools.
_early = argparse.ArgumentParser(add_help=False)
_early.add_argument("--threads", type=int, default=1)
THREADS = _early.parse_known_args(sys.argv[1:])[0].threads
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from course_lib import gru, lstm  # noqa: E402


def make_lstm(rng, N, T, D, H, dtype):
    k = 1 / np.sqrt(H)
    x, h0, c0 = (rng.standard_normal(s).astype(dtype) for s in [(N, T, D), (N, H), (N, H)])
    Wx, Wh, b = (rng.uniform(-k, k, s).astype(dtype) for s in [(D, 4 * H), (H, 4 * H), (4 * H,)])
    dh = rng.standard_normal((N, T, H)).astype(dtype)

    def run_numpy():
        h, c, cache = lstm.lstm_forward(x, h0, c0, Wx, Wh, b)
        return lstm.lstm_backward(dh, cache)

    module = lstm.to_torch(Wx, Wh, b)
    tx, th0, tc0, tdh = (torch.tensor(a) for a in (x, h0[None], c0[None], dh))

    def run_torch():
        module.zero_grad(set_to_none=True)
        x_, h_, c_ = (a.detach().requires_grad_() for a in (tx, th0, tc0))
        out, _ = module(x_, (h_, c_))
        out.backward(tdh)
        return x_.grad

    return run_numpy, run_torch


def make_gru(rng, N, T, D, H, dtype):
    k = 1 / np.sqrt(H)
    x, h0 = rng.standard_normal((N, T, D)).astype(dtype), rng.standard_normal((N, H)).astype(dtype)
    Wx, Wh, bx, bh = (rng.uniform(-k, k, s).astype(dtype) for s in [(D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,)])
    dh = rng.standard_normal((N, T, H)).astype(dtype)

    def run_numpy():
        h, cache = gru.gru_forward(x, h0, Wx, Wh, bx, bh)
        return gru.gru_backward(dh, cache)

    module = gru.to_torch(Wx, Wh, bx, bh)
    tx, th0, tdh = (torch.tensor(a) for a in (x, h0[None], dh))

    def run_torch():
        module.zero_grad(set_to_none=True)
        x_, h_ = (a.detach().requires_grad_() for a in (tx, th0))
        out, _ = module(x_, h_)
        out.backward(tdh)
        return x_.grad

    return run_numpy, run_torch


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for numpy's BLAS and for torch")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--N", type=int, default=64)
    parser.add_argument("--T", type=int, default=100)
    parser.add_argument("--D", type=int, default=128)
    parser.add_argument("--H", type=int, default=128)
    args = parser.parse_args(argv)
    N, T, D, H = args.N, args.T, args.D, args.H
    torch.set_num_threads(args.threads)
    print(f"forward + backward, N={N} T={T} D={D} H={H}; median of {args.repeats} interleaved repeats")
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"{'model':6s} {'dtype':8s} {'numpy ms':>9s} {'torch ms':>9s} {'numpy/torch':>12s}")
    rng = np.random.default_rng(0)
    for name, make in [("LSTM", make_lstm), ("GRU", make_gru)]:
        for dtype in [np.float32, np.float64]:
            run_numpy, run_torch = make(rng, N, T, D, H, dtype)
            run_numpy(), run_torch()  # warm up (allocations, thread pools)
            t_np, t_torch = [], []
            for _ in range(args.repeats):
                t_np.append(timed(run_numpy))
                t_torch.append(timed(run_torch))
            m_np, m_torch = np.median(t_np) * 1e3, np.median(t_torch) * 1e3
            print(f"{name:6s} {np.dtype(dtype).name:8s} {m_np:9.1f} {m_torch:9.1f} {m_np / m_torch:12.2f}")


if __name__ == "__main__":
    main()
