"""Per model version inference statistics, in the shape of Triton's statistics extension.

What is counted (``GET /v2/models/stats``, tritonclient's ``get_inference_statistics``):

- *success* / *fail*: requests admitted for a loaded version that ended with
  outputs / with an error (a request refused by admission control is a failure),
  with their total time from admission to the end;
- *compute_input*: turning the request into tensors (JSON or protobuf parsing,
  image decoding); *compute_infer*: OpenVINO inference, including the wait for
  a free infer request, which kva does not time apart: *queue* is therefore
  reported with the count of successes and 0 ns, and *compute_output* likewise
  (outputs are encoded after the statistics are taken);
- *inference_count*: rows (batch elements) inferred; *execution_count*: requests
  run (kva batches no requests together);
- *last_inference*: milliseconds since the epoch of the last success.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int) -> None:
        self.count += 1
        self.ns += ns

    def to_json(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass
class VersionStats:
    """The counters of one model version (read and written under :class:`StatsBook`'s lock)."""

    success: _Duration = field(default_factory=_Duration)
    fail: _Duration = field(default_factory=_Duration)
    compute_input: _Duration = field(default_factory=_Duration)
    compute_infer: _Duration = field(default_factory=_Duration)
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0

    def to_json(self, name: str, version: int) -> dict[str, Any]:
        """Triton's ``model_stats`` entry."""
        zero = {"count": self.success.count, "ns": 0}
        return {
            "name": name,
            "version": str(version),
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": self.success.to_json(),
                "fail": self.fail.to_json(),
                "queue": zero,
                "compute_input": self.compute_input.to_json(),
                "compute_infer": self.compute_infer.to_json(),
                "compute_output": zero,
                "cache_hit": {"count": 0, "ns": 0},
                "cache_miss": {"count": 0, "ns": 0},
            },
            "batch_stats": [],
        }


class StatsBook:
    """Statistics of every (model, version), shared by the REST and gRPC handlers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, int], VersionStats] = {}

    def snapshot(self, name: str, version: int) -> dict[str, Any]:
        """The ``model_stats`` entry of one version (zeros when it never ran)."""
        with self._lock:
            return self._stats.get((name, version), VersionStats()).to_json(name, version)

    def record(
        self,
        name: str,
        version: int,
        *,
        ok: bool,
        total_ns: int,
        input_ns: int | None = None,
        infer_ns: int | None = None,
        rows: int = 0,
    ) -> None:
        """Count one request that ended (``ok``) or failed after admission was asked."""
        with self._lock:
            stats = self._stats.setdefault((name, version), VersionStats())
            (stats.success if ok else stats.fail).add(total_ns)
            if input_ns is not None:
                stats.compute_input.add(input_ns)
            if infer_ns is not None:
                stats.compute_infer.add(infer_ns)
            if ok:
                stats.inference_count += rows
                stats.execution_count += 1
                stats.last_inference_ms = time.time_ns() // 1_000_000
