"""Prometheus metrics of the producer, in their own registry (one per service instance)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

#: Why a frame was not delivered.
DROP_REASONS = ("stale", "buffer_full", "delivery_failed", "encode_error", "oversized")
STAGES = ("capture", "encode", "produce")


class _CameraGauge(Gauge):
    """``kva_producer_camera_up``: its first series of a stream (set when the camera is
    built) also creates that stream's series of every known drop reason at 0, so a healthy
    run shows a flat line instead of no series (children of this gauge have no hook)."""

    on_new_stream: Callable[[str], None] | None = None

    def labels(self, *values: Any, **labels: Any) -> _CameraGauge:
        hook = self.on_new_stream
        if hook is not None:
            hook(str(values[0] if values else labels["stream"]))
        return super().labels(*values, **labels)


class ProducerMetrics:
    """All ``kva_producer_*`` metrics; ``registry`` is what ``/metrics`` serves."""

    def __init__(self, registry: CollectorRegistry | None = None, process: bool = True) -> None:
        self.registry = registry or CollectorRegistry()
        if process and registry is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        r = self.registry
        self.frames_read = Counter(
            "kva_producer_frames_read", "frames taken from the source", ["stream"], registry=r
        )
        self.frames_encoded = Counter(
            "kva_producer_frames_encoded", "frames encoded to JPEG", ["stream"], registry=r
        )
        self.frames_sent = Counter(
            "kva_producer_frames_sent", "frames acknowledged by Kafka", ["stream"], registry=r
        )
        self.frames_dropped = Counter(
            "kva_producer_frames_dropped",
            "frames not delivered, by reason (stale = replaced by a newer camera frame)",
            ["stream", "reason"],
            registry=r,
        )
        self.bytes_sent = Counter(
            "kva_producer_bytes_sent", "JPEG bytes acknowledged by Kafka", ["stream"], registry=r
        )
        self.encode_seconds = Histogram(
            "kva_producer_encode_seconds",
            "resize + JPEG encode time per frame",
            ["stream"],
            buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256),
            registry=r,
        )
        self.stage_cpu_seconds = Counter(
            "kva_producer_stage_cpu_seconds",
            "CPU time of the camera thread by stage (capture, encode, produce)",
            ["stream", "stage"],
            registry=r,
        )
        self.camera_up = _CameraGauge(
            "kva_producer_camera_up", "1 while the camera delivers frames", ["stream"], registry=r
        )
        self.camera_up.on_new_stream = self._zero_drops
        self.reconnects = Counter(
            "kva_producer_reconnects",
            "reconnect attempts after a camera failure",
            ["stream"],
            registry=r,
        )
        self.source_errors = Counter(
            "kva_producer_source_errors", "camera open/read failures", ["stream"], registry=r
        )
        self.cameras = Gauge("kva_producer_cameras", "cameras configured", registry=r)

    def _zero_drops(self, stream: str) -> None:
        for reason in DROP_REASONS:
            self.frames_dropped.labels(stream, reason)

    def dropped(self, stream: str, reason: str, count: int = 1) -> None:
        """Count ``count`` frames of ``stream`` dropped for ``reason``."""
        if count:
            self.frames_dropped.labels(stream, reason).inc(count)

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample (tests and progress lines)."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found
