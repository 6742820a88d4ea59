"""The delivery loop without a broker: backoff, refusals, stopping, parallel destinations."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from kva.sink.delivery import Backoff, Delivery
from kva.sink.destination import DELIVERED, Failed, Idle, Item, Outcome, Refused
from kva.sink.metrics import SinkMetrics
from tests.sink.conftest import make_event


class RecordingStop(threading.Event):
    """A stop event whose waits return at once and are remembered (``stop_after``: then set)."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.waits: list[float] = []
        self._stop_after = stop_after

    def wait(self, timeout: float | None = None) -> bool:
        if timeout:
            self.waits.append(timeout)
            if self._stop_after is not None and len(self.waits) >= self._stop_after:
                self.set()
        return self.is_set()


class Scripted:
    """A destination answering from a script, one list of outcomes per call (then delivered)."""

    def __init__(self, name: str, script: list[Outcome]) -> None:
        self.name = name
        self.script = script
        self.calls: list[int] = []

    def send(self, items: Sequence[Item], idle: Idle) -> list[Outcome]:
        self.calls.append(len(items))
        outcome = self.script.pop(0) if self.script else DELIVERED
        return [outcome] * len(items)

    def close(self) -> None:
        pass


class DeadLetters:
    topic = "dead"

    def __init__(self) -> None:
        self.written: list[tuple[Item, str, Refused]] = []

    def write(self, refused: Sequence[tuple[Item, str, Refused]], idle: Idle) -> bool:
        self.written += refused
        return True


def _items(n: int) -> list[Item]:
    return [Item(make_event(i), make_event(i).to_json().encode(), f"t[0]@{i}") for i in range(n)]


def _delivery(*destinations: Scripted) -> tuple[Delivery, DeadLetters, SinkMetrics]:
    dead, metrics = DeadLetters(), SinkMetrics(process=False)
    delivery = Delivery(list(destinations), dead, metrics, Backoff(0.5, 4.0))  # type: ignore[arg-type]
    return delivery, dead, metrics


def test_a_destination_that_is_down_is_retried_with_bounded_exponential_backoff() -> None:
    down = Scripted("mqtt", [Failed("down")] * 6)
    delivery, dead, metrics = _delivery(down)
    stop = RecordingStop()
    try:
        assert delivery.deliver(_items(3), lambda _s: False, stop)
    finally:
        delivery.close()
    assert stop.waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert down.calls == [3] * 7
    assert (
        metrics.registry.get_sample_value("kva_events_delivered_total", {"destination": "mqtt"})
        == 3
    )
    assert (
        metrics.registry.get_sample_value(
            "kva_events_delivery_retries_total", {"destination": "mqtt"}
        )
        == 18
    )
    assert dead.written == []


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    busy = Scripted("webhook", [Failed("HTTP 429", retry_after=2.5), Failed("HTTP 429", 300.0)])
    delivery, _dead, _metrics = _delivery(busy)
    stop = RecordingStop()
    try:
        assert delivery.deliver(_items(1), lambda _s: False, stop)
    finally:
        delivery.close()
    assert stop.waits == [2.5, 4.0]


def test_a_refusal_is_not_retried_and_goes_to_the_dead_letters() -> None:
    webhook = Scripted("webhook", [Refused(404, "HTTP 404 Not Found")])
    mqtt = Scripted("mqtt", [])
    delivery, dead, metrics = _delivery(mqtt, webhook)
    try:
        assert delivery.deliver(_items(2), lambda _s: False, RecordingStop())
    finally:
        delivery.close()
    assert webhook.calls == [2] and mqtt.calls == [2]
    assert [(entry[1], entry[2].status) for entry in dead.written] == [("webhook", 404)] * 2
    labels = {"destination": "webhook", "status": "404"}
    assert metrics.registry.get_sample_value("kva_events_dead_lettered_total", labels) == 2


def test_a_stop_while_waiting_leaves_the_batch_undelivered() -> None:
    down = Scripted("mqtt", [Failed("down")] * 100)
    delivery, _dead, _metrics = _delivery(down)
    try:
        assert not delivery.deliver(_items(1), lambda _s: False, RecordingStop(stop_after=3))
    finally:
        delivery.close()
    assert len(down.calls) == 3


def test_a_bug_in_a_destination_is_a_failure_not_a_crash() -> None:
    class Broken(Scripted):
        def send(self, items: Sequence[Item], idle: Idle) -> list[Outcome]:
            self.calls.append(len(items))
            if len(self.calls) == 1:
                raise KeyError("bug")
            return [DELIVERED] * len(items)

    broken = Broken("mqtt", [])
    delivery, _dead, _metrics = _delivery(broken)
    try:
        assert delivery.deliver(_items(1), lambda _s: False, RecordingStop())
    finally:
        delivery.close()
    assert broken.calls == [1, 1]
