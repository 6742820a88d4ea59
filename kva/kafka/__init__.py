"""The thin Kafka wrapper: the only package in kva that imports ``confluent_kafka``.

It builds producers and consumers from :class:`~kva.settings.KafkaSettings`,
creates topics with frame-friendly defaults, and implements the
**latest-frame seek**: a consumer that starts at the newest message of each
partition and, whenever it falls more than ``max_lag`` messages behind the
high watermark, jumps to the newest message and counts what it skipped.

Split by role: :mod:`~kva.kafka.config` (librdkafka settings, size limits),
:mod:`~kva.kafka.admin` (brokers, topics), :mod:`~kva.kafka.producer`,
:mod:`~kva.kafka.consumer` (latest frame), :mod:`~kva.kafka.atleastonce` (every
message, committed when handled), :mod:`~kva.kafka.transactional` (exactly once: a
range consumer and a transactional producer committing outputs and offsets together),
:mod:`~kva.kafka.peek` (what a topic holds), :mod:`~kva.kafka.history` (a time
range's records), :mod:`~kva.kafka.record` (a message detached from librdkafka),
:mod:`~kva.kafka.health` and :mod:`~kva.kafka.errors`. The names services use are re-exported here.
"""

from kva.kafka.admin import (
    EVENT_TOPIC_CONFIG,
    FRAME_TOPIC_CONFIG,
    TopicSpec,
    apply_topic_config,
    ensure_topics,
    partition_leaders,
    wait_for_broker,
)
from kva.kafka.atleastonce import AtLeastOnceConsumer
from kva.kafka.config import MAX_MESSAGE_BYTES, client_config, redacted
from kva.kafka.consumer import LatestFrameConsumer
from kva.kafka.errors import KafkaUnavailable, ProduceDropped
from kva.kafka.producer import DeliveryCallback, FrameProducer, Headers
from kva.kafka.record import Record
from kva.kafka.transactional import (
    CommittedOffset,
    RangeConsumer,
    TransactionalProducer,
    TransactionError,
)

__all__ = [
    "EVENT_TOPIC_CONFIG",
    "FRAME_TOPIC_CONFIG",
    "MAX_MESSAGE_BYTES",
    "AtLeastOnceConsumer",
    "CommittedOffset",
    "DeliveryCallback",
    "FrameProducer",
    "Headers",
    "KafkaUnavailable",
    "LatestFrameConsumer",
    "ProduceDropped",
    "RangeConsumer",
    "Record",
    "TopicSpec",
    "apply_topic_config",
    "TransactionError",
    "TransactionalProducer",
    "client_config",
    "ensure_topics",
    "partition_leaders",
    "redacted",
    "wait_for_broker",
]
