"""Delivering a batch of events to every destination, at least once.

A batch is done when every destination has acknowledged each event, or refused it
for good and the event is on the dead-letter topic. Until then the caller commits
nothing: a destination that is down is retried with exponential backoff (bounded by
``--retry-max``) for as long as it takes, while the events behind the batch wait in
Kafka. A stop in the middle leaves the batch uncommitted; the next run delivers it
again (receivers de-duplicate by event id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from kva.kafka import DeliveryCallback, FrameProducer, ProduceDropped, Record
from kva.logs import RateLimitedLog
from kva.sink.destination import Delivered, Destination, Failed, Idle, Item, Outcome, Refused
from kva.sink.metrics import SinkMetrics

logger = logging.getLogger(__name__)

#: A batch the destinations finish within this many seconds never pauses the consumer.
_QUICK = 0.5
#: How often the Kafka consumer is served while the destinations work on a batch.
_STEP = 0.2
#: How long Kafka may take to store the dead letters before they are sent again.
_FLUSH_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``first``, doubled after each failure, at most ``longest``."""

    first: float
    longest: float

    def next(self, delay: float) -> float:
        return min(self.longest, delay * 2)


class DeadLetters:
    """Writes refused events to the dead-letter topic and waits until Kafka has them."""

    def __init__(self, producer: FrameProducer, topic: str, backoff: Backoff) -> None:
        self._producer = producer
        self.topic = topic
        self._backoff = backoff

    def write(self, refused: Sequence[tuple[Item, str, Refused]], idle: Idle) -> bool:
        """True once every one is stored; False when stopped first."""
        pending = list(refused)
        delay = self._backoff.first
        while pending:
            failed: list[tuple[Item, str, Refused]] = []
            for entry in pending:
                try:
                    self._producer.send(
                        self.topic, entry[0].event.stream.encode(), entry[0].body,
                        _headers(*entry), _on_delivery(entry, failed),
                    )  # fmt: skip
                except ProduceDropped:
                    failed.append(entry)
            deadline = time.monotonic() + _FLUSH_SECONDS
            while (left := self._producer.flush(_STEP)) and time.monotonic() < deadline:
                if idle(0):  # serves the consumer (and /healthz) while Kafka takes them
                    return False
            if not failed and not left:
                return True
            logger.warning(
                "dead-letter topic %s: %d event(s) not stored: trying again in %.1fs",
                self.topic, len(failed) or left, delay,
            )  # fmt: skip
            if idle(delay):
                return False
            delay = self._backoff.next(delay)
            pending = failed if not left else pending
        return True


def _headers(item: Item, destination: str, refused: Refused) -> list[tuple[str, bytes]]:
    return [
        ("kva-event-id", item.event.id.encode()),
        ("kva-dead-destination", destination.encode()),
        ("kva-dead-status", str(refused.status).encode()),
        ("kva-dead-reason", refused.detail[:300].encode()),
        ("kva-dead-source", item.where.encode()),
    ]


def _on_delivery(
    entry: tuple[Item, str, Refused], failed: list[tuple[Item, str, Refused]]
) -> DeliveryCallback:
    def report(error: str | None, _record: Record | None) -> None:
        if error is not None:
            failed.append(entry)

    return report


