"""Time from ``nbgrader submit`` to released feedback with ``python -m course_lib.grading watch``.

A fresh course with an exchange (``tests/watch_helpers.py``), the watcher started as a subprocess (one sandbox,
the default), then students who submit 01_feedforward at the same time with ``nbgrader submit``; for each, the seconds
from the end of its ``nbgrader submit`` until its feedback is in the exchange (where ``nbgrader
fetch_feedback`` finds it). The first one seen is graded at once; the others wait behind it. Prints the
figures and the load.

    .venv/bin/python benchmarks/bench_watch.py               # two students: one graded first, one queued
    .venv/bin/python benchmarks/bench_watch.py --students 4  # more queued submissions
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from watch_helpers import WatchedCourse  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=2, help="students who submit at once (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="the watcher's --workers (default 1)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    try:
        course = WatchedCourse(work)
        course.start_watcher("--workers", str(args.workers))
        load = os.getloadavg()
        names = [f"student{i}" for i in range(args.students)]
        submitted = course.submit_at_once({s: (f"# {s}", False) for s in names})
        waits = {s: course.wait_for_feedback(s, name, since) for s, (name, since) in submitted.items()}
        status, _ = course.stop_watcher()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores; load average (1, 5, 15 min) at the first submission "
          f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}; watcher --workers {args.workers}; exit status {status}")
    for s in sorted(names, key=waits.get):
        print(f"{s}: submission to released feedback {waits[s]:6.1f} s")


if __name__ == "__main__":
    main()
