"""``kva events`` against a real Kafka, a real Mosquitto and a real webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kva.events import Event
from kva.settings import KafkaSettings
from testbed.mqtt import Mosquitto, MqttCollector, make_tls_files
from tests.sink.conftest import EventFeed, make_event, metric, running_sink, sink_settings
from tests.support.kafka import Reader
from tests.support.wait import wait_for
from tests.support.webhook import WebhookReceiver

SECRET = "s3cret-key"  # noqa: S105 - a test key


def _ids(payloads: list[bytes]) -> list[str]:
    return [json.loads(p)["id"] for p in payloads]


def test_every_event_reaches_mqtt_and_the_webhook_signed(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    mosquitto: Mosquitto,
    webhook: Callable[..., WebhookReceiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = make_topic(partitions=2)
    receiver = webhook()
    collector = MqttCollector(mosquitto.port, "kva/#")
    monkeypatch.setenv("KVA_EVENTS_WEBHOOK_SECRET", SECRET)
    settings = sink_settings(
        kafka_settings, topic, events_mqtt=mosquitto.url, events_webhook=receiver.url
    )
    events = [make_event(n, stream=f"cam{n % 3}") for n in range(30)]
    feed = EventFeed(kafka_settings, topic)
    try:
        with running_sink(settings) as sink:
            feed.send(*events)
            wait_for(lambda: len(receiver.snapshot()) >= 30, 30, "30 webhook posts")
            wait_for(lambda: len(collector.snapshot()) >= 30, 30, "30 MQTT messages")
            wait_for(lambda: metric(sink, "kva_events_committed_total") == 30, 10, "commits")
            wait_for(
                lambda: (
                    sum(
                        metric(sink, "kva_events_consumer_lag", topic=topic, partition=str(p))
                        for p in (0, 1)
                    )
                    == 0
                    and metric(sink, "kva_events_consumer_lag", topic=topic, partition="0") == 0
                ),
                10,
                "no lag",
            )
            assert metric(sink, "kva_events_delivered_total", destination="mqtt") == 30
            assert metric(sink, "kva_events_delivered_total", destination="webhook") == 30
    finally:
        collector.close()
    expected = {e.id: e for e in events}
    posts = receiver.snapshot()
    assert sorted(p.event_id for p in posts) == sorted(expected)
    for post in posts:
        assert post.headers["content-type"] == "application/json"
        digest = hmac.new(SECRET.encode(), post.body, hashlib.sha256).hexdigest()
        assert post.headers["x-kva-signature"] == f"sha256={digest}"
        assert Event.from_json(post.body) == expected[post.event_id]
    messages = collector.snapshot()
    assert sorted(_ids([m.payload for m in messages])) == sorted(expected)
    for message in messages:
        event = Event.from_json(message.payload)
        assert message.topic == f"kva/{event.stream}/line_cross"
    # per stream, in order (a stream is one key, so one partition)
    for stream in ("cam0", "cam1", "cam2"):
        seqs = [json.loads(p.body)["seq"] for p in posts if json.loads(p.body)["stream"] == stream]
        assert seqs == sorted(seqs)


def test_a_wrong_signature_key_does_not_verify(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    webhook: Callable[..., WebhookReceiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = make_topic()
    receiver = webhook()
    monkeypatch.setenv("KVA_EVENTS_WEBHOOK_SECRET", SECRET)
    with running_sink(sink_settings(kafka_settings, topic, events_webhook=receiver.url)):
        EventFeed(kafka_settings, topic).send(make_event(1))
        (post,) = wait_for(receiver.snapshot, 30, "the post")
    wrong = hmac.new(b"other", post.body, hashlib.sha256).hexdigest()
    assert post.headers["x-kva-signature"] != f"sha256={wrong}"
    tampered = post.body.replace(b'"in"', b'"out"')
    good = hmac.new(SECRET.encode(), tampered, hashlib.sha256).hexdigest()
    assert post.headers["x-kva-signature"] != f"sha256={good}"


def test_a_4xx_goes_to_the_dead_letter_topic_and_the_sink_moves_on(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    webhook: Callable[..., WebhookReceiver],
    reader: Callable[[str], Reader],
) -> None:
    topic = make_topic()
    answers = {"503": 2}

    def respond(post: object) -> int:
        body = json.loads(post.body)  # type: ignore[attr-defined]
        if body["track"] == 3:
            return 422
        if body["track"] == 5 and answers["503"]:
            answers["503"] -= 1
            return 503  # not now: retried
        return 200

    receiver = webhook(respond=respond)
    settings = sink_settings(kafka_settings, topic, events_webhook=receiver.url)
    events = [make_event(n) for n in range(8)]
    with running_sink(settings) as sink:
        dead = reader(settings.events_dead_letter_topic)
        EventFeed(kafka_settings, topic).send(*events)
        wait_for(lambda: len(receiver.snapshot()) >= 7, 30, "7 delivered posts")
        (record,) = wait_for(dead.snapshot, 30, "the dead letter")
        wait_for(lambda: metric(sink, "kva_events_committed_total") == 8, 10, "all committed")
        assert (
            metric(sink, "kva_events_dead_lettered_total", destination="webhook", status="422") == 1
        )
        assert metric(sink, "kva_events_delivery_retries_total", destination="webhook") >= 2
    assert sorted(p.event_id for p in receiver.snapshot()) == sorted(
        e.id for e in events if e.track != 3
    )
    assert [s for s, _ in receiver.refused].count(422) == 1  # not retried
    assert record.value == events[3].to_json().encode()
    headers = {k: v for k, v in record.headers}
    assert headers["kva-dead-status"] == b"422"
    assert headers["kva-dead-destination"] == b"webhook"
    assert headers["kva-event-id"] == events[3].id.encode()


def test_corrupt_records_are_counted_and_skipped(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    webhook: Callable[..., WebhookReceiver],
) -> None:
    topic = make_topic()
    receiver = webhook()
    feed = EventFeed(kafka_settings, topic)
    with running_sink(sink_settings(kafka_settings, topic, events_webhook=receiver.url)) as sink:
        feed.send(make_event(1))
        feed.send_raw(b"")
        feed.send_raw(b"\xff\xfe not json")
        feed.send_raw(make_event(2).to_json().replace('"seq":2', '"seq":3').encode())  # id mismatch
        feed.send_raw(b"[1, 2]")
        feed.send(make_event(4))
        wait_for(lambda: len(receiver.snapshot()) >= 2, 30, "the two good events")
        wait_for(lambda: metric(sink, "kva_events_committed_total") == 6, 10, "all committed")
        assert metric(sink, "kva_events_corrupt_total", reason="empty") == 1
        assert metric(sink, "kva_events_corrupt_total", reason="bad_json") == 2
        assert metric(sink, "kva_events_corrupt_total", reason="bad_schema") == 1
    assert [p.event_id for p in receiver.snapshot()] == [make_event(1).id, make_event(4).id]


def test_an_unreachable_broker_at_start_is_retried_and_events_wait_in_kafka(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = make_topic()
    broker = Mosquitto(tmp_path / "mosquitto", start=False)  # its port: nobody listens yet
    settings = sink_settings(kafka_settings, topic, events_mqtt=broker.url, events_max_in_flight=5)
    events = [make_event(n) for n in range(40)]
    with caplog.at_level(logging.INFO), running_sink(settings) as sink:
        EventFeed(kafka_settings, topic).send(*events)
        wait_for(
            lambda: metric(sink, "kva_events_consumer_lag", topic=topic, partition="0") >= 35,
            20,
            "the lag metric showing the waiting events",
        )
        assert metric(sink, "kva_events_in_flight") <= 5  # the rest waits in Kafka
        assert metric(sink, "kva_events_destination_up", destination="mqtt") == 0
        try:
            broker.start()
            collector = MqttCollector(broker.port, "kva/#")
            wait_for(lambda: metric(sink, "kva_events_committed_total") == 40, 60, "delivery")
            wait_for(
                lambda: metric(sink, "kva_events_consumer_lag", topic=topic, partition="0") == 0,
                10,
                "no lag",
            )
            collector.close()
        finally:
            broker.stop()
    assert f"mqtt: cannot reach mqtt://127.0.0.1:{broker.port}" in caplog.text
    assert "events wait in Kafka" in caplog.text


@pytest.fixture
def secure_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto that speaks only TLS (a test CA) and wants a user name and password."""
    broker = Mosquitto(
        tmp_path / "mosquitto",
        tls=make_tls_files(tmp_path / "tls"),
        users={"sink": "sink-pa55", "reader": "reader-pa55"},
    )
    yield broker
    broker.stop()


