"""Prometheus metrics of ``kva consume`` (one registry per consumer instance)."""

from __future__ import annotations

import contextlib
import threading
from typing import Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kva.events import Event

#: Why a frame was dropped: the ``reason`` label of ``kva_consume_frames_dropped_total``.
#:
#: - ``stale``: older than ``--max-frame-age`` when it came or when a replica was free
#:   for it, or ready after a newer frame of its stream was published.
#: - ``overload``: replaced by a newer frame of its stream before it was sent, of a stream
#:   beyond ``--max-streams``, every replica stayed busy, or the output was refused.
#: - ``decode_error``: the input cannot be read (message, headers, size, JPEG).
#: - ``encode_error``: the annotated frame or a model input did not encode as JPEG.
#: - ``model_error``: every model failed on the frame.
#: - ``too_many_streams``: of a new stream while ``--max-streams`` streams are tracked and
#:   none of them may make room (see :mod:`~kva.consumer.roster`).
#: - ``internal_error``: a bug in the consumer (logged with its traceback), also any
#:   exception while handling one consumed record (the Kafka loop's safety net).
DropReason = Literal[
    "stale",
    "overload",
    "decode_error",
    "encode_error",
    "model_error",
    "too_many_streams",
    "internal_error",
]
DROP_REASONS: tuple[DropReason, ...] = get_args(DropReason)
#: Stream label for drops that cannot be tied to a stream.
NO_STREAM = "_unknown"

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2, 5)
_AGE_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)


class ConsumerMetrics:
    """The consumer's counters, gauges and histograms."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames_in = Counter(
            "kva_consume_frames_in", "frames read from the input topic", ["stream"], registry=r
        )
        self.frames_out = Counter(
            "kva_consume_frames_out", "annotated frames published", ["stream"], registry=r
        )
        self.dropped = Counter(
            "kva_consume_frames_dropped",
            "frames dropped, by reason (" + ", ".join(DROP_REASONS) + ")",
            ["stream", "reason"],
            registry=r,
        )
        self.skipped = Counter(
            "kva_consume_frames_skipped",
            "messages jumped over by the latest-frame seek",
            ["topic"],
            registry=r,
        )
        self.fps = Gauge(
            "kva_consume_fps",
            "frames per second (in/out), last interval",
            ["stream", "direction"],
            registry=r,
        )
        self.inference_seconds = Histogram(
            "kva_consume_inference_seconds",
            "request latency per model and replica",
            ["model", "replica"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_errors = Counter(
            "kva_consume_inference_errors",
            "failed requests per model, replica and reason",
            ["model", "replica", "reason"],
            registry=r,
        )
        self.inflight = Gauge(
            "kva_consume_inflight_requests", "requests in flight", ["model", "replica"], registry=r
        )
        self.replica_up = Gauge(
            "kva_consume_replica_up",
            "1 when the replica is in rotation",
            ["model", "replica"],
            registry=r,
        )
        self.ejections = Counter(
            "kva_consume_replica_ejections",
            "replicas taken out of rotation",
            ["model", "replica"],
            registry=r,
        )
        self.record_errors = Counter(
            "kva_consume_record_errors",
            "exceptions while handling one consumed record, by exception type "
            "(each also counted as a drop, reason internal_error)",
            ["type"],
            registry=r,
        )
        self.frames_inflight = Gauge(
            "kva_consume_frames_inflight", "frames being processed", registry=r
        )
        self.frame_age = Histogram(
            "kva_consume_frame_age_seconds",
            "end-to-end frame age (capture to publish)",
            ["stream"],
            buckets=_AGE_BUCKETS,
            registry=r,
        )
        self.events = Counter(
            "kva_consume_events",
            "zone and line events raised (and sent to --events-topic), by type "
            "(zone_enter, zone_exit, line_cross, loiter)",
            ["stream", "type"],
            registry=r,
        )
        self.events_failed = Counter(
            "kva_consume_events_failed",
            "events that could not be queued for the events topic (local queue full)",
            ["stream"],
            registry=r,
        )
        self.line_crossings = Counter(
            "kva_consume_line_crossings",
            "tracks that crossed a counting line, by line and direction (in/out)",
            ["stream", "line", "direction"],
            registry=r,
        )
        self.zone_entries = Counter(
            "kva_consume_zone_entries", "tracks that entered a zone", ["stream", "zone"], registry=r
        )
        self.zone_occupancy = Gauge(
            "kva_consume_zone_occupancy",
            "tracks inside a zone (at its last event)",
            ["stream", "zone"],
            registry=r,
        )
        self._scene_series: dict[str, set[tuple[str, ...]]] = {}
        self._scene_lock = threading.Lock()
        for reason in DROP_REASONS:  # known label sets start at 0: dashboards draw a line
            self.dropped.labels(NO_STREAM, reason)

    def count_event(self, event: Event) -> None:
        """Count one published event (and the zone or line count it carries)."""
        stream = event.stream
        series: list[tuple[str, ...]] = [("events", stream, event.type)]
        self.events.labels(stream, event.type).inc()
        if event.type == "line_cross" and event.line and event.direction:
            self.line_crossings.labels(stream, event.line, event.direction).inc()
            series.append(("line_crossings", stream, event.line, event.direction))
        elif event.zone:
            if event.type == "zone_enter":
                self.zone_entries.labels(stream, event.zone).inc()
                series.append(("zone_entries", stream, event.zone))
            self.zone_occupancy.labels(stream, event.zone).set(event.counts.get("inside", 0))
            series.append(("zone_occupancy", stream, event.zone))
        with self._scene_lock:
            self._scene_series.setdefault(stream, set()).update(series)

    def forget(self, stream: str) -> None:
        """Remove every series of ``stream`` (it went quiet or made room for another)."""
        for counter in (self.frames_in, self.frames_out, self.frame_age):
            _remove(counter, stream)
        for reason in DROP_REASONS:
            _remove(self.dropped, stream, reason)
        for direction in ("in", "out"):
            _remove(self.fps, stream, direction)
        _remove(self.events_failed, stream)
        with self._scene_lock:
            series = self._scene_series.pop(stream, set())
        for name, *labels in series:
            _remove(getattr(self, name), *labels)


def _remove(metric: Counter | Gauge | Histogram, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never had that series
        metric.remove(*labels)
