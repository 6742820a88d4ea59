"""Cluster administration: wait for the brokers, read partition leaders, create topics."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from kva.kafka.config import MAX_MESSAGE_BYTES, client_config
from kva.kafka.errors import KafkaUnavailable
from kva.settings import KafkaSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create. ``config`` overrides the frame-topic defaults."""

    name: str
    partitions: int = 4
    replication_factor: int = -1
    config: Mapping[str, str] = field(default_factory=dict)


#: Frames are about now: keep a minute, bound the size, let a 16 MB frame through.
FRAME_TOPIC_CONFIG: Mapping[str, str] = {
    "retention.ms": "60000",
    "retention.bytes": str(256 * 1024 * 1024),
    "segment.bytes": str(64 * 1024 * 1024),
    "segment.ms": "60000",
    "max.message.bytes": str(MAX_MESSAGE_BYTES),
    "cleanup.policy": "delete",
}

#: Events are not about now: a sink that is down for a day must still find them.
EVENT_TOPIC_CONFIG: Mapping[str, str] = {
    "retention.ms": str(7 * 24 * 3600 * 1000),
    "retention.bytes": str(1024 * 1024 * 1024),
    "segment.bytes": str(64 * 1024 * 1024),
    "segment.ms": str(3600 * 1000),
    "max.message.bytes": str(1024 * 1024),
    "cleanup.policy": "delete",
}


def wait_for_broker(settings: KafkaSettings, timeout: float | None = None) -> int:
    """Block until the cluster answers a metadata request; return the broker count.

    Raises:
        KafkaUnavailable: no answer within ``timeout`` (default ``settings.broker_timeout``).
    """
    limit = settings.broker_timeout if timeout is None else timeout
    errors: list[str] = []
    config = client_config(settings) | {
        "error_cb": lambda e: errors.append(e.str()),
        "log_level": 0,
    }
    admin = AdminClient(config)
    try:
        metadata = admin.list_topics(timeout=limit)
    except KafkaException as exc:
        admin.poll(0.5)  # serve the error callbacks: they say why (refused, auth failed, ...)
        auth = [e for e in errors if "authentication" in e.lower()]
        detail = (auth or errors or [str(exc.args[0].str() if exc.args else exc)])[-1]
        raise KafkaUnavailable(
            f"cannot reach Kafka at {settings.bootstrap_server} within {limit:g}s: {detail}"
        ) from None
    return len(metadata.brokers)


def partition_leaders(settings: KafkaSettings, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """``partition -> leader broker id`` of ``topic`` (-1 while a partition has no leader)."""
    admin = AdminClient(client_config(settings))
    try:
        metadata = admin.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot read metadata of {topic}: {exc}") from None
    partitions = metadata.topics[topic].partitions
    return {p.id: p.leader for p in partitions.values()}


def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec], timeout: float = 30.0
) -> None:
    """Create the topics that do not exist yet (existing ones are left as they are).

    Transient errors (a broker handle replaced while the client learns the
    cluster, a controller moving) are retried until ``timeout``.
    """
    admin = AdminClient(client_config(settings))
    pending = {spec.name: spec for spec in specs}
    deadline = time.monotonic() + timeout
    while True:
        try:
            _create_missing(admin, pending, max(1.0, deadline - time.monotonic()))
            return
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in _TRANSIENT
            )
            if not retriable or time.monotonic() > deadline:
                raise KafkaUnavailable(
                    f"cannot create topics at {settings.bootstrap_server}: {exc}"
                ) from None
            logger.debug("retrying topic creation after %s", exc)
            time.sleep(0.5)


_TRANSIENT = frozenset(
    {
        KafkaError._DESTROY_BROKER,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError.NOT_CONTROLLER,
    }
)


def _create_missing(admin: AdminClient, pending: dict[str, TopicSpec], timeout: float) -> None:
    existing = set(admin.list_topics(timeout=timeout).topics)
    for name in existing & set(pending):
        del pending[name]
    if not pending:
        return
    wanted = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=spec.replication_factor,
            config=dict(FRAME_TOPIC_CONFIG) | dict(spec.config),
        )
        for spec in pending.values()
    ]
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            logger.info("created topic %s", name)
        except KafkaException as exc:
            if not (exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise
        del pending[name]
