"""The MQTT destination: each event published at QoS 1 to a topic made from a template.

paho-mqtt keeps every QoS 1 message it was handed until the broker acknowledges it
(PUBACK), across reconnects (it sends it again, flagged as a duplicate). So a message
is handed to paho once and then only waited for: handing it over again on every retry
would deliver it once per retry when the broker comes back. The connection is made
and remade by paho's network thread (exponential backoff up to ``--retry-max``).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from kva.events import Event
from kva.logs import RateLimitedLog
from kva.sink.config import template_fields
from kva.sink.destination import DELIVERED, Failed, Idle, Item, Outcome

logger = logging.getLogger(__name__)

#: Characters that cannot stand in one level of a topic name (level separator, wildcards).
_NOT_IN_A_LEVEL = str.maketrans({"/": "_", "+": "_", "#": "_", "\0": "_"})
#: QoS 1 messages on the wire at once (paho's default is 20; the sink's batch bounds it anyway).
MAX_INFLIGHT = 1000
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


def topic_of(template: str, event: Event) -> str:
    """The MQTT topic of ``event``: the template's fields filled in, one level each."""
    values: dict[str, Any] = {}
    for name in template_fields(template):
        value = getattr(event, name)
        values[name] = "-" if value is None else str(value).translate(_NOT_IN_A_LEVEL)
    return template.format(**values)


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """How to reach the broker: ``mqtt://`` or ``mqtts://`` URL, client id, credentials."""

    url: str
    client_id: str
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    retry_max: float = 30.0


class MqttConnection:
    """One MQTT connection, made and remade by paho's network thread."""

    def __init__(self, options: MqttOptions) -> None:
        parts = urlsplit(options.url)
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        self.address = f"{parts.scheme}://{parts.hostname}:{port}"
        self._log = RateLimitedLog(logger, interval=10.0)
        self.connected = False
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        client.max_inflight_messages_set(MAX_INFLIGHT)
        if options.username is not None:
            client.username_pw_set(options.username, options.password)
        if parts.scheme == "mqtts":
            ca = str(options.ca_file) if options.ca_file else None
            client.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(options.retry_max)))
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        self._client = client
        client.connect_async(parts.hostname or "", port, 30)
        client.loop_start()

    # -- paho's network thread ------------------------------------------------------------
    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        if reason.is_failure:
            self._log.log("connect", logging.WARNING, "mqtt: %s refused the connection: %s",
                          self.address, reason)  # fmt: skip
            return
        self.connected = True
        logger.info("mqtt: connected to %s", self.address)

    def _on_connect_fail(self, _c: mqtt.Client, _u: object) -> None:
        self._log.log(
            "connect", logging.WARNING,
            "mqtt: cannot reach %s: retrying with backoff (events wait in Kafka)", self.address,
        )  # fmt: skip

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object
    ) -> None:
        if self.connected:
            logger.warning("mqtt: disconnected from %s (%s): reconnecting", self.address, reason)
        self.connected = False

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class MqttFramePublisher(MqttConnection):
    """QoS 0, nothing awaited: frame metadata (its own connection, so that QoS 0 message ids
    never mix with the QoS 1 ones :class:`MqttDestination` waits for)."""

    def publish(self, topic: str, payload: bytes) -> bool:
        """False when not connected (the frame is dropped, not queued)."""
        if not self.connected:
            return False
        return bool(self._client.publish(topic, payload, qos=0).rc == mqtt.MQTT_ERR_SUCCESS)


class MqttDestination(MqttConnection):
    """Events at QoS 1: each handed to paho once, then its PUBACK awaited."""

    name = "mqtt"

    def __init__(self, options: MqttOptions, topic_template: str, ack_timeout: float) -> None:
        self._template = topic_template
        self._ack_timeout = ack_timeout
        #: Message ids PUBACKed and not yet collected; only QoS 1 messages are sent on this
        #: connection, and paho reports one PUBACK per message, so an id here is exact.
        self._acked: set[int] = set()
        self._handed: dict[str, mqtt.MQTTMessageInfo] = {}
        self._cond = threading.Condition()
        super().__init__(options)
        self._client.on_publish = self._on_publish
        logger.info("mqtt: publishing to %s, topic %s, QoS 1", self.address, topic_template)

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, _r: object, _p: object) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    # -- the sink's thread ----------------------------------------------------------------
    def send(self, items: Sequence[Item], idle: Idle) -> list[Outcome]:
        """Hand the items paho does not hold yet to paho, then wait for their PUBACKs."""
        for item in items:
            info = self._handed.get(item.where)
            if info is None or info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                topic = topic_of(self._template, item.event)
                self._handed[item.where] = self._client.publish(topic, item.body, qos=1)
        mids = {self._handed[item.where].mid for item in items}
        deadline = time.monotonic() + self._ack_timeout
        while True:
            remaining = deadline - time.monotonic()
            with self._cond:  # the check and the wait under one lock: no PUBACK slips between
                if self._cond.wait_for(lambda: mids <= self._acked, min(0.2, max(0.0, remaining))):
                    break
            if remaining <= 0 or idle(0):
                break
        return [self._outcome(item) for item in items]

    def _outcome(self, item: Item) -> Outcome:
        info = self._handed[item.where]
        with self._cond:
            acked = info.mid in self._acked
            if acked:
                self._acked.discard(info.mid)
        if acked:
            del self._handed[item.where]
            return DELIVERED
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            return Failed(f"publish failed: {mqtt.error_string(info.rc)}")
        state = "connected" if self.connected else "not connected"
        return Failed(f"no PUBACK from {self.address} within {self._ack_timeout:g}s ({state})")
