"""A throwaway single-node Slurm cluster on this machine (munged, slurmctld, slurmd), for tests and benchmarks.

``SlurmCluster.missing()`` says which programs are absent (Debian: ``apt-get install slurm-wlm munge``).
``start()`` writes a minimal slurm.conf in a temporary folder (one node, this host at 127.0.0.1, with its real
CPU count and memory; free ports; state and spool under the folder), a munge key, starts the three daemons in
the foreground as child processes and waits until ``sinfo`` reports the node idle; ``stop()`` stops them and
removes the folder. Clients find the cluster through ``SLURM_CONF`` (``env()``). Needs root (slurmd and
``SlurmUser=root``), as the grader's sandbox tests do.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel", "scontrol")
NODE = "localhost"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="slurm-"))
        self.procs: list[subprocess.Popen] = []
        self.conf = self.dir / "slurm.conf"

    @staticmethod
    def missing() -> list[str]:
        """The programs this needs that are not installed (``[]`` when it can run)."""
        paths = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
        return [p for p in PROGRAMS if shutil.which(p, path=paths) is None]

    def env(self) -> dict[str, str]:
        """The environment for Slurm's client commands (``sbatch``, ``squeue``...) to reach this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_conf(self) -> None:
        d = self.dir
        for sub in ("state", "spool", "log", "munge"):
            (d / sub).mkdir()
        (d / "munge").chmod(0o700)
        key = d / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
        cpus = os.cpu_count() or 1
        self.conf.write_text(f"""\
ClusterName=coursetest
SlurmctldHost={NODE}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool/slurmd-%n
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd-%n.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=600
MaxArraySize=10001
DefMemPerCPU=1024
SchedulerParameters=sched_interval=1
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=grading Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
PartitionName=closed Nodes={NODE} MaxTime=INFINITE State=DOWN
""")

    def _start(self, *argv: str) -> None:
        log = open(self.dir / "log" / f"{Path(argv[0]).name}.out", "wb")
        self.procs.append(subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                           start_new_session=True))
        log.close()

    def start(self, timeout: float = 90) -> SlurmCluster:
        self._write_conf()
        d = self.dir
        sbin = "/usr/sbin"
        munged = shutil.which("munged", path=os.environ.get("PATH", "") + os.pathsep + sbin)
        self._start(munged, "--foreground", "--force", f"--key-file={d}/munge/munge.key",
                    f"--socket={d}/munge/munge.socket", f"--pid-file={d}/munge/munged.pid",
                    f"--log-file={d}/log/munged.log", f"--seed-file={d}/munge/seed")
        self._wait(lambda: (d / "munge" / "munge.socket").exists(), 20, "munged did not create its socket")
        slurmctld = shutil.which("slurmctld", path=os.environ.get("PATH", "") + os.pathsep + sbin)
        slurmd = shutil.which("slurmd", path=os.environ.get("PATH", "") + os.pathsep + sbin)
        self._start(slurmctld, "-D", "-i", "-f", str(self.conf))
        self._start(slurmd, "-D", "-N", NODE, "-f", str(self.conf))

        def idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-p", "grading", "-o", "%T"], env=self.env(), capture_output=True,
                                 text=True, timeout=20)
            return out.returncode == 0 and out.stdout.strip() == "idle"

        self._wait(idle, timeout, "the node did not become idle")
        return self

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{what} within {timeout:g} s: {self.logs()}")

    def logs(self) -> str:
        """The tail of every daemon's log, for error messages."""
        tails = []
        for path in sorted((self.dir / "log").glob("*")):
            try:
                tails.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
            except OSError:
                pass
        return "\n".join(tails)

    def jobs(self) -> list[str]:
        """Ids of the jobs this cluster still knows as pending, running or completing."""
        out = subprocess.run(["squeue", "-h", "-o", "%i"], env=self.env(), capture_output=True, text=True,
                             timeout=20)
        return out.stdout.split() if out.returncode == 0 else []

    def cancel_all(self, timeout: float = 30) -> None:
        """Cancel every job of this (private) cluster and wait until none is left."""
        ids = self.jobs()
        if ids:
            subprocess.run(["scancel", *ids], env=self.env(), capture_output=True, timeout=20)
        deadline = time.monotonic() + timeout
        while self.jobs() and time.monotonic() < deadline:
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every daemon this started (SIGTERM, then SIGKILL), then remove the folder."""
        try:
            if self.procs and all(p.poll() is None for p in self.procs):
                self.cancel_all()
            for proc in reversed(self.procs):  # slurmd (and its jobs), slurmctld, then munged
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait(timeout=10)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
