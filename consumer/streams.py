"""Per-stream bookkeeping: rates, drops, ages, and the one-line status."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class StreamStats:
    """Counts of one stream since the last status line, plus running values."""

    frames_in: int = 0
    frames_out: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    ages: deque[float] = field(default_factory=lambda: deque(maxlen=512))
    last_seq: int = -1
    fps_out: float = 0.0
    fps_in: float = 0.0


class StreamBook:
    """Thread-safe stats for every stream seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, StreamStats] = {}
        self._window_start = time.monotonic()

    def _get(self, stream: str) -> StreamStats:
        stats = self._streams.get(stream)
        if stats is None:
            stats = self._streams[stream] = StreamStats()
        return stats

    def frame_in(self, stream: str) -> None:
        with self._lock:
            self._get(stream).frames_in += 1

    def frame_out(self, stream: str, seq: int, age: float) -> None:
        with self._lock:
            stats = self._get(stream)
            stats.frames_out += 1
            stats.ages.append(age)
            stats.last_seq = seq

    def drop(self, stream: str, reason: str) -> None:
        with self._lock:
            self._get(stream).drops[reason] += 1

    def forget(self, stream: str) -> None:
        """Drop the stats of a stream that went quiet."""
        with self._lock:
            self._streams.pop(stream, None)

    def fps_out(self, stream: str) -> float:
        with self._lock:
            stats = self._streams.get(stream)
            return stats.fps_out if stats else 0.0

    def roll(self) -> list[tuple[str, str, float, float]]:
        """Close the window: per stream (name, status line, fps in, fps out); counts reset."""
        now = time.monotonic()
        with self._lock:
            span = max(1e-6, now - self._window_start)
            self._window_start = now
            lines = []
            for name, stats in sorted(self._streams.items()):
                stats.fps_in = stats.frames_in / span
                stats.fps_out = stats.frames_out / span
                ages = sorted(stats.ages)
                p50 = ages[len(ages) // 2] * 1000 if ages else 0.0
                p99 = ages[min(len(ages) - 1, int(len(ages) * 0.99))] * 1000 if ages else 0.0
                drops = " ".join(f"{k}={v}" for k, v in sorted(stats.drops.items())) or "none"
                lines.append(
                    (
                        name,
                        f"stream {name}: in {stats.fps_in:.1f} fps, out {stats.fps_out:.1f} fps, "
                        f"age p50 {p50:.0f} ms p99 {p99:.0f} ms, last seq {stats.last_seq}, "
                        f"dropped {drops}",
                        stats.fps_in,
                        stats.fps_out,
                    )
                )
                stats.frames_in = stats.frames_out = 0
                stats.drops.clear()
                stats.ages.clear()
            return lines
