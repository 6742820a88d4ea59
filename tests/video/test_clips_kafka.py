"""Clips on the real broker: a clip is exactly its stream's records of the range, in order, at
their original timing; the download is an AVI OpenCV reads back; the replayable span comes
from Kafka; expired and empty ranges, unknown streams and busy readers are clear refusals."""

from __future__ import annotations

import http.client
import time
from pathlib import Path

import cv2
import pytest

from kva.frame import Frame
from kva.kafka import FrameProducer, TopicSpec, ensure_topics
from kva.settings import KafkaSettings
from kva.timerange import format_ms
from kva.video.app import create_app
from kva.video.state import viewer_state
from tests.support.frames import jpeg
from tests.support.wait import wait_for
from tests.video import clip_client

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
#: The first capture time of the recording: half a minute ago, in whole seconds.
T0_MS = (int(time.time()) - 30) * 1000
FPS = 10
STEP_MS = 1000 // FPS


def _topic(settings: KafkaSettings, name: str) -> str:
    config = {"retention.ms": str(HOUR_MS), "segment.ms": str(HOUR_MS)}
    ensure_topics(settings, [TopicSpec(name, partitions=1, config=config)])
    return name


def _frame(stream: str, seq: int, kind: str, offset_ms: int = 0) -> Frame:
    at_ms = T0_MS + seq * STEP_MS + offset_ms
    data = jpeg(160, 90, grey=(seq * 5) % 200 + 20, text=f"{kind}{seq}")
    return Frame(stream, seq, at_ms * 1_000_000 + 123, 160, 90, data)


@pytest.fixture
def recorded(kafka_settings, unique_name):
    """4 s of 'walkway' and 6 s of 'lobby' (50 ms later) at 10 fps, annotated and raw, and one
    corrupt record of 'walkway' in the middle."""
    annotated = _topic(kafka_settings, f"{unique_name}-annotated")
    raw = _topic(kafka_settings, f"{unique_name}-frames")
    producer = FrameProducer(kafka_settings)
    for topic, kind in ((annotated, "a"), (raw, "r")):
        frames = [_frame("walkway", seq, kind) for seq in range(40)]
        frames += [_frame("lobby", seq, kind, offset_ms=50) for seq in range(60)]
        for frame in sorted(frames, key=lambda f: f.capture_ns):
            if topic == annotated and frame.capture_ns // 1_000_000 == T0_MS + 1600:
                # in time order, as a producer writes: Kafka's time index finds it in range
                producer.send(topic, b"walkway", b"not a frame", [], timestamp_ms=T0_MS + 1590)
            producer.send_frame(topic, frame)
    assert producer.flush(30) == 0
    return annotated, raw


@pytest.fixture
def viewer(kafka_settings, make_settings, recorded, serve):
    annotated, raw = recorded

    def make(**values: object):
        settings = make_settings(
            bootstrap_server=kafka_settings.bootstrap_server,
            video_topic=annotated,
            video_frames_topic=raw,
            **values,
        )
        app = create_app(settings)
        state = viewer_state(app)
        state.retention.refresh()  # what the service's thread does every 30 s
        state.store.put_frame(_frame("walkway", 99, "live"), partition=0)  # walkway is live
        return app, serve(app)

    return make


def _expected(stream: str, kind: str, start_ms: int, end_ms: int) -> list[Frame]:
    frames = [_frame("walkway", s, kind) for s in range(40)]
    frames += [_frame("lobby", s, kind, offset_ms=50) for s in range(60)]
    return [
        f
        for f in frames
        if f.stream_id == stream and start_ms <= f.capture_ns // 1_000_000 < end_ms
    ]


def test_a_clip_is_the_streams_records_of_the_range_in_order_at_their_timing(viewer) -> None:
    app, server = viewer()
    start, end = T0_MS + 1000, T0_MS + 3000
    clip = clip_client.get(f"{server.url}/clips/walkway.mjpg?from_ms={start}&to_ms={end}")
    assert clip.status == 200, clip.body
    assert clip.headers["content-type"] == "multipart/x-mixed-replace; boundary=kvaframe"
    assert clip.headers["x-frame-options"] == "DENY"
    expected = _expected("walkway", "a", start, end)
    assert len(expected) == 20
    assert [p.body for p in clip.parts] == [f.data for f in expected]
    assert [p.capture_ns for p in clip.parts] == [f.capture_ns for f in expected]
    assert [int(p.headers["x-kva-seq"]) for p in clip.parts] == list(range(10, 30))
    assert clip.ended
    # original timing: part i arrives (capture_i - capture_0) after part 0, never earlier
    first = clip.parts[0]
    for part in clip.parts[1:]:
        due = (part.capture_ns - first.capture_ns) / 1e9
        assert part.received - first.received >= due - 0.05, f"#{part.headers['x-kva-seq']} early"
    spread = clip.parts[-1].received - first.received
    assert 1.85 <= spread < 1.9 + 2.0, f"20 frames at 10 fps took {spread:.2f} s"
    registry = viewer_state(app).metrics.registry
    rejected = registry.get_sample_value(
        "kva_video_messages_rejected_total",
        {"topic": viewer_state(app).settings.video_topic, "reason": "missing_header"},
    )
    assert rejected == 1  # the corrupt record in the range: counted, skipped, the clip went on


