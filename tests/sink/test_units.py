"""``kva events`` without a broker: settings, MQTT topics, webhook signature and answers."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import pytest

from kva.launcher.cli import main
from kva.sink.config import EventsSettings
from kva.sink.destination import Delivered, Failed, Item, Refused
from kva.sink.mqtt import topic_of
from kva.sink.webhook import WebhookDestination, _retry_after, signature
from tests.sink.conftest import make_event
from tests.support.webhook import WebhookReceiver

MQTT = "mqtt://127.0.0.1:1883"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "no destination: give --mqtt URL and/or --webhook URL"),
        (
            {"events_mqtt": "tcp://broker:1883"},
            "--mqtt / KVA_EVENTS_MQTT: Value error, not mqtt://",
        ),
        ({"events_mqtt": "mqtt://u:pw@broker"}, "put it in KVA_EVENTS_MQTT_PASSWORD instead"),
        ({"events_mqtt": "mqtt://broker:99999"}, "--mqtt / KVA_EVENTS_MQTT"),
        ({"events_mqtt": "mqtt://broker/kva"}, "set the topic with --mqtt-topic"),
        ({"events_webhook": "ftp://example.org/x"}, "not an http:// or https:// URL"),
        (
            {"events_mqtt": MQTT, "events_mqtt_topic": "kva/{camera}"},
            "bad topic template 'kva/{camera}': {camera} is not one of {stream}, {type}",
        ),
        ({"events_mqtt": MQTT, "events_mqtt_topic": "kva/{stream"}, "bad topic template"),
        ({"events_mqtt": MQTT, "events_mqtt_topic": "kva/{stream!r}"}, "bad topic template"),
        ({"events_mqtt": MQTT, "events_mqtt_topic": "kva/+/{type}"}, "wildcards + and #"),
        (
            {"events_mqtt": MQTT, "events_retry_min": 5, "events_retry_max": 1},
            "--retry-max is smaller than --retry-min",
        ),
        ({"events_webhook": "http://x", "events_max_in_flight": 0}, "--max-in-flight"),
    ],
)
def test_bad_settings_fail_clearly(
    values: dict[str, Any], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["events"]
    flags = {
        "events_mqtt": "--mqtt",
        "events_webhook": "--webhook",
        "events_mqtt_topic": "--mqtt-topic",
        "events_retry_min": "--retry-min",
        "events_retry_max": "--retry-max",
        "events_max_in_flight": "--max-in-flight",
    }
    for name, value in values.items():
        argv += [flags[name], str(value)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_password_without_a_user_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVA_EVENTS_MQTT_PASSWORD", "pw")
    with pytest.raises(ValueError, match="--mqtt-username is not"):
        EventsSettings(events_mqtt=MQTT)


def test_secrets_come_from_the_environment_and_never_show(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KVA_EVENTS_MQTT_PASSWORD", "mqtt-pa55")
    monkeypatch.setenv("KVA_EVENTS_WEBHOOK_SECRET", "hook-k3y")
    monkeypatch.setenv("KVA_EVENTS_MQTT_USERNAME", "kva")
    settings = EventsSettings(events_mqtt=MQTT, events_webhook="http://u:urlpw@127.0.0.1:9/h")
    assert settings.events_mqtt_password is not None
    assert settings.events_mqtt_password.get_secret_value() == "mqtt-pa55"
    text = repr(settings) + str(settings.model_dump())
    assert "mqtt-pa55" not in text and "hook-k3y" not in text
    with caplog.at_level(logging.INFO):
        WebhookDestination(settings.events_webhook or "", b"hook-k3y", 1.0).close()
    assert "urlpw" not in caplog.text and "http://u:***@127.0.0.1:9/h" in caplog.text


def test_the_secrets_have_no_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["events", "--help"])
    help_text = capsys.readouterr().out
    assert "--mqtt-password" not in help_text and "--webhook-secret" not in help_text
    assert "KVA_EVENTS_MQTT_PASSWORD" in help_text and "KVA_EVENTS_WEBHOOK_SECRET" in help_text


def test_mqtt_topic_fills_the_template_one_level_per_field() -> None:
    event = make_event(3, stream="door")
    assert topic_of("kva/{stream}/{type}", event) == "kva/door/line_cross"
    assert topic_of("site/{line}/{direction}/{zone}", event) == "site/walkway/in/-"
    odd = make_event(3).__class__(**{**_fields(event), "line": "a/b+c#d"})
    assert topic_of("x/{line}", odd) == "x/a_b_c_d"


def _fields(event: Any) -> dict[str, Any]:
    return {name: getattr(event, name) for name in event.__slots__}


def test_signature_is_the_hmac_sha256_of_the_body() -> None:
    body = make_event(1).to_json().encode()
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature(b"k", body) == f"sha256={expected}"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Delivered()),
        (204, Delivered()),
        (400, Refused(400, "HTTP 400 Bad Request")),
        (404, Refused(404, "HTTP 404 Not Found")),
        (410, Refused(410, "HTTP 410 Gone")),
        (301, Refused(301, "HTTP 301 Moved Permanently")),
        (408, Failed("HTTP 408 Request Timeout")),
        (429, Failed("HTTP 429 Too Many Requests")),
        (500, Failed("HTTP 500 Internal Server Error")),
        (503, Failed("HTTP 503 Service Unavailable")),
    ],
)
def test_webhook_answers(status: int, outcome: object) -> None:
    receiver = WebhookReceiver(respond=lambda _post: status)
    destination = WebhookDestination(receiver.url, b"k", 5.0)
    event = make_event(1)
    try:
        (got,) = destination.send(
            [Item(event, event.to_json().encode(), "t[0]@1")], lambda _s: False
        )
    finally:
        destination.close()
        receiver.stop()
    assert got == outcome


def test_an_unreachable_webhook_fails_every_item_without_trying_each() -> None:
    receiver = WebhookReceiver()
    receiver.stop()
    destination = WebhookDestination(receiver.url, None, 2.0)
    items = [Item(make_event(n), make_event(n).to_json().encode(), f"t[0]@{n}") for n in range(3)]
    outcomes = destination.send(items, lambda _s: False)
    destination.close()
    assert len(outcomes) == 3 and all(isinstance(o, Failed) for o in outcomes)
    assert "ConnectionError" in outcomes[0].detail  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("header", "seconds"), [(None, None), ("3", 3.0), ("1e9", 300.0), ("-1", 0.0), ("soon", None)]
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert _retry_after(header) == seconds