def test_tls_and_a_password_from_the_environment(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    secure_mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = make_topic()
    tls = secure_mosquitto.tls
    assert tls is not None and secure_mosquitto.url.startswith("mqtts://")
    collector = MqttCollector(
        secure_mosquitto.port, "kva/#", ca_file=tls.ca, username="reader", password="reader-pa55"
    )
    monkeypatch.setenv("KVA_EVENTS_MQTT_PASSWORD", "sink-pa55")
    settings = sink_settings(
        kafka_settings,
        topic,
        events_mqtt=secure_mosquitto.url,
        events_mqtt_username="sink",
        events_mqtt_ca_file=tls.ca,
    )
    try:
        with caplog.at_level(logging.DEBUG), running_sink(settings):
            EventFeed(kafka_settings, topic).send(make_event(7))
            (message,) = wait_for(collector.snapshot, 30, "the event over TLS")
    finally:
        collector.close()
    assert Event.from_json(message.payload) == make_event(7)
    assert "sink-pa55" not in caplog.text


def test_a_wrong_password_is_retried_with_a_clear_log_and_events_wait(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    secure_mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = make_topic()
    tls = secure_mosquitto.tls
    assert tls is not None
    monkeypatch.setenv("KVA_EVENTS_MQTT_PASSWORD", "not-the-Pa55")
    settings = sink_settings(
        kafka_settings,
        topic,
        events_mqtt=secure_mosquitto.url,
        events_mqtt_username="sink",
        events_mqtt_ca_file=tls.ca,
    )
    with caplog.at_level(logging.INFO), running_sink(settings) as sink:
        EventFeed(kafka_settings, topic).send(make_event(1), make_event(2))
        wait_for(
            lambda: metric(sink, "kva_events_consumer_lag", topic=topic, partition="0") == 2,
            20,
            "the events waiting in Kafka",
        )
        wait_for(lambda: "refused the connection" in caplog.text, 20, "the refusal logged")
        assert metric(sink, "kva_events_delivered_total", destination="mqtt") == 0
    assert (
        f"mqtt: mqtts://127.0.0.1:{secure_mosquitto.port} refused the connection: Not authorized"
        in caplog.text
    )
    assert "not-the-Pa55" not in caplog.text