class Delivery:
    """Hands each batch to every destination until all of them are done with it."""

    def __init__(
        self,
        destinations: Sequence[Destination],
        dead_letters: DeadLetters,
        metrics: SinkMetrics,
        backoff: Backoff,
    ) -> None:
        self.destinations = list(destinations)
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._backoff = backoff
        self._log = RateLimitedLog(logger, interval=10.0)
        self._down_since: dict[str, float] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, len(self.destinations)), thread_name_prefix="kva-deliver"
        )
        for destination in self.destinations:
            metrics.destination_up.labels(destination.name).set(0)
            metrics.delivered.labels(destination.name)

    def deliver(self, items: Sequence[Item], idle: Idle, stop: threading.Event) -> bool:
        """True when every destination is done with ``items``; False when stopped first.

        The destinations work in parallel, each in its own thread, so one that is down
        does not hold up the others; this thread meanwhile keeps the Kafka consumer
        alive through ``idle`` (which pauses it).
        """
        refused: dict[str, list[tuple[Item, str, Refused]]] = {}
        futures: list[Future[bool]] = []
        for destination in self.destinations:
            found: list[tuple[Item, str, Refused]] = []
            refused[destination.name] = found
            futures.append(self._pool.submit(self._to, destination, items, stop, found))
        pending = wait(futures, timeout=_QUICK)[1]
        while pending:
            idle(_STEP)
            pending = wait(pending, timeout=0)[1]
        if not all(future.result() for future in futures):
            return False
        dead = [entry for found in refused.values() for entry in found]
        if dead:
            return self._dead_letters.write(dead, idle)
        return True

    def _to(
        self,
        destination: Destination,
        items: Sequence[Item],
        stop: threading.Event,
        refused: list[tuple[Item, str, Refused]],
    ) -> bool:
        """Deliver ``items`` to one destination until done (in a worker thread)."""
        name = destination.name
        pending = list(items)
        delay = self._backoff.first
        started = time.monotonic()
        while pending:
            outcomes = self._send(destination, pending, stop)
            retry: list[Item] = []
            waits: list[float] = []
            failure: Failed | None = None
            for item, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, Delivered):
                    self._metrics.delivered.labels(name).inc()
                elif isinstance(outcome, Refused):
                    self._refused(name, item, outcome)
                    refused.append((item, name, outcome))
                else:
                    retry.append(item)
                    waits.append(outcome.retry_after or 0.0)
                    failure = failure or outcome
            if not retry:
                self._up(name)
                break
            if stop.is_set():
                return False
            self._down(name, len(retry), failure.detail if failure else "?", delay)
            if stop.wait(min(self._backoff.longest, max(delay, *waits))):
                return False
            delay = self._backoff.next(delay)
            pending = retry
        self._metrics.delivery_seconds.labels(name).observe(time.monotonic() - started)
        return True

    def _send(
        self, destination: Destination, items: Sequence[Item], stop: threading.Event
    ) -> list[Outcome]:
        try:
            return destination.send(items, stop.wait)
        except Exception as exc:  # noqa: BLE001 - a bug in one destination must not lose events
            self._log.failure((destination.name, "bug"), f"a batch for {destination.name}", exc)
            return [Failed(f"{type(exc).__name__}: {exc}")] * len(items)

    def _refused(self, name: str, item: Item, outcome: Refused) -> None:
        self._metrics.dead_lettered.labels(name, str(outcome.status)).inc()
        self._log.log(
            (name, "refused", outcome.status), logging.WARNING,
            "%s refused event %s (%s) of stream %s: %s; not retried, sent to the "
            "dead-letter topic %s", name, item.event.id, item.event.type, item.event.stream,
            outcome.detail, self._dead_letters.topic,
        )  # fmt: skip

    def _down(self, name: str, count: int, detail: str, delay: float) -> None:
        self._metrics.destination_up.labels(name).set(0)
        self._metrics.retries.labels(name).inc(count)
        first = name not in self._down_since
        self._down_since.setdefault(name, time.monotonic())
        self._log.log(
            (name, "down"), logging.WARNING if first else logging.INFO,
            "%s: %d event(s) not delivered (%s): trying again in %.1fs; the rest wait in Kafka",
            name, count, detail, delay,
        )  # fmt: skip

    def _up(self, name: str) -> None:
        self._metrics.destination_up.labels(name).set(1)
        since = self._down_since.pop(name, None)
        if since is not None:
            logger.info("%s: delivering again after %.1fs", name, time.monotonic() - since)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for destination in self.destinations:
            destination.close()
