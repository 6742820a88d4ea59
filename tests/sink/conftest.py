"""Helpers for ``kva events`` tests: events produced onto a real topic, the sink running in
a thread, a real Mosquitto and a real webhook receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kva.events import Event, FrameRef
from kva.kafka import FrameProducer
from kva.settings import KafkaSettings
from kva.sink.config import EventsSettings
from kva.sink.service import EventsService
from testbed.mqtt import Mosquitto
from tests.support.process import starts_processes
from tests.support.wait import wait_for
from tests.support.webhook import WebhookReceiver


def make_event(n: int, stream: str = "cam0", track: int | None = None) -> Event:
    """Event number ``n`` (a line crossing; ids differ by ``n``)."""
    return Event(
        type="line_cross",
        stream=stream,
        seq=n,
        capture_ns=1_700_000_000_000_000_000 + n * 100_000_000,
        track=n if track is None else track,
        label="person",
        box=(0.1, 0.2, 0.3, 0.6),
        line="walkway",
        direction="in" if n % 2 else "out",
        counts={"in": n // 2, "out": n - n // 2},
        frame=FrameRef("frames", 0, 1000 + n),
    )


class EventFeed:
    """Produces events onto a topic, remembering when each was acknowledged by Kafka."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._producer = FrameProducer(settings, acks="all")
        self.topic = topic
        self.sent: dict[str, float] = {}

    def send(self, *events: Event) -> None:
        for event in events:
            self._producer.send(self.topic, event.stream.encode(), event.to_json().encode())
            self.sent[event.id] = time.monotonic()
        assert self._producer.flush(30) == 0

    def send_raw(self, value: bytes | None, key: bytes = b"cam0") -> None:
        self._producer.send(self.topic, key, value)
        assert self._producer.flush(30) == 0


def sink_settings(kafka_settings: KafkaSettings, topic: str, **values: Any) -> EventsSettings:
    base: dict[str, Any] = {
        "bootstrap_server": kafka_settings.bootstrap_server,
        "events_topic": topic,
        "events_group": f"{topic}-sink",
        "events_dead_letter_topic": f"{topic}.dead",
        "events_metrics_port": 0,
        "events_retry_min": 0.2,
        "events_retry_max": 1.0,
        "events_ack_timeout": 2.0,
        "events_status_interval": 0.5,
    }
    base.update(values)
    return EventsSettings(**base)


@contextmanager
def running_sink(settings: EventsSettings) -> Iterator[EventsService]:
    """The sink's loop in a thread, stopped and closed at exit."""
    service = EventsService(settings)
    stop = threading.Event()
    service.start(stop)
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(service.run(stop)), daemon=True)
    thread.start()
    try:
        wait_for(service.ready, 30, "the sink's partition assignment")
        yield service
    finally:
        stop.set()
        thread.join(30)
        service.close()
    assert not thread.is_alive(), "the sink did not stop"
    assert status == [0]


def metric(service: EventsService, name: str, **labels: str) -> float:
    value = service.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
@starts_processes
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")
    yield broker
    broker.stop()


@pytest.fixture
def webhook() -> Iterator[Callable[..., WebhookReceiver]]:
    started: list[WebhookReceiver] = []

    def start(**kwargs: Any) -> WebhookReceiver:
        receiver = WebhookReceiver(**kwargs)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()
