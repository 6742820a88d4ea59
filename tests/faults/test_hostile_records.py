"""Issue 15: no Kafka record can take down the consumer or the viewer.

Generated records (Hypothesis, derandomized, a bounded count) go through the real broker to a
running consumer and a running viewer (in-process services, as in ``test_bad_input.py``):
arbitrary header names and values (any bytes, any Unicode digits, huge numbers), arbitrary
keys and values, JSON of any depth and size in the predictions topic and in the
``kva-predictions`` header, and a flood of new stream ids. After each batch both services must
be alive, the next good frame of a real stream must go through both, and every record must be
accounted for: the consumer counts each input record once (``frames_in``, a drop with no
stream, or jumped over by the latest-frame seek), the viewer each frame record once
(``frames_received`` or a rejection) and each predictions record once (a rejection).

The reproductions of defects 1 and 2 are also crash-loop tests: each service is started twice
on top of the poison message (both start at the newest message of the partition) and stays up.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kva.consumer.config import ConsumerSettings
from kva.consumer.service import ConsumerService
from kva.frame import Frame, encode_frame
from kva.kafka import FrameProducer
from kva.ports import free_port
from kva.settings import KafkaSettings
from kva.video.config import VideoSettings
from kva.video.service import ViewerService
from testbed.model_server import FixedLatencyServer
from tests.consumer.conftest import consumer_settings, running_consumer, scrape
from tests.support.frames import jpeg
from tests.support.kafka import Reader, Topics
from tests.support.process import KvaProcess
from tests.support.wait import eventually, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.integration]

STREAM = "cam0"
GOOD = jpeg(160, 120)
#: Records per batch: below both services' ``--max-lag``, so none is jumped over unseen.
BATCH = 40
UNKNOWN = "_unknown"
DEEP = 100_000

Headers = list[tuple[str, bytes]]
Message = tuple[str, bytes | None, bytes | None, Headers]  # (kind, key, value, headers)

#: Issue 15, defect 1: the exact poison frame.
POISON_FRAME_HEADERS: Headers = [
    ("kva-version", b"1"),
    ("kva-seq", "²".encode()),
    ("kva-capture-ns", b"1"),
    ("kva-width", b"1"),
    ("kva-height", b"1"),
    ("kva-size", b"3"),
    ("content-type", b"image/jpeg"),
]
#: Issue 15, defect 2: the exact deeply nested document.
POISON_JSON = ('{"stream":"cam0","x":' + "[" * DEEP + "]" * DEEP + "}").encode()


# -- generated records --------------------------------------------------------------------------
_CORE = ["kva-version", "kva-seq", "kva-capture-ns", "kva-width", "kva-height", "kva-size"]
_digits = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=30)
_header_value = st.one_of(
    st.binary(max_size=64),
    _digits.map(str.encode),
    st.integers(min_value=-(10**40), max_value=10**40).map(lambda n: str(n).encode()),
    st.text(max_size=40).map(str.encode),
)
_header_name = st.one_of(st.sampled_from([*_CORE, "content-type"]), st.text(max_size=30))


def _envelope(data: bytes, extra: Headers, seq: int = 1) -> Headers:
    """Valid headers of a frame of ``data`` captured now, plus ``extra`` (may override)."""
    _key, _value, headers = encode_frame(Frame("x", seq, time.time_ns(), 160, 120, data))
    names = {n for n, _ in extra}
    return [(n, v) for n, v in headers if n not in names] + extra


@st.composite
def header_records(draw: st.DrawFn) -> Message:
    """A JPEG with some headers replaced or added: names and values of any kind."""
    # one integer header with Unicode digits (str.isdigit() is true, int() may refuse) ...
    digits = st.tuples(st.sampled_from(_CORE[1:5]), _digits.map(str.encode))
    # ... or any names and values
    extra = draw(
        st.lists(digits, min_size=1, max_size=1)
        | st.lists(st.tuples(_header_name, _header_value), min_size=1, max_size=8)
    )
    return "headers", STREAM.encode(), GOOD, _envelope(GOOD, extra)


@st.composite
def key_value_records(draw: st.DrawFn) -> Message:
    """Any key and any value, in an envelope that says the right size."""
    key = draw(st.none() | st.binary(max_size=140) | st.sampled_from([b"cam0", b"cam0/..", b""]))
    value = draw(st.binary(max_size=512) | st.sampled_from([b"", GOOD[:100], b"\xff\xd8"]))
    return "key/value", key, value, _envelope(value or b"x", [("kva-size", b"%d" % len(value))])


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    """Arbitrary JSON (shallow and wide, or nested up to 100,000 deep) under a stream id."""
    depth = draw(st.sampled_from([0, 1, 50, 999, 1001, 5000, DEEP]))
    inner = json.dumps(draw(_json))
    text = "[" * depth + inner + "]" * depth
    stream = draw(st.sampled_from(['"cam0"', '"cam/0"', "1", "null"]))
    return f'{{"stream":{stream},"seq":{draw(st.integers())},"x":{text}}}'.encode()


@st.composite
def header_json_records(draw: st.DrawFn) -> Message:
    document = draw(json_documents())
    return (
        "predictions header",
        STREAM.encode(),
        GOOD,
        _envelope(GOOD, [("kva-predictions", document)]),
    )


@st.composite
def metadata_records(draw: st.DrawFn) -> Message:
    return "predictions topic", STREAM.encode(), draw(json_documents()), []


def generate(strategy: st.SearchStrategy[Message], count: int) -> list[Message]:
    """``count`` examples of ``strategy``, the same on every run (derandomized)."""
    found: list[Message] = []

    @settings(
        derandomize=True,
        max_examples=count,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(message: Message) -> None:
        found.append(message)

    collect()
    return found[:count]


# -- the running services -----------------------------------------------------------------------
Samples = dict[tuple[tuple[str, str], ...], float]


def _samples(text: str, name: str) -> Samples:
    """Every sample of ``name`` in a Prometheus text page, by sorted labels."""
    found: Samples = {}
    pattern = re.compile(rf"^{name}(?:{{(.*)}})? (\S+)$")
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or "")))
            found[labels] = float(match.group(2))
    return found


@dataclass
class Rig:
    """A consumer and a viewer on the same input topic (the viewer also reads metadata)."""

    kafka: KafkaSettings
    topics: Topics
    consumer: ConsumerService
    viewer: ViewerService
    out: Reader
    producer: FrameProducer
    seq: int = 0

    def consumer_page(self) -> str:
        return scrape(self.consumer).text

    def viewer_page(self) -> str:
        return self.viewer.app.test_client().get("/metrics").get_data(as_text=True)

    def shown(self) -> int | None:
        body = self.viewer.app.test_client().get("/api/streams").get_json()
        return next((s["sequence"] for s in body["streams"] if s["id"] == STREAM), None)

    def good_goes_through(self, timeout: float = 20) -> None:
        """A good frame of STREAM is published by the consumer and shown by the viewer."""
        self.seq += 1
        seq = self.seq
        self.producer.send_frame(
            self.topics.input, Frame(STREAM, seq, time.time_ns(), 160, 120, GOOD)
        )
        assert self.producer.flush(10) == 0

        def through() -> bool:
            published = any(_seq(r) == seq for r in self.out.snapshot())
            return published and self.shown() == seq

        wait_for(through, timeout, f"good frame {seq} published and shown")

    def alive(self) -> None:
        reader = self.viewer.reader
        assert reader is not None and reader.alive(), "the viewer's Kafka reader died"
        assert self.viewer.app.test_client().get("/healthz").status_code == 200
        assert scrape(self.consumer, "/healthz").status_code == 200

    def send(self, messages: list[Message]) -> None:
        for _kind, key, value, headers in messages:
            topic = self.topics.metadata if _kind == "predictions topic" else self.topics.input
            self.producer.send(topic, key, value, headers)
        assert self.producer.flush(30) == 0


def _seq(record: Any) -> int | None:
    try:
        return int(record.frame().sequence)
    except ValueError:
        return None


@pytest.fixture
def rig(
    kafka_settings: KafkaSettings, make_topic: Callable[..., str], unique_name: str
) -> Iterator[Callable[..., Rig]]:
    """Factory: start a consumer (with ``**consumer`` settings) and a viewer, both ready."""
    server = FixedLatencyServer(latency=0).start()
    stack: list[Any] = []

    def start(**consumer: Any) -> Rig:
        topics = Topics(
            make_topic(suffix="in"), make_topic(suffix="out"), make_topic(suffix="meta")
        )
        settings: ConsumerSettings = consumer_settings(
            kafka_settings,
            topics,
            unique_name,
            consume_models=[f"mobilenet_v2={server.url()}"],
            **consumer,
        )
        context = running_consumer(settings)
        service = context.__enter__()
        stack.append(context)
        viewer = _viewer(kafka_settings, topics.input, topics.metadata)
        stack.append(viewer)
        out = Reader(kafka_settings, topics.output, f"{unique_name}-out")
        stack.append(out)
        running = Rig(
            kafka_settings, topics, service, viewer, out, FrameProducer(kafka_settings, linger_ms=0)
        )
        wait_for(lambda: _try_good(running), 60, "warm-up frame through both services")
        return running

    yield start
    for item in reversed(stack):
        if isinstance(item, (ViewerService, Reader)):
            item.close()
        else:
            item.__exit__(None, None, None)
    server.stop()


def _viewer(kafka_settings: KafkaSettings, topic: str, metadata: str) -> ViewerService:
    settings = VideoSettings(
        bootstrap_server=kafka_settings.bootstrap_server,
        video_topic=topic,
        video_metadata_topic=metadata,
        video_port=0,
    )
    service = ViewerService(settings)
    service.start(threading.Event())
    return service


def _try_good(rig: Rig) -> bool:
    try:
        rig.good_goes_through(timeout=2)
    except AssertionError:
        return False
    return True


# -- accounting ---------------------------------------------------------------------------------
def _consumer_handled(page: str) -> float:
    """Input records accounted for: read as a frame, dropped before a stream, or jumped over."""
    frames_in = sum(_samples(page, "kva_consume_frames_in_total").values())
    no_stream = sum(
        v
        for k, v in _samples(page, "kva_consume_frames_dropped_total").items()
        if ("stream", UNKNOWN) in k
    )
    skipped = sum(_samples(page, "kva_consume_frames_skipped_total").values())
    return frames_in + no_stream + skipped


def _viewer_handled(page: str, topic: str) -> float:
    received = sum(_samples(page, "kva_video_frames_received_total").values())
    rejected = sum(
        v
        for k, v in _samples(page, "kva_video_messages_rejected_total").items()
        if ("topic", topic) in k and ("reason", "bad_predictions_header") not in k
    )
    return rejected if topic.endswith("-meta") else received + rejected


def _reasons(page: str, name: str, label: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for labels, value in _samples(page, name).items():
        found[dict(labels)[label]] += int(value)
    return found


KINDS: list[tuple[str, st.SearchStrategy[Message], int]] = [
    ("headers", header_records(), 120),
    ("key/value", key_value_records(), 80),
    ("predictions header", header_json_records(), 40),
    ("predictions topic", metadata_records(), 40),
]


def test_generated_records_never_stop_the_consumer_or_the_viewer(
    rig: Callable[..., Rig], capsys: pytest.CaptureFixture[str]
) -> None:
    running = rig()
    tried: Counter[str] = Counter()
    consumer_before = _reasons(
        running.consumer_page(), "kva_consume_frames_dropped_total", "reason"
    )
    viewer_before = _reasons(running.viewer_page(), "kva_video_messages_rejected_total", "reason")
    for kind, strategy, count in KINDS:
        messages = generate(strategy, count)
        for start in range(0, len(messages), BATCH):
            batch = messages[start : start + BATCH]
            inputs = sum(1 for m in batch if m[0] != "predictions topic")
            metadata = len(batch) - inputs
            c0 = _consumer_handled(running.consumer_page())
            v_page = running.viewer_page()
            v_in0 = _viewer_handled(v_page, running.topics.input)
            v_meta0 = _viewer_handled(v_page, running.topics.metadata)
            running.send(batch)
            running.good_goes_through()
            running.alive()
            # every record counted once (+1: the good frame)
            wait_for(
                lambda c0=c0, n=inputs: _consumer_handled(running.consumer_page()) == c0 + n + 1,
                20,
                f"{kind}: the consumer accounts for every record",
            )

            def viewer_counted(
                v_in0: float = v_in0, v_meta0: float = v_meta0, n: int = inputs, m: int = metadata
            ) -> bool:
                page = running.viewer_page()
                return (
                    _viewer_handled(page, running.topics.input) == v_in0 + n + 1
                    and _viewer_handled(page, running.topics.metadata) == v_meta0 + m
                )

            wait_for(viewer_counted, 20, f"{kind}: the viewer accounts for every record")
            tried[kind] += len(batch)
    consumer = _reasons(running.consumer_page(), "kva_consume_frames_dropped_total", "reason")
    viewer = _reasons(running.viewer_page(), "kva_video_messages_rejected_total", "reason")
    errors = _reasons(running.consumer_page(), "kva_consume_record_errors_total", "type")
    assert not errors, f"a record raised in the consumer's loop: {dict(errors)}"
    assert not +_reasons(running.viewer_page(), "kva_video_record_errors_total", "type")
    with capsys.disabled():
        print(f"\nrecords tried per kind: {dict(tried)} (total {sum(tried.values())})")
        print(f"consumer drops per reason: {dict(+(consumer - consumer_before))}")
        print(f"viewer rejections per reason: {dict(+(viewer - viewer_before))}")


# -- defects 1 and 2: reproductions and crash loops ---------------------------------------------
def _poison(rig: Rig) -> None:
    """The issue's exact poison records: a frame on the input topic (the consumer's input and
    the viewer's frames) and the nested document on the metadata topic and in a header."""
    producer = rig.producer
    producer.send(rig.topics.input, b"poison", b"abc", POISON_FRAME_HEADERS)
    producer.send(rig.topics.metadata, STREAM.encode(), POISON_JSON)
    headers = _envelope(GOOD, [("kva-predictions", POISON_JSON)], seq=0)
    producer.send(rig.topics.input, STREAM.encode(), GOOD, headers)
    producer.send(rig.topics.input, b"poison", b"abc", POISON_FRAME_HEADERS)  # the newest
    assert producer.flush(30) == 0


