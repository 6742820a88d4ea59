"""Client-side load balancing over the replicas of one model.

Least outstanding requests, a per-replica in-flight cap, ejection of
replicas that fail (or are much slower than their peers) and a background
health probe that brings them back, with exponential back-off for replicas
that keep failing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kva.consumer.backend_api import Backend
from kva.consumer.metrics import ConsumerMetrics

logger = logging.getLogger(__name__)

#: A replica whose latency (EWMA) is this many times its fastest peer's is ejected.
SLOW_FACTOR = 4.0
#: ... but only when it is also slower than this (seconds).
SLOW_FLOOR = 0.15
#: Successes in a row needed before a replica is judged slow.
OUTLIER_MIN_SAMPLES = 5
#: Longest ejection back-off (seconds).
MAX_BACKOFF = 30.0
#: Successes in a row after which the back-off is forgotten.
RESET_AFTER = 20


@dataclass(slots=True)
class Replica:
    """One model-server replica and its load-balancing state."""

    url: str
    backend: Backend
    inflight: int = 0
    up: bool = True
    failures_in_row: int = 0
    successes_in_row: int = 0
    ejections: int = 0
    next_probe: float = 0.0
    latency_ewma: float = 0.0
    requests: int = 0
    last_used: float = 0.0


class ReplicaPool:
    """The replicas of one model: pick, release, eject, probe back in."""

    def __init__(
        self,
        model: str,
        backends: Sequence[Backend],
        *,
        max_inflight: int,
        eject_after: int,
        probe_interval: float,
        metrics: ConsumerMetrics,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.model = model
        self.replicas = [Replica(b.url, b) for b in backends]
        self.max_inflight = max_inflight
        self.eject_after = eject_after
        self.probe_interval = probe_interval
        self._metrics = metrics
        self._on_change = on_change
        self._cond = threading.Condition()
        for replica in self.replicas:
            metrics.replica_up.labels(model, replica.url).set(1)

    # -- selection -------------------------------------------------------------------
    def acquire(self, exclude: set[str], timeout: float) -> Replica | None:
        """The up replica with the fewest requests in flight (below the cap), not in
        ``exclude``; waits up to ``timeout`` for a slot. None when no replica can serve."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                candidates = [r for r in self.replicas if r.up and r.url not in exclude]
                if not candidates:
                    return None
                free = [r for r in candidates if r.inflight < self.max_inflight]
                if free:
                    best = min(free, key=lambda r: (r.inflight, r.last_used))
                    best.inflight += 1
                    best.requests += 1
                    best.last_used = time.monotonic()
                    self._metrics.inflight.labels(self.model, best.url).set(best.inflight)
                    return best
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def release(self, replica: Replica, *, ok: bool, latency: float, reason: str = "") -> None:
        """Return the slot; count the outcome; eject after repeated failures or slowness."""
        with self._cond:
            replica.inflight -= 1
            self._metrics.inflight.labels(self.model, replica.url).set(replica.inflight)
            if ok:
                self._metrics.inference_seconds.labels(self.model, replica.url).observe(latency)
                replica.failures_in_row = 0
                replica.successes_in_row += 1
                if replica.successes_in_row >= RESET_AFTER:
                    replica.ejections = 0
                weight = 0.2 if replica.latency_ewma else 1.0
                replica.latency_ewma += weight * (latency - replica.latency_ewma)
                if replica.up and self._is_outlier(replica):
                    self._eject(replica, f"slow: {replica.latency_ewma * 1000:.0f} ms on average")
            else:
                self._metrics.inference_errors.labels(self.model, replica.url, reason).inc()
                replica.successes_in_row = 0
                replica.failures_in_row += 1
                if replica.up and replica.failures_in_row >= self.eject_after:
                    self._eject(replica, f"{replica.failures_in_row} failures in a row ({reason})")
            self._cond.notify_all()

    def _is_outlier(self, replica: Replica) -> bool:
        peers = [r.latency_ewma for r in self.replicas if r.up and r is not replica and r.requests]
        if not peers or replica.successes_in_row < OUTLIER_MIN_SAMPLES:
            return False
        return replica.latency_ewma > max(SLOW_FLOOR, SLOW_FACTOR * min(peers))

    def _eject(self, replica: Replica, why: str) -> None:
        replica.up = False
        replica.ejections += 1
        backoff = min(MAX_BACKOFF, self.probe_interval * 2 ** (replica.ejections - 1))
        replica.next_probe = time.monotonic() + backoff
        self._metrics.replica_up.labels(self.model, replica.url).set(0)
        self._metrics.ejections.labels(self.model, replica.url).inc()
        logger.warning(
            "model %s: replica %s ejected (%s); probing again in %.1fs",
            self.model,
            replica.url,
            why,
            backoff,
        )
        self._on_change()

    def eject(self, url: str, why: str) -> None:
        """Take a replica out of rotation (e.g. it failed at start)."""
        with self._cond:
            for replica in self.replicas:
                if replica.url == url and replica.up:
                    self._eject(replica, why)

    # -- health ----------------------------------------------------------------------
    def up_count(self) -> int:
        """Replicas in rotation."""
        with self._cond:
            return sum(r.up for r in self.replicas)

    def capacity(self) -> int:
        """Requests the up replicas can take at once."""
        return self.up_count() * self.max_inflight

    def probe_due(self) -> list[Replica]:
        """Ejected replicas whose probe time has come."""
        now = time.monotonic()
        with self._cond:
            return [r for r in self.replicas if not r.up and r.next_probe <= now]

    def probe(self, replica: Replica) -> bool:
        """Probe one ejected replica; put it back when it answers ready."""
        ok = replica.backend.ready()
        with self._cond:
            if ok:
                replica.up = True
                replica.failures_in_row = 0
                replica.successes_in_row = 0
                replica.latency_ewma = 0.0
                self._metrics.replica_up.labels(self.model, replica.url).set(1)
                logger.info("model %s: replica %s is back in rotation", self.model, replica.url)
                self._cond.notify_all()
            else:
                backoff = min(MAX_BACKOFF, self.probe_interval * 2 ** max(0, replica.ejections - 1))
                replica.next_probe = time.monotonic() + min(backoff, self.probe_interval)
        if ok:
            self._on_change()
        return ok

    def stats(self) -> list[tuple[str, bool, int, int]]:
        """(url, up, in flight, requests so far) per replica."""
        with self._cond:
            return [(r.url, r.up, r.inflight, r.requests) for r in self.replicas]

    def close(self) -> None:
        for replica in self.replicas:
            replica.backend.close()
