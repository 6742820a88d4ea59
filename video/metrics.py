"""Prometheus metrics of one viewer app (its own registry: no module-level state)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kva.video.store import FrameStore


class ViewerMetrics:
    """Counters the reader and the HTTP handlers update."""

    def __init__(self, store: FrameStore, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.viewers = Gauge(
            "kva_video_viewers", "MJPEG clients connected now", registry=self.registry
        )
        self.frames_sent = Counter(
            "kva_video_frames_sent",
            "JPEG frames sent to clients",
            ["stream"],
            registry=self.registry,
        )
        self.bytes_sent = Counter(
            "kva_video_sent_bytes",
            "bytes of MJPEG/JPEG sent to clients",
            ["stream"],
            registry=self.registry,
        )
        self.frames_received = Counter(
            "kva_video_frames_received",
            "frames read from Kafka",
            ["stream"],
            registry=self.registry,
        )
        self.messages_rejected = Counter(
            "kva_video_messages_rejected",
            "Kafka messages not used, by reason",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.events_received = Counter(
            "kva_video_events_received",
            "events read from the events topic and kept, by event type",
            ["stream", "type"],
            registry=self.registry,
        )
        self.record_errors = Counter(
            "kva_video_record_errors",
            "exceptions while handling one consumed record, by exception type "
            "(each also counted as a rejection, reason internal_error)",
            ["type"],
            registry=self.registry,
        )
        self.registry.register(_StreamCollector(store))


class _StreamCollector(Collector):
    """Per-stream fps and frame age, read from the store at scrape time."""

    def __init__(self, store: FrameStore) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        fps = GaugeMetricFamily(
            "kva_video_stream_fps", "frames per second arriving per stream", labels=["stream"]
        )
        age = GaugeMetricFamily(
            "kva_video_frame_age_seconds",
            "capture -> now of the newest frame per stream",
            labels=["stream"],
        )
        streams = GaugeMetricFamily("kva_video_streams", "streams held in memory")
        now, now_ns = self._store.now(), time.time_ns()
        slots = self._store.slots()
        for slot in slots:
            fps.add_metric([slot.stream_id], slot.fps(now))
            current = slot.current
            if current is not None:
                age.add_metric([slot.stream_id], max(0.0, current.frame.age_seconds(now_ns)))
        streams.add_metric([], len(slots))
        yield from (fps, age, streams)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
