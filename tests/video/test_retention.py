"""How far back a stream can be replayed, from what each partition holds: its own partition
when known, else the newest of the partitions' oldest times; a look that fails keeps the last."""

from __future__ import annotations

import time

import pytest

from kva.frame import Frame
from kva.kafka import KafkaUnavailable, TopicSpec, ensure_topics
from kva.kafka.peek import PartitionSpan, RangeError, TopicPeek
from kva.video.retention import MAX_KNOWN_STREAMS, Retention, RetentionWatcher
from tests.support.kafka import send_frames

SPANS = {
    0: PartitionSpan(0, 10, 20, 1000, 9000),
    1: PartitionSpan(1, 5, 50, 3000, 9500),
    2: PartitionSpan(2, 7, 7, None, None),  # empty
}


def test_a_streams_own_partition_says_how_far_back_it_goes() -> None:
    retention = Retention("annotated", SPANS, 0)
    assert retention.replay_from_ms(0) == 1000
    assert retention.replay_from_ms(1) == 3000
    assert retention.replay_from_ms(2) is None  # its partition holds nothing


@pytest.mark.parametrize("partition", [None, 7])
def test_an_unknown_partition_gives_the_newest_oldest_time(partition: int | None) -> None:
    assert Retention("annotated", SPANS, 0).replay_from_ms(partition) == 3000


def test_an_empty_topic_has_nothing_to_replay() -> None:
    empty = Retention("annotated", {2: SPANS[2]}, 0)
    assert empty.replay_from_ms() is None
    assert empty.held_to_ms() is None
    assert Retention("annotated", SPANS, 0).held_to_ms() == 9500


def test_a_failed_look_keeps_the_last_answer_and_a_missing_topic_has_none(make_settings) -> None:
    answers: list[object] = [list(SPANS.values()), KafkaUnavailable("down"), RangeError("gone")]

    def look(_settings, topic: str) -> list[PartitionSpan]:
        if topic != "annotated":
            raise RangeError(f"topic {topic} does not exist")
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    watcher = RetentionWatcher(make_settings(), look=look, streams=lambda _s, _t: {"cam0": 5})
    assert watcher.topics == ["annotated", "frames"]
    watcher.refresh()
    first = watcher.retention("annotated")
    assert first is not None and first.replay_from_ms(0) == 1000
    assert watcher.retention("frames") is None
    assert watcher.streams() == {"cam0": 5}
    watcher.refresh()  # Kafka away: the last answer stays
    assert watcher.retention("annotated") is first
    watcher.refresh()  # the topic is gone: nothing is replayable
    assert watcher.retention("annotated") is None


def test_the_streams_remembered_are_bounded(make_settings) -> None:
    batches = iter([{f"s{i}": i for i in range(MAX_KNOWN_STREAMS)}, {"newest": 10**9}])
    watcher = RetentionWatcher(
        make_settings(video_frames_topic=""),
        look=lambda _s, _t: [],
        streams=lambda _s, _t: next(batches),
    )
    watcher.refresh()
    watcher.refresh()
    streams = watcher.streams()
    assert len(streams) == MAX_KNOWN_STREAMS
    assert "newest" in streams and "s0" not in streams  # the least recently seen made room


def test_the_thread_looks_at_once_and_stops(make_settings) -> None:
    looked = []
    watcher = RetentionWatcher(
        make_settings(), look=lambda _s, t: looked.append(t) or [], streams=lambda _s, _t: {}
    )
    watcher.start()
    watcher.stop()
    assert looked[:2] == ["annotated", "frames"]


@pytest.mark.integration
def test_every_look_shares_one_kafka_client_closed_on_stop(
    make_settings, kafka_settings, unique_name, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new client per look grew the viewer's RSS by ~0.8 MB a look (glibc thread arenas)."""
    opened: list[CountedPeek] = []

    class CountedPeek(TopicPeek):
        def __init__(self, settings) -> None:
            super().__init__(settings)
            self.closed = False
            opened.append(self)

        def close(self) -> None:
            self.closed = True
            super().close()

    monkeypatch.setattr("kva.video.retention.TopicPeek", CountedPeek)
    ensure_topics(kafka_settings, [TopicSpec(unique_name, partitions=1)])
    t0_ms = (int(time.time()) - 30) * 1000
    send_frames(
        kafka_settings,
        unique_name,
        *[Frame("cam0", i, (t0_ms + i * 100) * 1_000_000, 2, 2, b"\xff\xd8") for i in range(5)],
    )
    settings = make_settings(
        bootstrap_server=kafka_settings.bootstrap_server,
        video_topic=unique_name,
        video_frames_topic="",
    )
    watcher = RetentionWatcher(settings)
    for _ in range(3):
        watcher.refresh()
    retention = watcher.retention(unique_name)
    assert retention is not None
    assert (retention.replay_from_ms(0), retention.held_to_ms()) == (t0_ms, t0_ms + 400)
    assert watcher.streams() == {"cam0": t0_ms + 400}
    assert len(opened) == 1 and not opened[0].closed
    watcher.stop()
    assert opened[0].closed
