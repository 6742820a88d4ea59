"""``kva compare`` on the real broker, against documents whose agreement is known, and its
parts without one."""

from __future__ import annotations

import time

import pytest

from kva.compare.agreement import Latency, iou, matched_boxes
from kva.kafka import FrameProducer
from kva.predictions import Classification, Detections, FramePredictions, ModelResult
from kva.settings import KafkaSettings
from tests.support.process import run_kva

FRAME_NS = 100_000_000
SQUARE = (0.0, 0.0, 0.5, 0.5)
CORNER = (0.5, 0.5, 1.0, 1.0)
#: IoU 0.4 with CORNER: not the same object at 0.5.
LOWER_CORNER = (0.5, 0.8, 1.0, 1.0)


def _doc(seq: int, start_ns: int, *models: ModelResult) -> FramePredictions:
    capture = start_ns + seq * FRAME_NS
    return FramePredictions("cam0", seq, capture, capture + 5_000_000, 64, 48, models)


def _classifier(name: str, label: str, latency_ms: float) -> ModelResult:
    prediction = Classification((1,), (label,), (0.9,))
    return ModelResult(name, "ok", prediction, latency_ms / 1000, "http://replica")


def _detector(name: str, boxes: list[tuple[float, ...]], latency_ms: float) -> ModelResult:
    prediction = Detections(tuple(boxes), tuple(0.9 for _ in boxes), "person")  # type: ignore[arg-type]
    return ModelResult(name, "ok", prediction, latency_ms / 1000, "http://replica")


def run_a(start_ns: int) -> list[FramePredictions]:
    """Frames 0..10: the classifier says cat, the detector finds SQUARE and CORNER."""
    return [
        _doc(seq, start_ns, _classifier("cls", "cat", 10), _detector("det", [SQUARE, CORNER], 30))
        for seq in range(11)
    ]


def run_b(start_ns: int) -> list[FramePredictions]:
    """Frames 0..9 and 11: dog from frame 7 on; CORNER moves down from frame 5 on; frame 9
    has one box more; a model run A does not have."""
    docs = []
    for seq in [*range(10), 11]:
        label = "cat" if seq < 7 else "dog"
        boxes = [SQUARE, CORNER if seq < 5 else LOWER_CORNER] + ([SQUARE] * (seq == 9))
        docs.append(
            _doc(
                seq,
                start_ns,
                _classifier("cls2", label, 20),
                _detector("det", boxes, 40),
                _detector("extra", [], 1),
            )
        )
    return docs


