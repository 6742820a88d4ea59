"""Cluster administration: wait for the brokers, read partition leaders, create topics and
keep their configs (retention) as the settings say."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from kva import retention
from kva.kafka.config import MAX_MESSAGE_BYTES, client_config
from kva.kafka.errors import KafkaUnavailable
from kva.settings import KafkaSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create. ``config`` overrides the frame-topic defaults."""

    name: str
    partitions: int = 4
    replication_factor: int = -1
    config: Mapping[str, str] = field(default_factory=dict)


#: A topic of frames (the default of every topic kva creates): the frames' retention
#: (:mod:`kva.retention`: what ``kva replay`` can read), a 16 MB frame let through.
FRAME_TOPIC_CONFIG: Mapping[str, str] = {
    **retention.FRAMES.topic_config(),
    "max.message.bytes": str(MAX_MESSAGE_BYTES),
    "cleanup.policy": "delete",
}

#: Events are not about now: a sink that is down for days must still find them.
EVENT_TOPIC_CONFIG: Mapping[str, str] = {
    **retention.EVENTS.topic_config(),
    "max.message.bytes": str(1024 * 1024),
    "cleanup.policy": "delete",
}

#: One config change: ``(key, value before or None when it was the broker's default, value now)``.
ConfigChange = tuple[str, str | None, str]


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
    settings: KafkaSettings,
    specs: Iterable[TopicSpec],
    timeout: float = 30.0,
    *,
    apply_configs: bool = False,
) -> None:
    """Create the topics that do not exist yet.

    Existing ones are left as they are, unless ``apply_configs``: then each spec's own
    ``config`` (e.g. its retention) is applied to its topic with :func:`apply_topic_config`,
    what a topic's writer does on every start. Transient errors (a broker handle replaced
    while the client learns the cluster, a controller moving) are retried until ``timeout``.
    """
    specs = list(specs)
    _create_all(settings, specs, timeout)
    if apply_configs:
        for spec in specs:
            if spec.config:
                apply_topic_config(settings, spec.name, spec.config, timeout)


def _create_all(settings: KafkaSettings, specs: list[TopicSpec], timeout: float) -> None:
    admin = AdminClient(client_config(settings))
    pending = {spec.name: spec for spec in specs}
    _retrying(
        f"create topics at {settings.bootstrap_server}",
        lambda left: _create_missing(admin, pending, left),
        timeout,
        pause=0.5,
    )


def _retrying(
    what: str,
    attempt: Callable[[float], T],
    timeout: float,
    *,
    also: frozenset[int] = frozenset(),
    pause: float = 0.2,
) -> T:
    """``attempt(seconds left)`` until it returns; transient Kafka errors (and the codes
    ``also``) are retried every ``pause`` seconds until ``timeout``.

    Raises:
        KafkaUnavailable: ``cannot <what>: <error>``, on any other error or at the timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt(max(1.0, deadline - time.monotonic()))
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            transient = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in _TRANSIENT | also
            )
            if not transient or time.monotonic() > deadline:
                raise KafkaUnavailable(f"cannot {what}: {exc}") from None
            logger.debug("%s: asking again after %s", what, exc)
            time.sleep(pause)


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


def apply_topic_config(
    settings: KafkaSettings, topic: str, wanted: Mapping[str, str], timeout: float = 30.0
) -> list[ConfigChange]:
    """Make ``topic``'s configs ``wanted`` (only these keys), changing only those that differ.

    Uses ``incremental_alter_configs`` (other keys, set by an operator, stay as they are);
    each change is logged. An existing topic is thus brought to the settings on every start,
    not only when it is created.

    Returns:
        The changes made (none when the topic already had these values, or when the
        cluster refuses them: not authorized, a policy, an invalid value; a warning says so).

    Raises:
        KafkaUnavailable: the configs cannot be read or changed (the broker does not answer).
    """
    admin = AdminClient(client_config(settings))
    current = _describe(admin, topic, timeout)
    changes = [
        (key, None if _is_default(current.get(key)) else _value(current.get(key)), value)
        for key, value in wanted.items()
        if _value(current.get(key)) != value
    ]
    if not changes:
        return []
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, _old, value in changes
        ],
    )
    try:
        for done in admin.incremental_alter_configs([resource], request_timeout=timeout).values():
            done.result(timeout=timeout)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() in _REFUSED:
            # the cluster's own policy wins: run with the topic as it is, and say so
            logger.warning(
                "topic %s: cannot set %s (%s): keeping the topic's own configs",
                topic,
                ", ".join(f"{key}={new}" for key, _old, new in changes),
                error.str(),
            )
            return []
        raise KafkaUnavailable(f"cannot change the configs of topic {topic}: {exc}") from None
    logger.info(
        "topic %s: %s",
        topic,
        ", ".join(f"{key} {old or '(default)'} -> {new}" for key, old, new in changes),
    )
    return changes


#: Answers of a topic created a moment ago, before every broker knows it: asked again.
_NOT_YET = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.NOT_LEADER_FOR_PARTITION})


def _describe(admin: AdminClient, topic: str, timeout: float) -> dict[str, Any]:
    """The topic's config entries; transient answers are retried until ``timeout``."""
    resource = ConfigResource(ResourceType.TOPIC, topic)

    def attempt(left: float) -> dict[str, Any]:
        (future,) = admin.describe_configs([resource], request_timeout=left).values()
        return dict(future.result(timeout=left).items())

    return _retrying(f"read the configs of topic {topic}", attempt, timeout, also=_NOT_YET)


#: Answers that mean "not allowed here" (ACLs, a create/alter policy, a broker's limits), not down.
_REFUSED = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.POLICY_VIOLATION,
        KafkaError.INVALID_CONFIG,
    }
)


def _value(entry: ConfigEntry | None) -> str | None:
    return None if entry is None else entry.value


def _is_default(entry: ConfigEntry | None) -> bool:
    return entry is None or bool(entry.is_default)
