"""Settings of ``kva events``: where events come from and the destinations they go to.

Destinations: ``--mqtt URL`` (``mqtt://host:1883``, ``mqtts://host:8883`` for TLS) and
``--webhook URL`` (``http(s)://...``), one or both. Secrets come from the environment
only: ``KVA_EVENTS_MQTT_PASSWORD`` and ``KVA_EVENTS_WEBHOOK_SECRET`` (the HMAC key).
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from kva.retention import (
    EVENTS,
    Retention,
    RetentionBytes,
    RetentionMs,
    retention_bytes_field,
    retention_ms_field,
)
from kva.settings import KafkaSettings, listen_host, listen_port

#: The names an MQTT topic template may use, each an event field.
TEMPLATE_FIELDS = ("stream", "type", "id", "label", "track", "zone", "line", "direction")
_TOPIC_NAME = r"^[A-Za-z0-9._-]+$"


def template_fields(template: str, allowed: tuple[str, ...] = TEMPLATE_FIELDS) -> list[str]:
    """The ``{name}`` fields of ``template``; ValueError naming what is wrong."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad topic template {template!r}: {exc}") from None
    names = []
    for _text, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            raise ValueError(
                f"bad topic template {template!r}: {{{name}}} is not one of "
                + ", ".join(f"{{{f}}}" for f in allowed)
            )
        names.append(name)
    return names


