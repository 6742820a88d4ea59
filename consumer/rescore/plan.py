"""Which offsets a re-score reads and publishes: its range per partition, and how far it got.

A new re-score resolves its time range to offsets (``offsets_for_times``). Each
transaction commits, per partition, the next offset to publish together with the
range in the offset's metadata (``kva-rescore/1 START_MS END_MS START END``), so a
re-score that is started again finds its range in its group and resumes it, whatever
``--from -5m`` means by then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kva.kafka import CommittedOffset
from kva.timerange import TimeRange, TimeRangeError

#: The first word of the offset metadata a re-score commits.
METADATA_PREFIX = "kva-rescore/1"


class RescoreError(RuntimeError):
    """A re-score cannot start or go on; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class PartitionPlan:
    """The range in one partition (``start <= offset < end``) and its committed ``done``."""

    partition: int
    start: int
    end: int
    done: int

    @property
    def finished(self) -> bool:
        """Whether every record of the range has its outputs committed."""
        return self.done >= self.end


@dataclass(frozen=True, slots=True)
class RangePlan:
    """What one re-score reads: its topic, time range and offsets per partition."""

    topic: str
    time_range: TimeRange
    partitions: tuple[PartitionPlan, ...]
    resumed: bool = False

    @property
    def total(self) -> int:
        """Offsets in the range (records, plus transaction markers if the topic has any)."""
        return sum(p.end - p.start for p in self.partitions)

    @property
    def remaining(self) -> int:
        """Offsets of the range not done yet."""
        return sum(max(0, p.end - max(p.done, p.start)) for p in self.partitions)

    @property
    def finished(self) -> bool:
        return all(p.finished for p in self.partitions)

    def partition(self, number: int) -> PartitionPlan:
        return next(p for p in self.partitions if p.partition == number)

    def read_from(self, *, replay: bool) -> dict[int, int]:
        """Where to read each unfinished partition: its start to replay, else its done."""
        return {
            p.partition: p.start if replay else max(p.start, p.done)
            for p in self.partitions
            if not p.finished
        }

    def offsets(self, published: Mapping[int, int]) -> dict[int, CommittedOffset]:
        """The offsets to commit: per partition, the next offset to publish (never less than
        what is done), with the range in the metadata."""
        return {
            p.partition: CommittedOffset(
                max(p.done, p.start, published.get(p.partition, p.start)), self.metadata(p)
            )
            for p in self.partitions
        }

    def metadata(self, part: PartitionPlan) -> str:
        """The offset metadata naming the range (see the module docstring)."""
        span = self.time_range
        return f"{METADATA_PREFIX} {span.start_ms} {span.end_ms} {part.start} {part.end}"


def new_plan(
    topic: str, time_range: TimeRange, offsets: Mapping[int, tuple[int, int]]
) -> RangePlan:
    """The plan of a re-score that starts afresh: ``partition -> (start, end)`` offsets."""
    parts = tuple(
        PartitionPlan(p, start, end, start) for p, (start, end) in sorted(offsets.items())
    )
    return RangePlan(topic, time_range, parts)


def resumed_plan(
    topic: str, group: str, committed: Mapping[int, CommittedOffset]
) -> RangePlan | None:
    """The plan stored in ``group``'s committed offsets of ``topic``, or None when there are none.

    Raises:
        RescoreError: the group has offsets no re-score wrote (it is some other consumer's
            group), or offsets of two different ranges.
    """
    if not committed:
        return None
    ranges: set[tuple[int, int]] = set()
    parts = []
    for partition, offset in sorted(committed.items()):
        stored = parse_metadata(offset.metadata)
        if stored is None:
            raise RescoreError(
                f"group {group} has offsets of {topic} that no re-score committed (is it a "
                "live consumer's group?): give the re-score a --group-id of its own"
            )
        start_ms, end_ms, start, end = stored
        ranges.add((start_ms, end_ms))
        parts.append(PartitionPlan(partition, start, end, offset.offset))
    if len(ranges) != 1:
        raise RescoreError(f"group {group} holds offsets of several ranges: use a new --group-id")
    start_ms, end_ms = ranges.pop()
    return RangePlan(topic, TimeRange(start_ms, end_ms), tuple(parts), resumed=True)


def parse_metadata(text: str) -> tuple[int, int, int, int] | None:
    """``(start_ms, end_ms, start, end)`` from a re-score's offset metadata, else None."""
    words = text.split()
    if len(words) != 5 or words[0] != METADATA_PREFIX:
        return None
    try:
        start_ms, end_ms, start, end = (int(w) for w in words[1:])
        TimeRange(start_ms, end_ms)
    except (ValueError, TimeRangeError):
        return None
    if not 0 <= start <= end:
        return None
    return start_ms, end_ms, start, end
