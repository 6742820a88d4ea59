"""How far back a stream can be replayed, from what each partition holds: its own partition
when known, else the newest of the partitions' oldest times; a look that fails keeps the last."""

from __future__ import annotations

import pytest

from kva.kafka import KafkaUnavailable
from kva.kafka.history import PartitionSpan, RangeError
from kva.video.retention import MAX_KNOWN_STREAMS, Retention, RetentionWatcher

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
