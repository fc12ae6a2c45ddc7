"""Throughput of ``python -m course_lib.grading autograde`` against serial ``nbgrader autograde``.

Builds a class of ``--n`` submissions of 01_feedforward (correct, partially correct in several ways, and
unanswered), grades the same class twice in two copies of a course directory -- serially with
``nbgrader autograde`` and with this course's command (sandbox on, ``--workers`` sandboxes) -- and prints the
seconds per submission of each, the speed-up, the machine's load, and the number of grades that differ
(which must be zero).

    .venv/bin/python benchmarks/bench_grading.py            # 100 submissions (about an hour on 2 busy cores)
    .venv/bin/python benchmarks/bench_grading.py --n 10     # a quick run
    .venv/bin/python benchmarks/bench_grading.py --workers 2,3  # each worker count against one serial run
    .venv/bin/python benchmarks/bench_grading.py --corpus   # the adversarial corpus: forged passes, hangs
    .venv/bin/python benchmarks/bench_grading.py --backend slurm --n 12  # what Slurm adds per submission

``--backend slurm`` (root, ``apt-get install slurm-wlm munge``) starts a single-node Slurm on this machine
(tests/slurm_helpers.py), grades the same class with the local pool and with ``--backend slurm`` (one array
task per submission, each in the same sandbox), and prints the extra seconds per submission that Slurm adds
(submission, scheduling, the task's start-up, polling and the shared folder) and the grades that differ (0).
Both run one submission per core at a time: Slurm gives each task one CPU of this node, and the local pool
gets ``--workers`` equal to the cores.

``--corpus`` grades the adversarial corpus of ``tests/test_grading_adversarial.py`` (every attack the tests
know, each with the score it must get) in one run and prints the goals of the grading issue: forged passes
(a question scored above what the submission earned), whole-run hangs or aborts (the run did not finish, or
a submission that should have one has no gradebook row), and cross-submission channels (cases whose name ends
with ``_probe``: a later submission that reports what an earlier one left in the kernel's keyrings).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from grading_helpers import (  # noqa: E402
    ASSIGNMENT,
    env,
    gradebook_rows,
    make_course,
    release_nb,
    source_nb,
    submit,
    with_source,
)

PARTIAL = {
    "wrong_softmax": ("softmax_loss", "def softmax_loss(s, y):\n    return 0.0, np.zeros_like(s)\n"),
    "wrong_forward": ("affine_forward", "def affine_forward(x, W, b):\n    return x @ W, (x, W)\n"),
    "wrong_gradient": ("numerical_gradient", "def numerical_gradient(f, x, dout=None, h=1e-5):\n"
                                             "    return np.zeros_like(x)\n"),
}


def variants(course: Path) -> list:
    sol = source_nb()
    return [sol, *(with_source(sol, gid, src) for gid, src in PARTIAL.values()), release_nb(course)]


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return seconds


def corpus_goals(workers: int) -> None:
    """Grade the adversarial corpus once and print forged passes, hangs/aborts and channels."""
    from grading_helpers import run, scores
    from test_grading_adversarial import LIMITS, Listener, corpus

    work = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    course = make_course(work / "course")
    listener = Listener()
    cases = corpus(course, listener.port)
    for student, (content, _, _) in cases.items():
        submit(course, student, content)
    start = time.perf_counter()
    try:
        result = run(course, "course_lib.grading", "autograde", ASSIGNMENT, "--workers", str(workers), "--quiet",
                     "--limits", LIMITS, check=False)
        finished = result.returncode == 0
    except subprocess.TimeoutExpired:
        finished = False
    seconds = time.perf_counter() - start
    listener.close()
    got = scores(f"sqlite:///{course / 'gradebook.db'}") if finished else {}
    forged = [f"{s}:{g}" for s, (_, want, _) in cases.items() for g, v in got.get(s, {}).items()
              if v > want.get(g, 0) + 1e-9]
    # a case whose expected score is None gets no gradebook row by design (e.g. a folder name that is not UTF-8:
    # reported as malformed); any other case without a row is an abort
    missing = [s for s, (_, want, _) in cases.items() if s not in got and want is not None]
    probes = [s for s in cases if s.endswith("_probe")]  # look for what an earlier submission left behind
    channels, unprobed = [], []
    if finished:
        for student in probes:
            nb = json.loads((course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
            # a cell's stream outputs joined: one print() can reach the notebook as two outputs
            text = "\n".join("".join("".join(o.get("text", "")) for o in c.get("outputs", [])) for c in nb["cells"])
            found = re.search(r"KEYRINGS: \[([^\]]*)\]", text)
            if found is None:  # the probe did not run (e.g. no keyring syscalls known on this architecture)
                unprobed.append(student)
            elif "True" in found.group(1):
                channels.append(student)
    print(f"adversarial corpus: {len(cases)} submissions graded in {seconds:.1f} s with {workers} workers "
          f"(load average now {os.getloadavg()[0]:.1f})")
    print(f"forged passes: {len(forged)} {forged if forged else ''}")
    print(f"whole-run hangs or aborts: {0 if finished and not missing else 1} "
          f"{'' if finished else '(the run did not finish)'}{missing if missing else ''}")
    print(f"cross-submission channels: {len(channels)} of {len(probes) - len(unprobed)} tried "
          f"{channels if channels else ''}{f'(not probed: {unprobed})' if unprobed else ''}")
    print(f"network connections that left the sandbox: {listener.connections}")
    shutil.rmtree(work, ignore_errors=True)


def empty_array(cluster, n: int) -> float:
    """Seconds from sbatch of an array of ``n`` tasks that do nothing until squeue lists none of them."""
    start = time.perf_counter()
    out = subprocess.run(["sbatch", "--parsable", f"--array=0-{n - 1}", "--cpus-per-task=1", "--mem=512M",
                          "--output=/dev/null", "--wrap", "true"], env=cluster.env(), capture_output=True, text=True,
                         check=True)
    job = out.stdout.strip().split(";")[0]
    while subprocess.run(["squeue", "-h", "-j", job, "-o", "%i"], env=cluster.env(), capture_output=True,
                         text=True).stdout.strip():
        time.sleep(0.1)
    return time.perf_counter() - start


def slurm_overhead(n: int) -> None:
    """The local pool against --backend slurm on one class, one submission per core at a time in both."""
    from slurm_helpers import SlurmCluster

    missing = SlurmCluster.missing()
    if missing or os.geteuid() != 0:
        sys.exit(f"needs root and Slurm ({', '.join(missing) or 'installed'}; apt-get install slurm-wlm munge)")
    work = Path(tempfile.mkdtemp(prefix="bench-slurm-"))
    cluster = SlurmCluster()
    try:
        cluster.start()
        local, remote = work / "local", work / "slurm"
        make_course(local)
        kinds = variants(local)
        for i in range(n):
            submit(local, f"student{i:04d}", kinds[i % len(kinds)])
        shutil.copytree(local, remote)
        cores = os.cpu_count() or 1
        command = [sys.executable, "-m", "course_lib.grading", "autograde", ASSIGNMENT, "--quiet"]
        load_before = os.getloadavg()
        t_local = timed(command + ["--workers", str(cores)], local)
        os.environ["SLURM_CONF"] = str(cluster.conf)  # for timed()'s env(), which copies os.environ
        t_slurm = timed(command + ["--backend", "slurm"], remote)
        t_empty = empty_array(cluster, n)
        load_after = os.getloadavg()
        ours, theirs = (gradebook_rows(f"sqlite:///{c / 'gradebook.db'}") for c in (local, remote))
        wrong = sum(ours[s].get(g) != theirs.get(s, {}).get(g) for s in ours for g in ours[s])
        wrong += len(set(ours) ^ set(theirs))
        print(f"class: {n} submissions of {ASSIGNMENT} ({len(kinds)} variants); single-node Slurm on this machine, "
              f"{cores} one-CPU tasks at a time")
        print(f"machine: {cores} cores; load average (1, 5, 15 min) before {load_before[0]:.1f}, "
              f"{load_before[1]:.1f}, {load_before[2]:.1f}; after {load_after[0]:.1f}, {load_after[1]:.1f}, "
              f"{load_after[2]:.1f}")
        print(f"local pool ({cores} sandboxes):        {t_local:8.1f} s  {t_local / n:6.2f} s/submission")
        print(f"--backend slurm ({cores} tasks at once): {t_slurm:8.1f} s  {t_slurm / n:6.2f} s/submission")
        print(f"extra time per submission with Slurm: {(t_slurm - t_local) / n:+.2f} s "
              f"(whole class {t_slurm - t_local:+.1f} s; both include one reference run); "
              f"grades that differ: {wrong}")
        print(f"Slurm's own cost, an array of {n} empty tasks ({cores} at a time), sbatch to the last one gone: "
              f"{t_empty:.1f} s, {t_empty / n:.2f} s/task")
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="submissions in the class (default 100)")
    parser.add_argument("--workers", default=str((os.cpu_count() or 1) + 1),
                        help="sandboxes (default: the command's, cores + 1); a comma-separated list times each "
                             "against one serial run")
    parser.add_argument("--keep", action="store_true", help="keep the two course directories")
    parser.add_argument("--corpus", action="store_true", help="grade the adversarial corpus instead")
    parser.add_argument("--backend", choices=["local", "slurm"], default="local",
                        help="slurm: the local pool against --backend slurm on a single-node Slurm started here")
    args = parser.parse_args()
    counts = [int(w) for w in str(args.workers).split(",")]
    if args.corpus:
        corpus_goals(counts[0])
        return
    if args.backend == "slurm":
        slurm_overhead(args.n)
        return

    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    serial = work / "serial"
    make_course(serial)
    kinds = variants(serial)
    for i in range(args.n):
        submit(serial, f"student{i:04d}", kinds[i % len(kinds)])
    copies = {w: work / f"parallel-{w}" for w in counts}
    for copy in copies.values():
        shutil.copytree(serial, copy)
    load_before = os.getloadavg()

    t_serial = timed([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force"], serial)
    t_parallel = {w: timed([sys.executable, "-m", "course_lib.grading", "autograde", ASSIGNMENT, "--quiet",
                            "--workers", str(w)], copy) for w, copy in copies.items()}  # with the reference run
    load_after = os.getloadavg()

    reference = gradebook_rows(f"sqlite:///{serial / 'gradebook.db'}")
    print(f"class: {args.n} submissions of {ASSIGNMENT} ({len(kinds)} variants: correct, 3 partial, unanswered)")
    print(f"machine: {os.cpu_count()} cores; load average (1, 5, 15 min) before {load_before[0]:.1f}, "
          f"{load_before[1]:.1f}, {load_before[2]:.1f}; after {load_after[0]:.1f}, {load_after[1]:.1f}, "
          f"{load_after[2]:.1f}")
    print(f"nbgrader autograde (serial):             {t_serial:8.1f} s  {t_serial / args.n:6.2f} s/submission")
    for w, seconds in t_parallel.items():
        ours = gradebook_rows(f"sqlite:///{copies[w] / 'gradebook.db'}")
        wrong = sum(reference[s].get(g) != ours.get(s, {}).get(g) for s in reference for g in reference[s])
        wrong += len(set(ours) ^ set(reference))
        print(f"course_lib.grading ({w} sandboxed workers): {seconds:8.1f} s  {seconds / args.n:6.2f} s/submission"
              f"  speed-up {t_serial / seconds:.2f}x  grades that differ from nbgrader's: {wrong}")
    if args.keep:
        print(f"course directories kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