def _write(settings: KafkaSettings, topic: str, docs: list[FramePredictions], *raw: bytes) -> None:
    producer = FrameProducer(settings)
    for doc in docs:
        stamp = doc.capture_ns // 1_000_000
        producer.send(topic, b"cam0", doc.to_json().encode(), timestamp_ms=stamp)
    for value in raw:
        producer.send(topic, b"cam0", value, timestamp_ms=docs[0].capture_ns // 1_000_000)
    assert producer.flush(10) == 0


def _compare(kafka_settings: KafkaSettings, *flags: str) -> tuple[int, str, str]:
    done = run_kva(
        "compare", "--bootstrap-server", kafka_settings.bootstrap_server, *flags, timeout=120
    )
    return done.returncode, done.stdout, done.stderr


def _row(table: str, model: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(model + " "))
    return line.split()


def test_the_table_of_two_runs_says_what_they_agree_on(
    kafka_settings: KafkaSettings, make_topic
) -> None:
    start_ns = time.time_ns() - 60 * 10**9
    topic_a, topic_b = make_topic(suffix="a"), make_topic(suffix="b")
    _write(kafka_settings, topic_a, run_a(start_ns))
    _write(kafka_settings, topic_b, run_b(start_ns), b"not json")
    code, out, err = _compare(kafka_settings, "--a", topic_a, "--b", topic_b, "--pair", "cls=cls2")
    assert code == 0, err
    print(f"\n{out}")
    assert f"A: {topic_a}: 11 frame(s), models cls, det" in out
    assert (
        f"B: {topic_b}: 11 frame(s), models cls2, det, extra; 1 record(s) skipped (bad_json: 1)"
        in out
    )
    assert "frames in both: 10, only in A: 1, only in B: 1" in out
    # model, kind, frames, top-1, recall, precision, count B-A, |B-A|, A p50 / p95, B p50 / p95
    assert _row(out, "cls") == [
        "cls", "->", "cls2", "classifier", "10", "70.0%", "-", "-", "-", "-",
        "10.0", "/", "10.0", "20.0", "/", "20.0",
    ]  # fmt: skip
    # A's 20 boxes, B's 21, 15 matched: SQUARE on every frame, CORNER on frames 0..4
    assert _row(out, "det") == [
        "det", "detector", "10", "-", "75.0%", "71.4%", "+0.10", "0.10",
        "30.0", "/", "30.0", "40.0", "/", "40.0",
    ]  # fmt: skip
    assert _row(out, "extra")[:3] == ["extra", "detector", "(only", "in", "B)"][:3]
    assert "(only in B)" in next(line for line in out.splitlines() if line.startswith("extra"))


def test_the_same_model_twice_agrees_entirely(kafka_settings: KafkaSettings, make_topic) -> None:
    start_ns = time.time_ns() - 60 * 10**9
    topic_a, copy = make_topic(suffix="a"), make_topic(suffix="copy")
    _write(kafka_settings, topic_a, run_a(start_ns))
    _write(kafka_settings, copy, run_a(start_ns))
    code, out, err = _compare(kafka_settings, "--a", topic_a, "--b", copy)
    assert code == 0, err
    assert "frames in both: 11, only in A: 0, only in B: 0" in out
    assert _row(out, "cls")[:4] == ["cls", "classifier", "11", "100.0%"]
    assert _row(out, "det")[:8] == [
        "det",
        "detector",
        "11",
        "-",
        "100.0%",
        "100.0%",
        "+0.00",
        "0.00",
    ]


def test_a_missing_topic_or_an_empty_range_says_what_there_is(
    kafka_settings: KafkaSettings, make_topic, unique_name: str
) -> None:
    topic_a = make_topic(suffix="a")
    _write(kafka_settings, topic_a, run_a(time.time_ns() - 60 * 10**9))
    code, _out, err = _compare(kafka_settings, "--a", topic_a, "--b", f"{unique_name}-nothing")
    assert code == 1 and f"topic {unique_name}-nothing does not exist" in err, err
    code, _out, err = _compare(
        kafka_settings, "--a", topic_a, "--b", topic_a + "x", "--from", "-10s", "--to", "now"
    )
    assert code == 1
    code, _out, err = _compare(kafka_settings, "--a", topic_a, "--b", topic_a, "--from", "-5s")
    assert code == 2 and "--a and --b are both" in err, err
    code, _out, err = _compare(
        kafka_settings, "--a", topic_a, "--b", topic_a, "--pair", "cls=cls", "--from", "-10s"
    )
    assert code == 1 and "nothing in" in err and f"topic {topic_a} holds" in err, err


def test_iou_and_one_to_one_matching() -> None:
    assert iou(CORNER, CORNER) == 1.0
    assert iou(SQUARE, CORNER) == 0.0
    assert iou(CORNER, LOWER_CORNER) == pytest.approx(0.4)
    assert matched_boxes([CORNER], [CORNER, CORNER], 0.5) == 1, "one to one"
    assert matched_boxes([CORNER, SQUARE], [SQUARE, LOWER_CORNER], 0.5) == 1
    assert matched_boxes([CORNER], [LOWER_CORNER], 0.39) == 1
    assert matched_boxes([], [CORNER], 0.5) == 0


def test_latency_percentiles_are_within_a_percent() -> None:
    latency = Latency()
    for ms in range(1, 101):
        latency.add(float(ms))
    assert latency.percentile(0.5) == pytest.approx(50, rel=0.01)
    assert latency.percentile(0.95) == pytest.approx(95, rel=0.01)
    assert Latency().percentile(0.5) == 0.0
