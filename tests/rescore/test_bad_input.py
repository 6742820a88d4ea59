"""What a re-score says and does with bad input, on the real broker with a real model: corrupt
records in the range are counted and skipped while the run goes on; a range with nothing in
it (empty, expired), a topic that does not exist or a group that is not a re-score's is
refused with what there is instead."""

from __future__ import annotations

import pytest

from kva.frame import H_CAPTURE_NS, H_SEQUENCE, Frame, encode_frame
from kva.kafka import CommittedOffset, FrameProducer, RangeConsumer, TransactionalProducer
from kva.settings import KafkaSettings
from tests.rescore.conftest import (
    FRAME_NS,
    answers,
    kept_topic,
    model_flags,
    now_minus,
    rescore_argv,
)
from tests.support.process import KvaProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _argv(kafka_settings, frames: str, group: str, replicas, *flags: str) -> list[str]:
    outputs = ["--output-topic=", f"--metadata-topic={group}-pred", "--events-topic="]
    models = model_flags(replicas, "mobilenet_v2")
    return rescore_argv(kafka_settings, frames, group, *models, *outputs, *flags)


def _one_frame(kafka_settings: KafkaSettings, frames: str, jpeg: bytes, capture_ns: int) -> None:
    producer = FrameProducer(kafka_settings)
    producer.send_frame(frames, Frame("cam", 0, capture_ns, 768, 576, jpeg))
    assert producer.flush(10) == 0


def _ended(process: KvaProcess, code: int) -> str:
    assert process.wait(120) == code, process.tail()
    return process.output()


def test_corrupt_records_in_the_range_are_counted_and_skipped(
    replicas, video_jpegs, kafka_settings: KafkaSettings, unique_name: str, start_kva
) -> None:
    frames = kept_topic(kafka_settings, f"{unique_name}-frames")
    start_ns = now_minus(60)
    producer = FrameProducer(kafka_settings)
    for seq, data in enumerate(video_jpegs[:6]):
        capture = start_ns + seq * FRAME_NS
        stamp = capture // 1_000_000
        producer.send_frame(frames, Frame("cam", seq, capture, 768, 576, data))
        if seq == 1:
            producer.send(frames, b"cam", b"", timestamp_ms=stamp)  # empty
        if seq == 2:
            key, _value, headers = encode_frame(Frame("cam", 99, capture, 768, 576, b"x" * 10))
            producer.send(frames, key, b"eleven byte", headers, timestamp_ms=stamp)  # not 10
            fake = Frame("cam", 98, capture + 1, 768, 576, b"\xff\xd8 not a real jpeg")
            producer.send_frame(frames, fake)
        if seq == 3:
            key, value, headers = encode_frame(Frame("cam", 97, capture, 8, 8, b"\xff\xd8"))
            kept = [(k, v) for k, v in headers if k not in (H_SEQUENCE, H_CAPTURE_NS)]
            producer.send(frames, key, value, kept, timestamp_ms=stamp)  # no seq header
    assert producer.flush(10) == 0
    range_start = (start_ns - 3600 * 10**9) // 1_000_000  # an hour before: only part is held
    process = start_kva(
        *_argv(kafka_settings, frames, unique_name, replicas, f"--from={range_start}", "--to=now")
    )
    out = _ended(process, 0)
    assert "the range starts before the oldest frame still held" in out, out
    assert "frames processed: 6 (1 stream(s))" in out, out
    assert "skipped records: 4 (bad_jpeg: 1, empty: 1, missing_header: 1, size_mismatch: 1)" in out
    docs = answers(kafka_settings, f"{unique_name}-pred")
    assert [d["seq"] for d in docs] == list(range(6))


def test_a_range_without_frames_says_what_the_topic_holds(
    replicas, video_jpegs, kafka_settings: KafkaSettings, unique_name: str, start_kva
) -> None:
    frames = kept_topic(kafka_settings, f"{unique_name}-frames")
    start_ns = now_minus(30)
    _one_frame(kafka_settings, frames, video_jpegs[0], start_ns)
    long_ago = [
        f"--from={(start_ns // 10**6) - 7_200_000}",
        f"--to={(start_ns // 10**6) - 3_600_000}",
    ]
    out = _ended(start_kva(*_argv(kafka_settings, frames, unique_name, replicas, *long_ago)), 1)
    assert "cannot start: nothing in" in out and f"topic {frames} holds" in out, out
    missing = f"{unique_name}-nothing"
    out = _ended(start_kva(*_argv(kafka_settings, missing, unique_name, replicas, "--from=-5m")), 1)
    assert f"topic {missing} does not exist" in out, out


def test_a_group_with_offsets_no_rescore_wrote_is_refused(
    replicas, video_jpegs, kafka_settings: KafkaSettings, unique_name: str, start_kva
) -> None:
    frames = kept_topic(kafka_settings, f"{unique_name}-frames")
    _one_frame(kafka_settings, frames, video_jpegs[0], now_minus(10))
    group = f"{unique_name}-live"
    consumer = RangeConsumer(kafka_settings, frames, group)
    writer = TransactionalProducer(kafka_settings, f"{unique_name}-other")
    try:
        writer.start()
        writer.commit(consumer, {0: CommittedOffset(1)})  # as a live consumer's commit looks
    finally:
        consumer.close()
    process = start_kva(*_argv(kafka_settings, frames, group, replicas, "--from=-5m"))
    out = _ended(process, 1)
    assert f"group {group} has offsets of {frames} that no re-score committed" in out, out


def test_the_live_topics_are_refused(start_kva) -> None:
    process = start_kva("consume", "--model=m=http://127.0.0.1:1/v1/models/m", "--from", "-5m")
    out = _ended(process, 2)
    assert "--metadata-topic is 'predictions', the live pipeline's" in out, out
