"""Helpers for consumer tests: test model servers, a consumer running in a thread,
frame producers and output readers on the real broker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import pytest
import requests

from kva.consumer.config import ConsumerSettings
from kva.consumer.service import ConsumerService
from kva.frame import Frame
from kva.kafka import FrameProducer, LatestFrameConsumer, Record
from kva.settings import KafkaSettings
from tests.consumer.model_server import FixedLatencyServer


def jpeg(width: int = 640, height: int = 360, grey: int = 100, text: str = "") -> bytes:
    """A real JPEG of a flat image with a bit of structure."""
    image = np.full((height, width, 3), grey, np.uint8)
    cv2.circle(image, (width // 2, height // 2), height // 4, (grey // 2, 200, 255 - grey), -1)
    if text:
        cv2.putText(image, text, (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 0, 0), 2)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def make_frame(stream: str, seq: int, data: bytes, width: int = 640, height: int = 360) -> Frame:
    return Frame(stream, seq, time.time_ns(), width, height, data)


@pytest.fixture
def model_servers() -> Iterator[Callable[..., FixedLatencyServer]]:
    """Factory of started fixed-latency servers, all stopped at the end."""
    started: list[FixedLatencyServer] = []

    def start(*args: Any, **kwargs: Any) -> FixedLatencyServer:
        server = FixedLatencyServer(*args, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@dataclass
class Topics:
    input: str
    output: str
    metadata: str


@pytest.fixture
def topics(make_topic: Callable[..., str]) -> Topics:
    return Topics(
        make_topic(partitions=1, suffix="in"),
        make_topic(partitions=1, suffix="out"),
        make_topic(partitions=1, suffix="meta"),
    )


def consumer_settings(
    kafka_settings: KafkaSettings, topics: Topics, group: str, **values: Any
) -> ConsumerSettings:
    base: dict[str, Any] = {
        "bootstrap_server": kafka_settings.bootstrap_server,
        "consume_input_topic": topics.input,
        "consume_output_topic": topics.output,
        "consume_metadata_topic": topics.metadata,
        "consume_group_id": group,
        "consume_metrics_port": 0,
        "consume_status_interval": 1.0,
        "consume_start_timeout": 10.0,
    }
    base.update(values)
    return ConsumerSettings(**base)


@contextmanager
def running_consumer(
    settings: ConsumerSettings, wait_ready: bool = True
) -> Iterator[ConsumerService]:
    """A ConsumerService running its loop in a thread; stopped and closed at exit."""
    stop = threading.Event()
    service = ConsumerService(settings)
    service.start(stop)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(service.run(stop)), daemon=True)
    thread.start()
    try:
        if wait_ready:
            wait_for(service.ready, 30, "consumer got no partition")
        yield service
    finally:
        stop.set()
        thread.join(10)
        service.close()
        assert not thread.is_alive(), "consumer loop did not stop"


def wait_for(condition: Callable[[], Any], timeout: float, message: str, step: float = 0.05) -> Any:
    """Poll ``condition`` until truthy (returned) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s: {message}")
        event.wait(step)


class Reader:
    """Reads every message of a topic from the start, in a background thread."""

    def __init__(self, settings: KafkaSettings, topic: str, group: str) -> None:
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = LatestFrameConsumer(settings, [topic], group, max_lag=None)
        wait_for(lambda: self._poll_once() or self._consumer.assignment, 30, "reader not assigned")
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _poll_once(self) -> bool:
        record = self._consumer.poll(0.1)
        if record is not None:
            with self._lock:
                self.records.append(record)
        return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._poll_once()

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def count(self) -> int:
        with self._lock:
            return len(self.records)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


@pytest.fixture
def reader(kafka_settings: KafkaSettings, unique_name: str) -> Iterator[Callable[[str], Reader]]:
    readers: list[Reader] = []

    def make(topic: str) -> Reader:
        r = Reader(kafka_settings, topic, f"{unique_name}-reader-{len(readers)}")
        readers.append(r)
        return r

    yield make
    for r in readers:
        r.close()


@dataclass
class Feeder:
    """Produces frames of one or more streams at a rate in a background thread."""

    settings: KafkaSettings
    topic: str
    fps: float
    streams: tuple[str, ...] = ("cam0",)
    make_data: Callable[[int], bytes] = field(default=lambda seq: jpeg(grey=seq % 200 + 20))
    sent: int = 0

    def __post_init__(self) -> None:
        self._producer = FrameProducer(self.settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def _loop(self) -> None:
        seq = 0
        interval = 1.0 / self.fps
        next_at = time.monotonic()
        while not self._stop.is_set():
            data = self.make_data(seq)
            for stream in self.streams:
                self._producer.send_frame(self.topic, make_frame(stream, seq, data))
            self.sent = seq = seq + 1
            self._producer.poll(0)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        self._producer.flush(5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def send(
    settings: KafkaSettings,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = FrameProducer(settings)
    producer.send(topic, key, value, headers or [])
    assert producer.flush(10) == 0


def send_frame(settings: KafkaSettings, topic: str, frame: Frame) -> None:
    producer = FrameProducer(settings)
    producer.send_frame(topic, frame)
    assert producer.flush(10) == 0


def metadata_docs(records: list[Record]) -> list[dict[str, Any]]:
    return [json.loads(r.value or b"{}") for r in records]


def metric(service: ConsumerService, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample value from the consumer's registry (0 when absent)."""
    value = service.metrics.registry.get_sample_value(name, labels or {})
    return float(value or 0.0)


def scrape(service: ConsumerService, path: str = "/metrics") -> requests.Response:
    assert service.http is not None
    return requests.get(f"http://127.0.0.1:{service.http.port}{path}", timeout=5)
