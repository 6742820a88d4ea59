"""CPU time of processes, read from Linux's /proc: what every benchmark's "CPU ms per
frame" is made of."""

from __future__ import annotations

import os
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds of named processes from now on; a name may stand for several pids (the
    broker's JVMs: an empty list, e.g. an existing broker, counts as 0)."""

    def __init__(self, processes: dict[str, int | list[int]]) -> None:
        self.processes = {
            name: [pids] if isinstance(pids, int) else list(pids)
            for name, pids in processes.items()
        }
        self.started = time.monotonic()
        self.before = self._now()

    def _now(self) -> dict[str, float]:
        return {name: sum(map(cpu_seconds, pids)) for name, pids in self.processes.items()}

    def seconds(self) -> dict[str, float]:
        """CPU seconds of each process since the meter started."""
        now = self._now()
        return {name: now[name] - self.before[name] for name in now}

    def ms_per_frame(self, frames: int) -> dict[str, float]:
        """CPU milliseconds per frame of each process since the meter started, for ``frames``."""
        return {name: cpu * 1000 / max(frames, 1) for name, cpu in self.seconds().items()}

    def cores(self) -> float:
        """Cores kept busy by all of them since the meter started."""
        return sum(self.seconds().values()) / max(time.monotonic() - self.started, 1e-9)
