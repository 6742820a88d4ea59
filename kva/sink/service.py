"""``kva events`` wired together: the events topic in, every destination out, commits last.

The loop: read a batch (at most ``--max-in-flight`` records), parse each event
(a record that is no event is counted by reason and skipped), deliver the batch to
every destination (:mod:`kva.sink.delivery`), and only then commit its offsets.
While a destination is down the consumer is paused, so nothing more is read: events
wait in Kafka, memory stays bounded, and the lag (a metric) grows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from kva.events import Event, EventError
from kva.httpd import ServiceHttpServer
from kva.kafka import (
    EVENT_TOPIC_CONFIG,
    AtLeastOnceConsumer,
    FrameProducer,
    Record,
    TopicSpec,
    ensure_topics,
    wait_for_broker,
)
from kva.logs import RateLimitedLog
from kva.sink.config import EventsSettings
from kva.sink.delivery import Backoff, DeadLetters, Delivery
from kva.sink.destination import Destination, Item
from kva.sink.dlstreamer import MetadataRelay
from kva.sink.metrics import SinkMetrics
from kva.sink.mqtt import MqttDestination, MqttFramePublisher, MqttOptions
from kva.sink.webhook import WebhookDestination

logger = logging.getLogger(__name__)

#: The loop counts as hung (``/healthz`` 503) after this many seconds without a turn.
LOOP_STALL_SECONDS = 15.0
SESSION_TIMEOUT_MS = 10000


def mqtt_options(settings: EventsSettings, client_id: str) -> MqttOptions:
    """How to reach the MQTT broker of ``settings`` (which has one)."""
    password = settings.events_mqtt_password
    return MqttOptions(
        url=settings.events_mqtt or "",
        client_id=client_id,
        username=settings.events_mqtt_username,
        password=password.get_secret_value() if password else None,
        ca_file=settings.events_mqtt_ca_file,
        retry_max=settings.events_retry_max,
    )


def build_destinations(settings: EventsSettings) -> list[Destination]:
    """The destinations ``settings`` configure (MQTT starts connecting in the background)."""
    s = settings
    destinations: list[Destination] = []
    if s.events_mqtt is not None:
        options = mqtt_options(s, s.events_mqtt_client_id)
        destinations.append(MqttDestination(options, s.events_mqtt_topic, s.events_ack_timeout))
    if s.events_webhook is not None:
        secret = s.events_webhook_secret
        destinations.append(
            WebhookDestination(
                s.events_webhook,
                secret.get_secret_value().encode() if secret else None,
                s.events_webhook_timeout,
            )
        )
    return destinations


class EventsService:
    """One sink process: build with settings, ``start()``, then ``run(stop)``."""

    def __init__(self, settings: EventsSettings, metrics: SinkMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or SinkMetrics()
        self.http: ServiceHttpServer | None = None
        self.delivery: Delivery | None = None
        self._consumer: AtLeastOnceConsumer | None = None
        self._producer: FrameProducer | None = None
        self._relay: MetadataRelay | None = None
        self._frames_mqtt: MqttFramePublisher | None = None
        self._held: deque[Record] = deque()
        self._stop = threading.Event()
        self._last_turn = time.monotonic()
        self._next_status = 0.0
        self._log = RateLimitedLog(logger, interval=10.0)

    def start(self, stop: threading.Event) -> None:
        """Reach Kafka, create the topics, connect the destinations, serve metrics.

        Raises:
            KafkaUnavailable: no broker in time, or the topics cannot be created.
            OSError: the metrics port cannot be bound.
        """
        s = self.settings
        self._stop = stop
        wait_for_broker(s)
        ensure_topics(s, [TopicSpec(s.events_topic, config=EVENT_TOPIC_CONFIG)], s.broker_timeout)
        dead_letters = dict(EVENT_TOPIC_CONFIG) | s.dead_letter_retention().topic_config()
        ensure_topics(  # the sink writes the dead letters: it applies their retention
            s,
            [TopicSpec(s.events_dead_letter_topic, partitions=1, config=dead_letters)],
            timeout=s.broker_timeout,
            apply_configs=True,
        )
        backoff = Backoff(s.events_retry_min, s.events_retry_max)
        self._producer = FrameProducer(s, acks="all", linger_ms=5)
        destinations = build_destinations(s)
        self.delivery = Delivery(
            destinations,
            DeadLetters(self._producer, s.events_dead_letter_topic, backoff),
            self.metrics,
            backoff,
        )
        self._consumer = AtLeastOnceConsumer(
            s, [s.events_topic], s.events_group, session_timeout_ms=SESSION_TIMEOUT_MS
        )
        self.http = self._serve_metrics()
        if s.events_dlstreamer_topic and s.events_mqtt:
            self._frames_mqtt = MqttFramePublisher(
                mqtt_options(s, f"{s.events_mqtt_client_id}-frames")
            )
            self._relay = MetadataRelay(
                s,
                s.events_predictions_topic,
                f"{s.events_group}-dlstreamer",
                s.events_dlstreamer_topic,
                self._frames_mqtt.publish,
                self.metrics,
            )
            self._relay.start(stop)
            logger.info(
                "publishing each frame's objects from %s to MQTT %s (DL Streamer format)",
                s.events_predictions_topic,
                s.events_dlstreamer_topic,
            )
        logger.info(
            "delivering %s (group %s) to %s; refused events to %s; metrics on http://%s:%d/metrics",
            s.events_topic,
            s.events_group,
            " and ".join(s.destination_names()),
            s.events_dead_letter_topic,
            s.events_metrics_host,
            self.http.port,
        )

    def _serve_metrics(self) -> ServiceHttpServer:
        host, port = self.settings.events_metrics_host, self.settings.events_metrics_port
        try:
            return ServiceHttpServer(
                host, port, ready=self.ready, healthy=self.healthy, registry=self.metrics.registry
            ).start()
        except OSError as exc:
            raise OSError(
                f"cannot serve metrics on {host}:{port}: {exc} (choose another --metrics-port)"
            ) from None

    def ready(self) -> bool:
        return self._consumer is not None and bool(self._consumer.assignment)

    def healthy(self) -> bool:
        return time.monotonic() - self._last_turn < LOOP_STALL_SECONDS

    def run(self, stop: threading.Event) -> int:
        """Read, deliver, commit until ``stop`` is set; the exit status."""
        if self._consumer is None or self.delivery is None or self._producer is None:
            return 0  # stopped during start
        self._stop = stop
        consumer, limit = self._consumer, self.settings.broker_unavailable_exit
        while not stop.is_set():
            self._tick()
            batch = self._read_batch(consumer)
            if batch and not self._handle(batch, consumer, self.delivery):
                break  # stopped in the middle: the batch is not committed
            if limit and consumer.health.down_for() > limit:
                logger.error("Kafka unreachable for more than %gs: exiting", limit)
                return 1
        return 0

    def _read_batch(self, consumer: AtLeastOnceConsumer) -> list[Record]:
        """What is there now, up to ``--max-in-flight`` records (waits 0.2 s for the first)."""
        limit = self.settings.events_max_in_flight
        batch: list[Record] = []
        while self._held and len(batch) < limit:
            batch.append(self._held.popleft())
        timeout = 0.0 if batch else 0.2
        while len(batch) < limit:
            record = consumer.poll(timeout)
            if record is None:
                break
            batch.append(record)
            timeout = 0.0
        return batch

    def _handle(
        self, batch: list[Record], consumer: AtLeastOnceConsumer, delivery: Delivery
    ) -> bool:
        """Deliver and commit one batch; False when stopped before it was delivered."""
        self.metrics.in_flight.set(len(batch))
        items = [item for item in map(self._parse, batch) if item is not None]
        if items and not delivery.deliver(items, self._idle, self._stop):
            return False
        done: dict[tuple[str, int], int] = {}
        for record in batch:
            key = (record.topic, record.partition)
            done[key] = max(done.get(key, -1), record.offset)
        if consumer.commit(done):
            self.metrics.committed.inc(len(batch))
        self.metrics.in_flight.set(0)
        if consumer.paused:
            consumer.resume()
        return True

    def _parse(self, record: Record) -> Item | None:
        """The event of ``record``; None (counted and logged) when it is no event."""
        try:
            event = Event.from_json(record.value)
        except EventError as exc:
            self.metrics.corrupt.labels(exc.reason).inc()
            self._log.log(
                ("corrupt", exc.reason), logging.WARNING,
                "skipped %s: not an event (%s)", record.where, exc,
            )  # fmt: skip
            return None
        self.metrics.received.labels(event.type).inc()
        return Item(event, record.value or b"", record.where)

    def _idle(self, seconds: float) -> bool:
        """Wait ``seconds`` with the consumer paused but alive; True when stopping."""
        consumer = self._consumer
        if consumer is None:
            return self._stop.wait(seconds)
        if seconds > 0 and not consumer.paused:
            consumer.pause()
        deadline = time.monotonic() + seconds
        while True:
            self._tick()
            record = consumer.poll(max(0.0, min(0.2, deadline - time.monotonic())))
            if record is not None:  # fetched before the pause took effect: keep it, in order
                self._held.append(record)
                consumer.pause()  # again, in case a rebalance brought partitions meanwhile
            if self._stop.is_set() or time.monotonic() >= deadline:
                return self._stop.is_set()

    def _tick(self) -> None:
        """The loop is alive; every ``--status-interval`` the lag and a status line."""
        self._last_turn = now = time.monotonic()
        if now < self._next_status or self._consumer is None:
            return
        self._next_status = now + self.settings.events_status_interval
        lags = self._consumer.lag(timeout=1.0)
        for (topic, partition), lag in lags.items():
            self.metrics.lag.labels(topic, str(partition)).set(lag)
        self._last_turn = time.monotonic()
        waiting = sum(lags.values())
        if waiting:
            logger.info(
                "%d event(s) waiting in Kafka%s",
                waiting,
                " (paused: a destination is not acknowledging)" if self._consumer.paused else "",
            )

    def close(self) -> None:
        """Close the destinations, flush the dead letters, leave the group (bounded)."""
        if self._relay is not None:
            self._stop.set()
            self._relay.close()
        if self._frames_mqtt is not None:
            self._frames_mqtt.close()
        if self.delivery is not None:
            self.delivery.close()
        if self._producer is not None and self._producer.flush(10.0):
            logger.warning("dead-letter messages not delivered at shutdown")
        if self._consumer is not None:
            self._consumer.close()
        if self.http is not None:
            self.http.stop()
        logger.info("events sink stopped")