def test_the_issue_poison_records_are_counted_and_survive_restarts(
    rig: Callable[..., Rig], kafka_settings: KafkaSettings, unique_name: str
) -> None:
    running = rig()
    _poison(running)
    running.good_goes_through()
    running.alive()
    page = running.consumer_page()
    assert (
        _samples(page, "kva_consume_frames_dropped_total")[
            (("reason", "decode_error"), ("stream", UNKNOWN))
        ]
        >= 2
    )
    rejected = _reasons(running.viewer_page(), "kva_video_messages_rejected_total", "reason")
    assert rejected["bad_header"] >= 2 and rejected["bad_json"] >= 1
    assert rejected["bad_predictions_header"] >= 1
    # crash loop: start each service again (twice), each time on top of a poison record
    for attempt in range(2):
        _poison(running)
        settings = running.consumer.settings.model_copy(
            update={"consume_group_id": f"{unique_name}-restart{attempt}"}
        )
        viewer = _viewer(kafka_settings, running.topics.input, running.topics.metadata)
        try:
            with running_consumer(settings) as consumer:
                wait_for(
                    lambda c=consumer: (
                        _samples(scrape(c).text, "kva_consume_frames_dropped_total").get(
                            (("reason", "decode_error"), ("stream", UNKNOWN)), 0
                        )
                        >= 1
                    ),
                    30,
                    "the restarted consumer counts the poison frame",
                )
                wait_for(
                    lambda v=viewer: (
                        _reasons(
                            v.app.test_client().get("/metrics").get_data(as_text=True),
                            "kva_video_messages_rejected_total",
                            "reason",
                        )["bad_header"]
                        >= 1
                    ),
                    30,
                    "the restarted viewer counts the poison frame",
                )
                assert viewer.reader is not None and viewer.reader.alive()
                assert scrape(consumer, "/healthz").status_code == 200
        finally:
            viewer.close()
    running.good_goes_through()
    running.alive()


