"""Whether the brokers are reachable, from librdkafka's error callback."""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import KafkaError

from kva.logs import RateLimitedLog

logger = logging.getLogger(__name__)


class BrokerHealth:
    """Tracks whether all brokers are down, from librdkafka's error callback."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._log = RateLimitedLog(logger, interval=10.0)
        self._down_since: float | None = None
        self._lock = threading.Lock()

    def on_error(self, error: KafkaError) -> None:
        code = error.code()
        if code in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE):
            with self._lock:
                if self._down_since is None:
                    self._down_since = time.monotonic()
            self._log.log(
                "down", logging.WARNING, "%s: Kafka unreachable: %s", self._name, error.str()
            )
        elif code == KafkaError._AUTHENTICATION or code == KafkaError.SASL_AUTHENTICATION_FAILED:
            logger.error("%s: Kafka authentication failed: %s", self._name, error.str())
        elif error.fatal():
            logger.error("%s: fatal Kafka error: %s", self._name, error.str())
        else:
            self._log.log(code, logging.WARNING, "%s: Kafka error: %s", self._name, error.str())

    def mark_up(self) -> None:
        with self._lock:
            if self._down_since is not None:
                logger.info("%s: Kafka reachable again", self._name)
            self._down_since = None

    def down_for(self) -> float:
        """Seconds since all brokers went down (0 when reachable)."""
        with self._lock:
            return 0.0 if self._down_since is None else time.monotonic() - self._down_since