def test_a_raw_clip_comes_from_the_frames_topic(viewer) -> None:
    _app, server = viewer()
    clip = clip_client.get(f"{server.url}/clips/lobby.mjpg?at_ms={T0_MS + 5000}&source=frames")
    assert clip.status == 200, clip.body
    expected = _expected("lobby", "r", T0_MS, T0_MS + 10_000)  # 5 s before, 5 s after
    assert [p.body for p in clip.parts] == [f.data for f in expected]
    assert len(expected) == 60


def test_the_download_is_an_avi_opencv_reads_back(viewer, tmp_path: Path) -> None:
    _app, server = viewer(video_clip_before=1, video_clip_after=1.5)
    response = clip_client.get(f"{server.url}/clips/walkway.avi?at_ms={T0_MS + 2000}")
    assert response.status == 200, response.body
    assert response.headers["content-type"] == "video/x-msvideo"
    name = f"walkway-annotated-{T0_MS + 1000}-{T0_MS + 3500}.avi"
    assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert response.headers["x-kva-frames"] == "25"
    path = tmp_path / name
    path.write_bytes(response.body)
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened()
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 25
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS, abs=0.01)
    images = []
    while (image := capture.read()[1]) is not None:
        images.append(image)
    capture.release()
    assert len(images) == 25 and images[0].shape == (90, 160, 3)


def test_api_streams_says_from_when_each_stream_can_be_replayed(viewer) -> None:
    app, server = viewer()
    state = viewer_state(app)
    body = clip_client.get(f"{server.url}/api/streams").json()
    (walkway,) = body["streams"]
    assert walkway["replay_from_ms"] == T0_MS  # the oldest record Kafka holds: walkway's first
    assert walkway["raw_replay_from_ms"] == T0_MS
    assert set(state.retention.streams()) == {"lobby"}  # the streams of the newest records


def test_a_range_before_what_kafka_holds_is_410_with_what_is_left(viewer) -> None:
    _app, server = viewer()
    start = T0_MS - 20_000
    clip = clip_client.get(f"{server.url}/clips/walkway.mjpg?from_ms={start}&to_ms={T0_MS}")
    assert clip.status == 410
    body = clip.json()
    assert body["replay_from_ms"] == T0_MS
    assert body["error"] == (
        f"the clip {format_ms(start)} .. {format_ms(T0_MS)} has expired: stream 'walkway' "
        f"(annotated) can be replayed from {format_ms(T0_MS)}"
    )


def test_before_the_first_look_kafka_itself_says_what_it_holds(
    kafka_settings, make_settings, recorded, serve
) -> None:
    annotated, _raw = recorded
    app = create_app(
        make_settings(bootstrap_server=kafka_settings.bootstrap_server, video_topic=annotated)
    )
    viewer_state(app).store.put_frame(_frame("walkway", 99, "live"))
    server = serve(app)
    start = T0_MS - 20_000
    clip = clip_client.get(f"{server.url}/clips/walkway.avi?from_ms={start}&to_ms={start + 5000}")
    assert clip.status == 404
    error = clip.json()["error"]
    assert error.startswith("no frames of stream 'walkway': nothing in ")
    assert f"topic {annotated} holds " in error


def test_a_range_without_the_streams_frames_is_404(viewer) -> None:
    _app, server = viewer()
    start = T0_MS + 4500  # walkway ended at 3.9 s, lobby goes on to 5.95 s
    clip = clip_client.get(f"{server.url}/clips/walkway.mjpg?from_ms={start}&to_ms={start + 1000}")
    assert clip.status == 404
    assert clip.json()["error"].startswith("stream 'walkway' has no frames on ")


def test_an_unknown_stream_lists_the_live_streams_and_those_kafka_holds(viewer) -> None:
    _app, server = viewer()
    clip = clip_client.get(f"{server.url}/clips/garage.mjpg?at_ms={T0_MS + 1000}")
    assert clip.status == 404
    assert clip.json() == {
        "error": "unknown stream 'garage'; the streams are: lobby, walkway",
        "streams": ["lobby", "walkway"],
    }


def test_clip_readers_are_bounded_and_freed_when_a_viewer_leaves(viewer) -> None:
    app, server = viewer(video_clip_readers=1)
    path = f"/clips/lobby.mjpg?from_ms={T0_MS}&to_ms={T0_MS + 6000}"
    holder = http.client.HTTPConnection(server.host, server.port, timeout=10)
    holder.request("GET", path)
    response = holder.getresponse()
    assert response.status == 200
    assert response.read1(1024)  # the first frame is on its way: the reader slot is taken
    busy = clip_client.get(f"{server.url}{path}")
    assert busy.status == 503
    assert busy.json() == {
        "error": "every clip reader is busy (--clip-readers 1): try again in a moment"
    }
    holder.close()  # the viewer leaves: the server notices and frees the reader
    freed = wait_for(
        lambda: (r := clip_client.get(f"{server.url}{path}", max_parts=1)).status == 200 and r,
        15,
        "the reader slot to be free again",
        step=0.2,
    )
    assert len(freed.parts) == 1
    wait_for(lambda: viewer_state(app).metrics.viewers._value.get() == 0, 15, "no clip viewer left")
