"""Bad input, systematically: one corpus of malformed frame messages, through the real broker,
to a running consumer and a running viewer at the same time.

The corpus is data (:data:`CORPUS`): each case is one Kafka message (key, value, headers) and
the reason each service must count it under. The consumer counts every bad message as
``kva_consume_frames_dropped_total{reason="decode_error"}`` (under the stream label when the
envelope decoded, ``_unknown`` when it did not); the viewer counts it in
``kva_video_messages_rejected_total{reason=...}`` with the envelope's finer reason, or shows it
(``viewer=None``: a valid envelope around a payload the viewer does not decode).

Both services read the same topic. Every bad message is followed by a good frame of the same
stream, which must come out of the consumer and become the viewer's newest frame before the
next case starts; the processes must stay healthy and log at most one line per reason per
interval (checked with a flood at the end).
"""

from __future__ import annotations

import logging
import random
import shutil
import struct
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from flask import Flask
from prometheus_client import CollectorRegistry

from kva.consumer.service import ConsumerService
from kva.frame import Frame, encode_frame
from kva.kafka import MAX_MESSAGE_BYTES, FrameProducer, Record
from kva.settings import KafkaSettings
from kva.video.app import create_app
from kva.video.config import VideoSettings
from kva.video.reader import KafkaReader
from kva.video.state import viewer_state
from tests.consumer.conftest import (
    Reader,
    Topics,
    consumer_settings,
    jpeg,
    running_consumer,
    scrape,
    wait_for,
)
from tests.consumer.model_server import FixedLatencyServer

pytestmark = [pytest.mark.faults, pytest.mark.integration]

STREAM = "cam0"
#: ``--max-frame-bytes`` of both services in this test.
LIMIT = 200_000
#: Both services log a reason at most once per this many seconds.
LOG_INTERVAL = 10.0
UNKNOWN = "_unknown"
GOOD = jpeg(320, 180)

HeaderList = list[tuple[str | bytes, bytes | None]]


def _png() -> bytes:
    ok, data = cv2.imencode(".png", np.full((180, 320, 3), 90, np.uint8))
    assert ok
    return data.tobytes()


def _jpeg_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """GOOD with its frame header claiming ``width``x``height`` (a few KB, gigabytes decoded)."""
    data = bytearray(GOOD)
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _random_bytes(size: int = 4000) -> bytes:
    data = random.Random(9).randbytes(size)
    assert not data.startswith(b"\xff\xd8")
    return data


def envelope(
    data: bytes = GOOD,
    *,
    key: bytes | None = STREAM.encode(),
    set_headers: dict[str, bytes | None] | None = None,
    drop: tuple[str, ...] = (),
    extra: HeaderList | None = None,
) -> tuple[bytes | None, bytes, HeaderList]:
    """A frame message of ``data`` (headers of a real encoded frame), then broken as asked."""
    _key, value, encoded = encode_frame(Frame(STREAM, 1, time.time_ns(), 320, 180, data))
    headers: HeaderList = []
    for name, raw in encoded:
        if name in drop:
            continue
        headers.append((name, (set_headers or {}).get(name, raw)))
    return key, value, headers + list(extra or [])


@dataclass(frozen=True)
class Case:
    """One malformed message and what each service must make of it."""

    name: str
    message: tuple[bytes | None, bytes, HeaderList]
    #: stream label of the consumer's ``decode_error`` drop.
    consumer_stream: str
    #: the viewer's rejection reason; None when the viewer shows the frame (not decoded there).
    viewer: str | None
    #: produced with kcat (the Python client cannot send a header name that is not UTF-8).
    kcat: bool = False

    @property
    def key(self) -> bytes | None:
        return self.message[0]


