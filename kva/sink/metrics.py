"""Prometheus metrics of ``kva events``, in their own registry (one per service instance)."""

from __future__ import annotations

from typing import get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from kva.events import EventErrorReason

DESTINATIONS = ("mqtt", "webhook")


class SinkMetrics:
    """All ``kva_events_*`` metrics; ``registry`` is what ``/metrics`` serves."""

    def __init__(self, registry: CollectorRegistry | None = None, process: bool = True) -> None:
        self.registry = registry or CollectorRegistry()
        if process and registry is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        r = self.registry
        self.received = Counter(
            "kva_events_received", "valid events read from Kafka", ["type"], registry=r
        )
        self.corrupt = Counter(
            "kva_events_corrupt",
            "records on the events topic that are no event (skipped), by reason",
            ["reason"],
            registry=r,
        )
        self.delivered = Counter(
            "kva_events_delivered",
            "events a destination acknowledged (MQTT PUBACK, webhook 2xx)",
            ["destination"],
            registry=r,
        )
        self.retries = Counter(
            "kva_events_delivery_retries",
            "failed delivery attempts that will be tried again",
            ["destination"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "kva_events_dead_lettered",
            "events a destination refused for good, sent to the dead-letter topic",
            ["destination", "status"],
            registry=r,
        )
        self.committed = Counter(
            "kva_events_committed", "events whose offset was committed", registry=r
        )
        self.destination_up = Gauge(
            "kva_events_destination_up",
            "1 when the destination's last attempt succeeded",
            ["destination"],
            registry=r,
        )
        self.in_flight = Gauge(
            "kva_events_in_flight", "events read and not yet committed", registry=r
        )
        self.lag = Gauge(
            "kva_events_consumer_lag",
            "events on the topic not yet delivered and committed (messages)",
            ["topic", "partition"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "kva_events_delivery_seconds",
            "time from handing a batch of events to a destination until it acknowledged all",
            ["destination"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
            registry=r,
        )
        self.frames_published = Counter(
            "kva_events_dlstreamer_frames_published",
            "frames whose objects were published in DL Streamer Pipeline Server's format",
            registry=r,
        )
        self.frames_dropped = Counter(
            "kva_events_dlstreamer_frames_dropped",
            "frames not published in DL Streamer's format, by reason",
            ["reason"],
            registry=r,
        )
        for reason in get_args(EventErrorReason):
            self.corrupt.labels(reason)
