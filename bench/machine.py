"""What the benchmarks ran on: cores, CPU model, memory, the commit, and whether the machine
is quiet enough to measure."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Machine:
    """The machine of a run."""

    cores: int
    cpu_model: str
    memory_gib: float

    def text(self) -> str:
        return f"{self.cores} cores ({self.cpu_model}), {self.memory_gib:.1f} GiB memory"


def this_machine() -> Machine:
    """This machine, from ``os.cpu_count()``, /proc/cpuinfo and /proc/meminfo."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 2**20
                break
    except OSError:
        pass
    return Machine(os.cpu_count() or 1, model, memory)


def commit() -> str:
    """The checked-out commit (short), with ``+ changes`` when the work tree differs."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + (" + changes" if dirty else "")


def busy(load_1min: float, cores: int, max_load_per_core: float) -> bool:
    """Whether the 1-min load average says other work would distort a measurement."""
    return load_1min > cores * max_load_per_core
