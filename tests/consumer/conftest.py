"""Helpers for consumer tests: fixed-latency model servers, a consumer running in a thread,
its settings and metrics (Kafka helpers: ``tests.support.kafka``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from kva.consumer.config import ConsumerSettings
from kva.consumer.service import ConsumerService
from kva.kafka import Record
from kva.settings import KafkaSettings
from testbed.model_server import FixedLatencyServer
from tests.support.kafka import Topics
from tests.support.wait import wait_for


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
            wait_for(service.ready, 30, "the consumer to get a partition")
        yield service
    finally:
        stop.set()
        thread.join(10)
        service.close()
        assert not thread.is_alive(), "consumer loop did not stop"


def metadata_docs(records: list[Record]) -> list[dict[str, Any]]:
    return [json.loads(r.value or b"{}") for r in records]


def metric(service: ConsumerService, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample value from the consumer's registry (0 when absent)."""
    value = service.metrics.registry.get_sample_value(name, labels or {})
    return float(value or 0.0)


def scrape(service: ConsumerService, path: str = "/metrics") -> requests.Response:
    assert service.http is not None
    return requests.get(f"http://127.0.0.1:{service.http.port}{path}", timeout=5)
