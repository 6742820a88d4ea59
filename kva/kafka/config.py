"""librdkafka configuration shared by every client, and the size limits of a frame message."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from kva.frame import DEFAULT_MAX_FRAME_BYTES
from kva.settings import KafkaSettings


class _OncePerInterval(logging.Filter):
    """Lets the same librdkafka complaint through once per interval, not on every retry."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self._interval = interval
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(
            record.args[1]
            if isinstance(record.args, tuple) and len(record.args) > 1
            else record.msg
        )
        now = time.monotonic()
        if now - self._last.get(key, -self._interval) < self._interval:
            return False
        self._last[key] = now
        return True


#: librdkafka's own log lines go through Python logging, rate-limited.
_librdkafka_logger = logging.getLogger("kva.kafka.librdkafka")
_librdkafka_logger.addFilter(_OncePerInterval())

#: Room for headers and batch framing on top of the largest frame.
MESSAGE_OVERHEAD = 1024 * 1024
MAX_MESSAGE_BYTES = DEFAULT_MAX_FRAME_BYTES + MESSAGE_OVERHEAD


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """librdkafka settings shared by producers, consumers and admin clients.

    Contains secrets: never log it (use :func:`redacted`).
    """
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_server,
        "security.protocol": settings.security_protocol.lower(),
        "socket.connection.setup.timeout.ms": 10000,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 2000,
        "logger": _librdkafka_logger,
    }
    optional = {
        "sasl.mechanism": settings.sasl_mechanism,
        "sasl.username": settings.sasl_username,
        "sasl.password": settings.sasl_password and settings.sasl_password.get_secret_value(),
        "ssl.ca.location": settings.ssl_ca_location,
        "ssl.certificate.location": settings.ssl_certificate_location,
        "ssl.key.location": settings.ssl_key_location,
        "ssl.key.password": settings.ssl_key_password
        and settings.ssl_key_password.get_secret_value(),
    }
    config.update({k: v for k, v in optional.items() if v})
    return config


def redacted(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a librdkafka config that is safe to log."""
    return {k: ("***" if "password" in k or "secret" in k else v) for k, v in config.items()}
