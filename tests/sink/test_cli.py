"""``kva events`` as users run it: a child process, stopped by SIGTERM."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import requests

from kva.ports import free_port
from kva.settings import KafkaSettings
from testbed.mqtt import Mosquitto, MqttCollector
from tests.sink.conftest import EventFeed, make_event
from tests.support.process import KvaProcess
from tests.support.wait import wait_for
from tests.support.webhook import WebhookReceiver


def test_kva_events_delivers_serves_metrics_and_stops_cleanly(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    mosquitto: Mosquitto,
    webhook: Callable[..., WebhookReceiver],
    start_kva: Callable[..., KvaProcess],
) -> None:
    topic = make_topic()
    receiver = webhook()
    collector = MqttCollector(mosquitto.port, "site/#")
    port = free_port()
    sink = start_kva(
        "events", "--bootstrap-server", kafka_settings.bootstrap_server, "--topic", topic,
        "--group", f"{topic}-g", "--mqtt", mosquitto.url, "--mqtt-topic", "site/{stream}/{line}",
        "--metrics-port", str(port),
        env={"KVA_EVENTS_WEBHOOK": receiver.url, "KVA_EVENTS_WEBHOOK_SECRET": "cli-s3cret"},
    )  # fmt: skip
    try:
        sink.wait_http(f"http://127.0.0.1:{port}/readyz", 60)
        events = [make_event(n, stream="gate") for n in range(5)]
        EventFeed(kafka_settings, topic).send(*events)
        wait_for(lambda: len(receiver.snapshot()) >= 5, 30, "5 webhook posts")
        wait_for(lambda: len(collector.snapshot()) >= 5, 30, "5 MQTT messages")
        # counted once the batch is acknowledged, which may be just after the receivers have it
        wait_for(
            lambda: (
                'kva_events_delivered_total{destination="mqtt"} 5.0' in (text := _metrics(port))
                and 'kva_events_delivered_total{destination="webhook"} 5.0' in text
            ),
            30,
            "the delivered counters",
        )
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        collector.close()
    assert {m.topic for m in collector.snapshot()} == {"site/gate/walkway"}
    for post in receiver.snapshot():
        digest = hmac.new(b"cli-s3cret", post.body, hashlib.sha256).hexdigest()
        assert post.headers["x-kva-signature"] == f"sha256={digest}"
    assert sink.stop() == 0
    assert "events sink stopped" in sink.output()
    assert "cli-s3cret" not in sink.output()


def test_kva_events_without_kafka_exits_with_a_clear_message(
    start_kva: Callable[..., KvaProcess],
) -> None:
    sink = start_kva(
        "events", "--bootstrap-server", f"127.0.0.1:{free_port()}", "--broker-timeout", "2",
        "--webhook", "http://127.0.0.1:9/x", "--metrics-port", "0",
    )  # fmt: skip
    assert sink.wait(60) == 1
    assert "cannot start: cannot reach Kafka" in sink.output()


def test_a_sink_killed_before_the_ack_delivers_the_events_after_its_restart(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    webhook: Callable[..., WebhookReceiver],
    start_kva: Callable[..., KvaProcess],
) -> None:
    """Offsets are committed only after the acknowledgement: SIGKILL loses nothing."""
    topic = make_topic(partitions=2)
    receiver = webhook()
    receiver.stop()  # down: nothing can be acknowledged
    port = free_port()
    argv = (
        "events", "--bootstrap-server", kafka_settings.bootstrap_server, "--topic", topic,
        "--group", f"{topic}-g", "--webhook", receiver.url, "--metrics-port", str(port),
        "--retry-min", "0.2", "--retry-max", "1",
    )  # fmt: skip
    first = start_kva(*argv)
    first.wait_http(f"http://127.0.0.1:{port}/readyz", 60)
    events = [make_event(n, stream=f"cam{n % 3}") for n in range(12)]
    EventFeed(kafka_settings, topic).send(*events)
    first.wait_line("webhook: ", 30)  # "webhook: N event(s) not delivered (ConnectionError…)"
    first.kill()
    receiver.start()
    second = start_kva(*argv)
    wait_for(lambda: {p.event_id for p in receiver.snapshot()} >= {e.id for e in events}, 60,
             "every event after the restart")  # fmt: skip
    wait_for(
        lambda: (
            "kva_events_consumer_lag{" in (text := _metrics(port))
            and all(
                line.endswith(" 0.0")
                for line in text.splitlines()
                if line.startswith("kva_events_consumer_lag{")
            )
        ),
        30,
        "no lag",
    )
    assert second.stop() == 0


def _metrics(port: int) -> str:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.RequestException:
        return ""
