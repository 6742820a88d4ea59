"""What a destination is: it gets events and says, for each, delivered, refused or failed.

- **delivered**: the destination acknowledged it (MQTT PUBACK, webhook 2xx);
- **refused**: it will never take it (a webhook's 4xx other than 408/429): the event
  goes to the dead-letter topic, it is not retried;
- **failed**: not now (unreachable, 5xx, timeout): tried again after a backoff, for as
  long as it takes; meanwhile the events wait in Kafka.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from kva.events import Event

#: Wait up to this many seconds while keeping the Kafka consumer alive; True when stopping.
Idle = Callable[[float], bool]


@dataclass(frozen=True, slots=True)
class Item:
    """One event to deliver: the parsed event, the exact bytes from Kafka, where they came from."""

    event: Event
    body: bytes
    where: str


@dataclass(frozen=True, slots=True)
class Delivered:
    """Acknowledged by the destination."""


@dataclass(frozen=True, slots=True)
class Refused:
    """Refused for good (dead-letter topic); ``status`` is the HTTP status."""

    status: int
    detail: str


@dataclass(frozen=True, slots=True)
class Failed:
    """Not delivered now; try again (after ``retry_after`` seconds when the destination said)."""

    detail: str
    retry_after: float | None = None


Outcome = Delivered | Refused | Failed
DELIVERED = Delivered()


class Destination(Protocol):
    """Where events go (MQTT, a webhook)."""

    #: ``mqtt`` or ``webhook``: the metrics label and the log prefix.
    name: str

    def send(self, items: Sequence[Item], idle: Idle) -> list[Outcome]:
        """Try to deliver ``items`` (in order); one outcome each. Never raises for a
        destination that is down: that is a :class:`Failed` outcome."""

    def close(self) -> None:
        """Release connections (bounded in time)."""
