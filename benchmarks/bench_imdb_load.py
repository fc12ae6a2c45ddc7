"""How long loading and encoding the 50,000 IMDb reviews takes: cold (no cache), then warm (cached).

The goal (issue 6): the full dataset loads and encodes in under 30 s on a 2-core machine, and a second load
takes seconds. Uses the dataset in $RNN_COURSE_IMDB_DIR (or the cache) and a fresh temporary cache folder,
so the cold figure really is cold for the parse and encoding caches (the operating system's file cache may
still be warm: the first run after a reboot reads the files from disk).

    python benchmarks/bench_imdb_load.py [--vocab-size 10000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from course_lib import imdb
from course_lib.text import tokenize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--data-dir", help="an aclImdb folder (default $RNN_COURSE_IMDB_DIR or the cache)")
    args = parser.parse_args()
    root = imdb.locate(args.data_dir)
    print(f"data: {root}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        train = imdb.read_split(root, "train")
        test = imdb.read_split(root, "test")
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_tokens = sum(len(tokenize(t)) for t in train.texts + test.texts)
        t_tok = time.perf_counter() - t0
        print(f"parts:  reading {len(train) + len(test):,} files {t_read:.1f} s; tokenizing {n_tokens:,} tokens "
              f"{t_tok:.1f} s")
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            data = imdb.load_imdb(args.vocab_size, data_dir=root, cache=cache)
            seconds = time.perf_counter() - t0
            print(f"{label}:   load_imdb(vocab_size={args.vocab_size}) {seconds:6.1f} s for "
                  f"{len(data.train) + len(data.test):,} reviews (goal: cold < 30 s, warm a few seconds)")


if __name__ == "__main__":
    main()