# -- defect 7: a flood of new stream ids --------------------------------------------------------
FLOOD = 10_000
#: ``--status-interval`` of the flooded consumer: it forgets quiet streams at each report.
STATUS_INTERVAL = 0.5


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def test_a_flood_of_stream_ids_neither_starves_a_camera_nor_stays_in_memory(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    unique_name: str,
    start_kva: Callable[..., KvaProcess],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 15, defect 7, on a real ``kva consume``: after 10,000 new stream ids a live camera
    still goes through, the ids are dropped (``too_many_streams``) or forgotten with their
    series, the status log stays short, and RSS and ``/metrics`` return to their size."""
    topics = Topics(make_topic(suffix="in"), make_topic(suffix="out"), "")
    port = free_port()
    consumer = start_kva(
        "consume",
        "--bootstrap-server",
        kafka_settings.bootstrap_server,
        "--input-topic",
        topics.input,
        "--output-topic",
        topics.output,
        "--metadata-topic",
        "",
        "--group-id",
        unique_name,
        "--passthrough",
        "--max-streams",
        "64",
        "--forget-after",
        "2",
        "--status-interval",
        str(STATUS_INTERVAL),
        "--metrics-port",
        str(port),
    )
    url = f"http://127.0.0.1:{port}"
    consumer.wait_http(f"{url}/readyz", 60)
    out = Reader(kafka_settings, topics.output, f"{unique_name}-out")
    producer = FrameProducer(kafka_settings, linger_ms=0)
    seqs = iter(range(1, 1_000_000))

    def camera_through(timeout: float = 20) -> None:
        """The camera sends frames (at 5 fps or more, as a camera does) until one comes out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seq = next(seqs)
            producer.send_frame(topics.input, Frame(STREAM, seq, time.time_ns(), 160, 120, GOOD))
            assert producer.flush(10) == 0
            if eventually(lambda s=seq: any(_seq(r) == s for r in out.snapshot()), 0.2):
                return
        raise AssertionError(f"no camera frame came out within {timeout} s (last sent: {seq})")

    def page() -> str:
        return requests.get(f"{url}/metrics", timeout=10).text

    def settled() -> bool:  # every stream but the camera forgotten
        return 'stream="flood' not in page()

    try:
        wait_for(lambda: _try(camera_through, 2), 60, "warm-up frame")
        for _ in range(20):  # the process warms up (allocator, librdkafka buffers)
            camera_through()
        rss_before, metrics_before = _rss_kib(consumer.pid), len(page())
        lines_before = len(consumer.lines)
        for i in range(FLOOD):
            key, value, headers = encode_frame(
                Frame(f"flood{i}", 1, time.time_ns(), 160, 120, GOOD)
            )
            producer.send(topics.input, key, value, headers)
            if i % 1000 == 999:
                camera_through()  # the live camera is never starved
        assert producer.flush(30) == 0
        camera_through()
        during = page()
        wait_for(settled, 30, "the flood ids forgotten")
        for _ in range(20):
            camera_through()
        after = page()
        rss_after, metrics_after = _rss_kib(consumer.pid), len(after)
        consumer.check_running()
    finally:
        out.close()
    too_many = _samples(during, "kva_consume_frames_dropped_total").get(
        (("reason", "too_many_streams"), ("stream", UNKNOWN)), 0
    )
    skipped = sum(_samples(during, "kva_consume_frames_skipped_total").values())
    assert too_many > 0
    assert abs(metrics_after - metrics_before) <= 0.1 * metrics_before, (
        metrics_before,
        metrics_after,
    )
    assert abs(rss_after - rss_before) <= 0.1 * rss_before, (rss_before, rss_after)
    status = [line for line in consumer.lines[lines_before:] if "stream " in line]
    # each report lists the camera (busiest) and at most 20 lines + 1 summary line
    reports = sum(1 for line in status if f"stream {STREAM}:" in line)
    assert reports and len(status) <= (reports + 1) * 21, f"{len(status)} lines, {reports} reports"
    with capsys.disabled():
        print(
            f"\nflood of {FLOOD} stream ids on kva consume (--max-streams 64): "
            f"too_many_streams={too_many:.0f} skipped={skipped:.0f}; /metrics "
            f"{metrics_before} B before, {len(during)} B during, {metrics_after} B after; "
            f"RSS {rss_before} KiB before, {rss_after} KiB after; "
            f"{len(status)} status lines in {reports} reports"
        )


def _try(action: Callable[..., None], *args: Any) -> bool:
    try:
        action(*args)
    except AssertionError:
        return False
    return True
