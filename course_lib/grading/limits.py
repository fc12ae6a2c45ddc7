"""Resource limits of one sandboxed submission, and their ``--limits`` syntax.

``--limits cell=120,wall=600,cpu=600,mem=4096,nproc=256,output=10,fsize=64,cores=1,ram=4096,disk=512`` (any
subset): seconds per cell, wall-clock seconds per submission, CPU seconds per process, address space in MiB per
process, processes and threads of the sandbox's user, MiB of notebook output per submission, MiB per file
written; and per submission (a cgroup, where the host allows one: see :func:`.sandbox.cgroups`): CPU cores,
MiB of RAM (its tmpfs pages included), and MiB of each of its writable tmpfs (``/tmp``, ``/dev/shm``, the
working copy).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Limits:
    cell: float = 120.0  # seconds per cell (nbgrader's Execute.timeout overrides this default)
    wall: float = 600.0  # seconds per submission, kernel start included
    cpu: int = 600  # CPU seconds per process (RLIMIT_CPU)
    mem: int = 4096  # MiB of address space per process (RLIMIT_AS)
    nproc: int = 256  # processes + threads of the sandbox's uid (RLIMIT_NPROC)
    output: float = 10.0  # MiB of outputs per submission
    fsize: int = 64  # MiB per file the submission writes (RLIMIT_FSIZE)
    startup: float = 60.0  # seconds for the kernel to start
    cores: float = 1.0  # CPU cores per submission (cgroup CPU quota; equal CPU weight for every submission)
    ram: int = 4096  # MiB of RAM per submission (cgroup memory limit)
    disk: int = 512  # MiB of each writable tmpfs of the sandbox (/tmp, /dev/shm, the working copy)

    @classmethod
    def parse(cls, text: str | None, base: Limits | None = None) -> Limits:
        """``"cell=10,wall=60"`` -> Limits, starting from ``base`` (or the defaults)."""
        limits = base or cls()
        if not text:
            return limits
        known = {f.name: f.type for f in fields(cls)}
        changes = {}
        for item in text.split(","):
            name, _, value = item.partition("=")
            name = name.strip()
            if name not in known or not value:
                raise ValueError(f"unknown limit {item!r}: use name=value with names {', '.join(known)}")
            changes[name] = float(value) if known[name] == "float" else int(value)
            if changes[name] <= 0:
                raise ValueError(f"limit {name} must be positive")
        return replace(limits, **changes)

    def describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))
