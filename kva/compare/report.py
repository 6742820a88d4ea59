"""One comparison from settings to the printed table: read, join, compare, render."""

from __future__ import annotations

import time

from kva.compare.agreement import Comparison, RunStats
from kva.compare.config import CompareSettings
from kva.compare.join import JoinCounts, join
from kva.compare.reader import RunReader
from kva.compare.table import RunInfo, render
from kva.timerange import TimeRange, parse_instant

#: The default range: every capture time up to a day ahead (clocks of cameras drift).
_AHEAD_MS = 24 * 3600 * 1000


def time_range(settings: CompareSettings, now_ms: int) -> TimeRange:
    """``--from``/``--to``, else everything the topics hold (epoch 0 to a day from now).

    Raises:
        TimeRangeError: a time cannot be read, or the range is empty or reversed.
    """
    start, end = settings.compare_from, settings.compare_to
    return TimeRange(
        0 if start is None else parse_instant(start, now_ms),
        now_ms + _AHEAD_MS if end is None else parse_instant(end, now_ms),
    )


def compare(settings: CompareSettings) -> str:
    """The agreement table of ``--a`` and ``--b`` (see :mod:`kva.compare`).

    Raises:
        CompareError: run A is too large to hold.
        RangeError: a topic does not exist or holds nothing in the range.
        TimeRangeError: ``--from``/``--to`` cannot be read.
        KafkaUnavailable: the broker does not answer.
    """
    span = time_range(settings, time.time_ns() // 1_000_000)
    stream = settings.compare_stream
    reader_a = RunReader(settings, settings.compare_a, span, stream)
    reader_b = RunReader(settings, str(settings.compare_b), span, stream)
    stats_a, stats_b = RunStats(), RunStats()
    counts = JoinCounts()
    comparison = Comparison(settings.compare_iou, settings.pairs())
    pairs = join(
        stats_a.tap(reader_a),
        stats_b.tap(reader_b),
        counts,
        max_frames=settings.compare_max_frames,
    )
    for document_a, document_b in pairs:
        comparison.add(document_a, document_b)
    return render(
        RunInfo(settings.compare_a, reader_a.documents, reader_a.corrupt, stats_a),
        RunInfo(reader_b.topic, reader_b.documents, reader_b.corrupt, stats_b),
        counts,
        comparison,
    )