CORPUS: list[Case] = [
    Case("empty value", envelope(b""), UNKNOWN, "empty"),
    Case("truncated JPEG", envelope(GOOD[: len(GOOD) // 2]), STREAM, None),
    Case("random bytes", envelope(_random_bytes()), STREAM, "bad_image"),
    Case("PNG labelled image/jpeg", envelope(_png()), STREAM, "bad_image"),
    Case(
        "PNG labelled image/png",
        envelope(_png(), set_headers={"content-type": b"image/png"}),
        STREAM,
        None,
    ),
    Case(
        "HTML labelled text/html",
        envelope(b"<script>alert(1)</script>", set_headers={"content-type": b"text/html"}),
        STREAM,
        "bad_content_type",
    ),
    Case("JPEG claiming 30000x30000 pixels", envelope(_jpeg_bomb()), STREAM, None),
    Case("payload above --max-frame-bytes", envelope(GOOD + b"\0" * LIMIT), UNKNOWN, "oversized"),
    Case("no headers", (STREAM.encode(), GOOD, []), UNKNOWN, "missing_header"),
    Case("kva-seq missing", envelope(drop=("kva-seq",)), UNKNOWN, "missing_header"),
    Case("content-type missing", envelope(drop=("content-type",)), UNKNOWN, "missing_header"),
    Case(
        "header value not UTF-8",
        envelope(set_headers={"kva-seq": b"\xff\xfe"}),
        UNKNOWN,
        "bad_header",
    ),
    Case(
        "header without a value", envelope(set_headers={"kva-width": None}), UNKNOWN, "bad_header"
    ),
    Case(
        "header name not UTF-8",
        envelope(extra=[(b"kva-\xff\xfe", b"1")]),
        UNKNOWN,
        "bad_header",
        kcat=True,
    ),
    Case(
        "300 KiB header value",
        envelope(extra=[("kva-note", b"n" * 300 * 1024)]),
        UNKNOWN,
        "bad_header",
    ),
    Case(
        "100 headers",
        envelope(extra=[(f"kva-x{i}", b"1") for i in range(100)]),
        UNKNOWN,
        "bad_header",
    ),
    Case(
        "kva-seq not a number", envelope(set_headers={"kva-seq": b"twelve"}), UNKNOWN, "bad_header"
    ),
    Case("negative width", envelope(set_headers={"kva-width": b"-320"}), UNKNOWN, "bad_header"),
    Case("zero height", envelope(set_headers={"kva-height": b"0"}), UNKNOWN, "bad_header"),
    Case("width 10^6", envelope(set_headers={"kva-width": b"1000000"}), UNKNOWN, "bad_header"),
    Case(
        "kva-seq beyond int64",
        envelope(set_headers={"kva-seq": b"99999999999999999999"}),
        UNKNOWN,
        "bad_header",
    ),
    Case(
        "capture time as a float",
        envelope(set_headers={"kva-capture-ns": b"1.7e18"}),
        UNKNOWN,
        "bad_header",
    ),
    Case("kva-size lies", envelope(set_headers={"kva-size": b"10"}), UNKNOWN, "size_mismatch"),
    Case(
        "content-type without a slash",
        envelope(set_headers={"content-type": b"jpeg"}),
        UNKNOWN,
        "bad_header",
    ),
    Case("no key", envelope(key=None), UNKNOWN, "missing_key"),
    Case("stream id not UTF-8", envelope(key=b"cam\xff\xfe"), UNKNOWN, "bad_key"),
    Case("stream id with a path", envelope(key=b"../../etc/passwd"), UNKNOWN, "bad_key"),
    Case("stream id with a slash", envelope(key=b"cams/0"), UNKNOWN, "bad_key"),
    Case(
        "stream id with a newline",
        envelope(key=b"cam0\n2026-11-25T10:00:00.000Z INFO forged: log line"),
        UNKNOWN,
        "bad_key",
    ),
    Case("stream id of 200 bytes", envelope(key=b"c" * 200), UNKNOWN, "bad_key"),
]


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of ``name`` by its sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name:
                labels = tuple(sorted(sample.labels.items()))
                found[labels] = found.get(labels, 0.0) + sample.value
    return found


Samples = dict[tuple[tuple[str, str], ...], float]


def _diff(after: Samples, before: Samples) -> Samples:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


@dataclass
class Viewer:
    """An in-process viewer (app + Kafka reader) on the corpus topic."""

    app: Flask
    reader: KafkaReader

    @property
    def registry(self) -> CollectorRegistry:
        return viewer_state(self.app).metrics.registry

    def shown(self) -> int | None:
        """Sequence of the newest frame of STREAM, as /api/streams reports it."""
        body = self.app.test_client().get("/api/streams").get_json()
        sequences = [s["sequence"] for s in body["streams"] if s["id"] == STREAM]
        return sequences[0] if sequences else None


@pytest.fixture
def viewer(kafka_settings: KafkaSettings, make_topic: Callable[..., str]) -> Iterator[Viewer]:
    settings = VideoSettings(
        bootstrap_server=kafka_settings.bootstrap_server,
        video_topic=make_topic(suffix="in"),
        video_metadata_topic="",
        video_max_frame_bytes=LIMIT,
    )
    holder: list[KafkaReader] = []
    app = create_app(settings, healthy=lambda: bool(holder) and holder[0].alive())
    state = viewer_state(app)
    reader = KafkaReader(settings, state.store, state.metrics).start()
    holder.append(reader)
    try:
        yield Viewer(app, reader)
    finally:
        reader.stop()


@dataclass
class Sender:
    """Produces the corpus and good frames (kcat for what the Python client cannot send)."""

    settings: KafkaSettings
    topic: str
    tmp: Path
    producer: FrameProducer = field(init=False)

    def __post_init__(self) -> None:
        self.producer = FrameProducer(self.settings, linger_ms=0)

    def good(self, seq: int) -> None:
        self.producer.send_frame(self.topic, Frame(STREAM, seq, time.time_ns(), 320, 180, GOOD))
        assert self.producer.flush(10) == 0

    def bad(self, case: Case, flush: bool = True) -> None:
        key, value, headers = case.message
        # a fresh capture time, so a frame that decodes is not dropped as stale instead
        now = str(time.time_ns()).encode()
        headers = [
            (n, now if n == "kva-capture-ns" and v and v.isdigit() else v) for n, v in headers
        ]
        if case.kcat:
            self._kcat(key, value, headers)
            return
        self.producer.send(self.topic, key, value, [(str(n), v) for n, v in headers])  # type: ignore[misc]
        if flush:
            assert self.producer.flush(10) == 0

    def _kcat(self, key: bytes | None, value: bytes, headers: HeaderList) -> None:
        kcat = shutil.which("kcat")
        assert kcat, "kcat is needed to send a header name that is not UTF-8 (scripts/setup.sh)"
        payload = self.tmp / "payload"
        payload.write_bytes(value)
        argv: list[str | bytes] = [
            kcat,
            "-P",
            "-b",
            self.settings.bootstrap_server,
            "-t",
            self.topic,
        ]
        if key is not None:
            argv += ["-k", key]
        for name, raw in headers:
            name_bytes = name if isinstance(name, bytes) else name.encode()
            argv += ["-H", name_bytes + b"=" + (raw or b"")]
        subprocess.run(
            [*argv, str(payload)],
            check=True,
            timeout=30,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )


def test_corpus_is_counted_by_reason_and_the_next_good_frame_goes_through(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    unique_name: str,
    viewer: Viewer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    topic = viewer.reader.topics[0]
    topics = Topics(topic, make_topic(suffix="out"), make_topic(suffix="meta"))
    server = FixedLatencyServer(latency=0).start()
    send = Sender(kafka_settings, topic, tmp_path)
    out = Reader(kafka_settings, topics.output, f"{unique_name}-out")
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=[f"mobilenet_v2={server.url()}"],
        consume_max_frame_bytes=LIMIT,
    )
    try:
        with running_consumer(settings) as service:
            # both readers assigned and reading: a good frame reaches both
            # each attempt its own sequence: a repeated one would be dropped as stale
            warm_up = iter(range(1, 1000))
            seq = wait_for(
                lambda: _good_through(send, out, viewer, next(warm_up)), 60, "warm-up frame"
            )
            outcome = []
            for case in CORPUS:
                seq += 1
                outcome.append(_run_case(case, seq, send, service, out, viewer))
            _flood(send, service, out, viewer, seq + 1)
            assert scrape(service, "/healthz").status_code == 200
            metrics_text = scrape(service).text
        assert viewer.reader.alive()
        assert viewer.app.test_client().get("/healthz").status_code == 200
        assert 'reason="decode_error"' in metrics_text
    finally:
        out.close()
        server.stop()
    elapsed = time.monotonic() - started
    lines = _check_logs(caplog.records, elapsed)
    # nothing was handed to libjpeg that makes it write to stderr (outside logging, unthrottled)
    assert "JPEG" not in capfd.readouterr().err
    # only the good stream ever reached the viewer's page
    streams = viewer.app.test_client().get("/api/streams").get_json()["streams"]
    assert [s["id"] for s in streams] == [STREAM]
    print("\n".join(outcome))
    print(f"log lines per reason in {elapsed:.1f}s: {dict(lines)}")


def _good_through(send: Sender, out: Reader, viewer: Viewer, seq: int) -> int | None:
    """``seq`` once a good frame of that sequence is published and shown, else None."""
    send.good(seq)
    return seq if _eventually(lambda: _published(out, seq) and viewer.shown() == seq, 2) else None


def _eventually(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        threading.Event().wait(0.02)
    return bool(condition())


def _published(out: Reader, seq: int) -> bool:
    return any(_sequence(r) == seq for r in out.snapshot())


def _sequence(record: Record) -> int | None:
    try:
        return record.frame().sequence
    except ValueError:
        return None


def _run_case(
    case: Case, seq: int, send: Sender, service: ConsumerService, out: Reader, viewer: Viewer
) -> str:
    """Send one bad message then a good frame; check both services' counters and output."""
    dropped_name, rejected_name = (
        "kva_consume_frames_dropped_total",
        "kva_video_messages_rejected_total",
    )
    received_name = "kva_video_frames_received_total"
    before = {
        "dropped": _samples(service.metrics.registry, dropped_name),
        "rejected": _samples(viewer.registry, rejected_name),
        "received": _samples(viewer.registry, received_name),
    }
    send.bad(case)
    send.good(seq)
    expected_drop = {(("reason", "decode_error"), ("stream", case.consumer_stream)): 1.0}
    topic = viewer.reader.topics[0]
    expected_rejected = (
        {(("reason", case.viewer), ("topic", topic)): 1.0} if case.viewer is not None else {}
    )
    expected_received = {(("stream", STREAM),): 1.0 if case.viewer is not None else 2.0}

    def settled() -> bool:
        return (
            _published(out, seq)
            and viewer.shown() == seq
            and _diff(_samples(service.metrics.registry, dropped_name), before["dropped"])
            == expected_drop
            and _diff(_samples(viewer.registry, rejected_name), before["rejected"])
            == expected_rejected
            and _diff(_samples(viewer.registry, received_name), before["received"])
            == expected_received
        )

    if not _eventually(settled, 15):
        pytest.fail(
            f"case {case.name!r}: consumer drops "
            f"{_diff(_samples(service.metrics.registry, dropped_name), before['dropped'])} "
            f"(want {expected_drop}), viewer rejections "
            f"{_diff(_samples(viewer.registry, rejected_name), before['rejected'])} "
            f"(want {expected_rejected}), received "
            f"{_diff(_samples(viewer.registry, received_name), before['received'])}, "
            f"good frame {seq} published={_published(out, seq)} shown={viewer.shown()}"
        )
    return f"{case.name:36} consumer decode_error[{case.consumer_stream}]  viewer {case.viewer or 'shown'}"


#: Cases of the log flood: many messages of a few reasons, as fast as they can be produced.
FLOOD = [c for c in CORPUS if c.name in ("random bytes", "no key", "kva-seq not a number")]
FLOOD_EACH = 150


def _flood(send: Sender, service: ConsumerService, out: Reader, viewer: Viewer, seq: int) -> None:
    """Hundreds of bad messages at full speed: counted (or jumped over by the latest-frame
    seek, which is counted too), then the next good frame still goes through."""
    registry = service.metrics.registry

    def handled() -> float:
        dropped = _samples(registry, "kva_consume_frames_dropped_total")
        return sum(dropped.values()) + sum(
            _samples(registry, "kva_consume_frames_skipped_total").values()
        )

    rejected_name = "kva_video_messages_rejected_total"
    before, rejected_before = handled(), sum(_samples(viewer.registry, rejected_name).values())
    for _ in range(FLOOD_EACH):
        for case in FLOOD:
            send.bad(case, flush=False)
    assert send.producer.flush(30) == 0
    send.good(seq)
    want = before + FLOOD_EACH * len(FLOOD)
    wait_for(lambda: handled() >= want, 30, "the flood was not counted by the consumer")
    wait_for(lambda: _published(out, seq), 15, "good frame after the flood not published")
    wait_for(lambda: viewer.shown() == seq, 15, "good frame after the flood not shown")
    assert sum(_samples(viewer.registry, rejected_name).values()) > rejected_before


def _check_logs(records: list[logging.LogRecord], elapsed: float) -> Counter[str]:
    """At most one line per reason per interval; nothing logged as an error."""
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    allowed = 1 + int(elapsed // LOG_INTERVAL)
    per_reason: Counter[str] = Counter()
    for record in records:
        message = record.getMessage()
        if record.name == "kva.consumer.pipeline" and record.levelno == logging.WARNING:
            per_reason["consumer " + message.split(")")[0]] += 1
        elif record.name == "kva.video.reader" and record.levelno == logging.WARNING:
            per_reason["viewer " + message.split("): ", 1)[1].split(":")[0]] += 1
        assert "\n2026-11-25T10:00:00.000Z INFO forged" not in message, message
    assert per_reason, "nothing was logged at all"
    flooded = {k: v for k, v in per_reason.items() if v > allowed}
    assert not flooded, f"more than {allowed} line(s) per reason in {elapsed:.0f}s: {flooded}"
    return per_reason


def test_a_50_mb_frame_is_refused_by_the_producer_and_by_the_broker(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
) -> None:
    """The 50 MB case never reaches a consumer: kva's producer refuses it at once, and a
    producer allowed to send it gets the broker's refusal (its limit is 16 MB + 1 MB).
    The services' own limit is exercised by the corpus case just above --max-frame-bytes."""
    topic = make_topic(suffix="big")
    key, value, headers = envelope(b"\xff\xd8\xff" + b"\0" * (50 * 1024 * 1024))
    with pytest.raises(Exception, match="too large"):
        FrameProducer(kafka_settings).send(topic, key, value, headers)  # type: ignore[arg-type]

    errors: list[str | None] = []
    bigger = FrameProducer(kafka_settings, extra={"message.max.bytes": 64 * 1024 * 1024})
    bigger.send(topic, key, value, headers, on_delivery=lambda e, _r: errors.append(e))  # type: ignore[arg-type]
    assert bigger.flush(30) == 0
    assert len(errors) == 1 and errors[0] is not None, errors
    assert "too large" in errors[0].lower(), errors[0]
    assert len(value) > MAX_MESSAGE_BYTES
