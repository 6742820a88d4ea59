"""``retained`` reads one record batch per partition with the smallest fetch limits: the
answer is the same when a batch (one large frame) is far over those limits."""

from __future__ import annotations

import time

import pytest

from kva.frame import Frame
from kva.kafka import TopicSpec, ensure_topics
from kva.kafka.peek import retained
from tests.support.kafka import send_frames

pytestmark = pytest.mark.integration

T0_MS = (int(time.time()) - 60) * 1000


def test_large_frames_are_read_whole_by_the_peek(kafka_settings, unique_name) -> None:
    config = {"retention.ms": str(3_600_000), "segment.ms": str(3_600_000)}
    ensure_topics(kafka_settings, [TopicSpec(unique_name, partitions=2, config=config)])
    frames = [
        Frame(stream, seq, (T0_MS + seq * 1000 + shift) * 1_000_000, 2, 2, bytes(3 * 1024 * 1024))
        for seq in range(3)
        for stream, shift in (("a", 0), ("b", 7))
    ]
    send_frames(kafka_settings, unique_name, *frames)
    spans = [s for s in retained(kafka_settings, unique_name) if not s.empty]
    firsts = sorted(s.first_ms for s in spans if s.first_ms is not None)
    lasts = sorted(s.last_ms for s in spans if s.last_ms is not None)
    if len(spans) == 1:  # both streams in one partition
        assert (firsts, lasts) == ([T0_MS], [T0_MS + 2007])
    else:
        assert (firsts, lasts) == ([T0_MS, T0_MS + 7], [T0_MS + 2000, T0_MS + 2007])
