"""Reading what the re-score tests check: every committed record of a topic, on the real broker."""

from __future__ import annotations

import time

from kva.kafka.history import RangeReader
from kva.kafka.record import Record
from kva.settings import KafkaSettings
from kva.timerange import TimeRange

#: Every capture time a test writes (epoch 0 to a day from now).
ALL_TIME_MS = 24 * 3600 * 1000


def committed_records(settings: KafkaSettings, topic: str) -> list[Record]:
    """Every record of ``topic`` a ``read_committed`` reader sees, in offset order per partition."""
    everything = TimeRange(0, int(time.time() * 1000) + ALL_TIME_MS)
    with RangeReader(settings, topic, everything, idle_timeout=20) as reader:
        return list(reader)
