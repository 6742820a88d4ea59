"""``kva produce``'s service run in a thread of the caller, against a real broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kva.producer.config import ProducerSettings
from kva.producer.service import ProducerService
from kva.service import run_service
from kva.settings import KafkaSettings


def producer_settings(kafka_settings: KafkaSettings, topic: str, **values: Any) -> ProducerSettings:
    """Settings for a test producer: the given broker, ``topic``, a free metrics port."""
    base: dict[str, Any] = {
        "bootstrap_server": kafka_settings.bootstrap_server,
        "frames_topic": topic,
        "producer_metrics_port": 0,
        "broker_timeout": 20,
        "flush_timeout": 5,
    }
    return ProducerSettings(**(base | values))


@contextmanager
def running(settings: ProducerSettings, start_timeout: float = 30) -> Iterator[ProducerService]:
    """A :class:`ProducerService` running in a thread until the block ends (exit status 0)."""
    service = ProducerService(settings)
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run_service(service, stop)), daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not service.started.wait(0.05):
        assert thread.is_alive(), f"producer exited early with {result}"
        assert time.monotonic() < deadline, "producer did not start"
    try:
        yield service
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "producer did not stop within 30 s"
        assert result == [0]
