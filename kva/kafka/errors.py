"""What the Kafka wrapper raises."""

from __future__ import annotations


class KafkaUnavailable(RuntimeError):
    """The broker could not be reached in time."""


class ProduceDropped(RuntimeError):
    """A message could not be queued (local queue full after bounded retries)."""