class EventsSettings(KafkaSettings):
    """Everything ``kva events`` can be told (flags or ``KVA_EVENTS_*`` variables)."""

    command: ClassVar[str] = "events"

    events_topic: str = Field(
        "events",
        pattern=_TOPIC_NAME,
        max_length=249,
        description="Kafka topic the events are read from",
        json_schema_extra={"flag": "--topic", "metavar": "TOPIC"},
    )
    events_group: str = Field(
        "kva-events",
        min_length=1,
        description="Kafka consumer group of the sink (offsets committed once delivered)",
        json_schema_extra={"flag": "--group", "metavar": "GROUP"},
    )
    events_dead_letter_topic: str = Field(
        "events.dead",
        pattern=_TOPIC_NAME,
        max_length=249,
        description="Kafka topic of the events a webhook refused (4xx other than 408/429)",
        json_schema_extra={"flag": "--dead-letter-topic", "metavar": "TOPIC"},
    )
    events_dead_letter_retention_ms: RetentionMs = retention_ms_field(
        EVENTS.ms, "dead-letter (--dead-letter-topic)", "--dead-letter-retention-ms"
    )
    events_dead_letter_retention_bytes: RetentionBytes = retention_bytes_field(
        EVENTS.bytes, "dead-letter (--dead-letter-topic)", "--dead-letter-retention-bytes"
    )
    events_mqtt: str | None = Field(
        None,
        description="MQTT broker to publish events to: mqtt://HOST[:1883] or mqtts://HOST[:8883] "
        "(TLS); the password goes in KVA_EVENTS_MQTT_PASSWORD",
        json_schema_extra={"flag": "--mqtt", "metavar": "URL"},
    )
    events_mqtt_topic: str = Field(
        "kva/{stream}/{type}",
        min_length=1,
        max_length=512,
        description="MQTT topic of an event; fields: "
        + ", ".join(f"{{{f}}}" for f in TEMPLATE_FIELDS),
        json_schema_extra={"flag": "--mqtt-topic", "metavar": "TEMPLATE"},
    )
    events_mqtt_username: str | None = Field(
        None, description="MQTT user name", json_schema_extra={"flag": "--mqtt-username"}
    )
    events_mqtt_password: SecretStr | None = Field(
        None,
        description="MQTT password (environment only: KVA_EVENTS_MQTT_PASSWORD)",
        json_schema_extra={"flag": "--mqtt-password", "cli": False},
    )
    events_mqtt_ca_file: Path | None = Field(
        None,
        description="CA certificate(s) to check the MQTT broker's TLS certificate "
        "(default: the system's)",
        json_schema_extra={"flag": "--mqtt-ca-file", "metavar": "FILE"},
    )
    events_mqtt_client_id: str = Field(
        "kva-events",
        min_length=1,
        max_length=64,
        description="MQTT client id",
        json_schema_extra={"flag": "--mqtt-client-id"},
    )
    events_dlstreamer_topic: str | None = Field(
        None,
        max_length=512,
        description="also publish each frame's objects (from --predictions-topic) to this MQTT "
        "topic in DL Streamer Pipeline Server's metadata format; field: {stream}",
        json_schema_extra={"flag": "--dlstreamer-topic", "metavar": "TEMPLATE"},
    )
    events_predictions_topic: str = Field(
        "predictions",
        pattern=_TOPIC_NAME,
        max_length=249,
        description="Kafka topic of the frames' predictions (for --dlstreamer-topic)",
        json_schema_extra={"flag": "--predictions-topic", "metavar": "TOPIC"},
    )
    events_webhook: str | None = Field(
        None,
        description="URL each event is POSTed to as JSON (with X-Kva-Event-Id; signed with "
        "X-Kva-Signature when KVA_EVENTS_WEBHOOK_SECRET is set)",
        json_schema_extra={"flag": "--webhook", "metavar": "URL"},
    )
    events_webhook_secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key of the webhook signature "
        "(environment only: KVA_EVENTS_WEBHOOK_SECRET)",
        json_schema_extra={"flag": "--webhook-secret", "cli": False},
    )
    events_webhook_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="seconds to wait for a webhook's answer",
        json_schema_extra={"flag": "--webhook-timeout"},
    )
    events_ack_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="seconds to wait for the MQTT broker's acknowledgement (PUBACK) before "
        "counting an attempt as failed (the event is sent again)",
        json_schema_extra={"flag": "--ack-timeout"},
    )
    events_retry_min: float = Field(
        0.5,
        gt=0,
        le=60,
        description="first delay before a failed delivery is tried again, seconds",
        json_schema_extra={"flag": "--retry-min"},
    )
    events_retry_max: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="longest delay between tries (exponential backoff cap), seconds; a "
        "destination that is down is retried until it is back, events wait in Kafka",
        json_schema_extra={"flag": "--retry-max"},
    )
    events_max_in_flight: int = Field(
        256,
        ge=1,
        le=100000,
        description="events read from Kafka and not yet delivered, at most (the rest wait "
        "in Kafka)",
        json_schema_extra={"flag": "--max-in-flight"},
    )
    events_status_interval: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="seconds between status lines and consumer-lag updates",
        json_schema_extra={"flag": "--status-interval"},
    )
    events_metrics_host: str = listen_host(
        "address of /metrics, /healthz, /readyz", "--metrics-host"
    )
    events_metrics_port: int = listen_port(
        9104, "port of /metrics, /healthz, /readyz (0 = any free port)", "--metrics-port"
    )

    @field_validator(
        "events_mqtt", "events_webhook", "events_mqtt_password", "events_webhook_secret",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``KVA_EVENTS_WEBHOOK=`` (compose passes unset variables as empty) means no webhook."""
        return None if value == "" else value

    @field_validator("events_mqtt")
    @classmethod
    def _check_mqtt(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("not mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        if parts.password is not None:
            raise ValueError("a password in the URL: put it in KVA_EVENTS_MQTT_PASSWORD instead")
        _ = parts.port  # ValueError for a port out of range
        if parts.path not in ("", "/") or parts.query:
            raise ValueError("an MQTT URL has no path or query: set the topic with --mqtt-topic")
        return value

    @field_validator("events_webhook")
    @classmethod
    def _check_webhook(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http:// or https:// URL")
        _ = parts.port
        return value

    @field_validator("events_mqtt_topic")
    @classmethod
    def _check_template(cls, value: str) -> str:
        template_fields(value)
        if "+" in value or "#" in value:
            raise ValueError(
                f"bad topic template {value!r}: wildcards + and # cannot be published to"
            )
        return value

    @field_validator("events_dlstreamer_topic")
    @classmethod
    def _check_dlstreamer_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        template_fields(value, allowed=("stream",))
        if "+" in value or "#" in value:
            raise ValueError(
                f"bad topic template {value!r}: wildcards + and # cannot be published to"
            )
        return value

    @model_validator(mode="after")
    def _check_destinations(self) -> EventsSettings:
        if self.events_mqtt is None and self.events_webhook is None:
            raise ValueError("no destination: give --mqtt URL and/or --webhook URL")
        if self.events_dlstreamer_topic is not None and self.events_mqtt is None:
            raise ValueError("--dlstreamer-topic publishes over MQTT: give --mqtt URL too")
        if self.events_retry_max < self.events_retry_min:
            raise ValueError("--retry-max is smaller than --retry-min")
        if self.events_mqtt_password is not None and self.events_mqtt_username is None:
            raise ValueError("KVA_EVENTS_MQTT_PASSWORD is set but --mqtt-username is not")
        return self

    def dead_letter_retention(self) -> Retention:
        """What the dead-letter topic keeps (applied by the sink, its writer, at every start)."""
        return Retention(
            self.events_dead_letter_retention_ms, self.events_dead_letter_retention_bytes
        )

    def destination_names(self) -> list[str]:
        """``mqtt`` and/or ``webhook``: the destinations configured."""
        return [
            name
            for name, url in (("mqtt", self.events_mqtt), ("webhook", self.events_webhook))
            if url is not None
        ]
