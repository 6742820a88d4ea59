"""Producer pieces without a broker: settings, camera files, backoff, sources, encoder."""

from __future__ import annotations

import json
import random
import threading
import time

import cv2
import numpy as np
import pytest

from kva.camerafile import MAX_CAMERA_FILE_BYTES
from kva.cliargs import SettingsError, settings_from_args
from kva.producer.backoff import Backoff
from kva.producer.config import (
    CameraConfigError,
    ProducerSettings,
    cameras_from_sources,
    load_camera_file,
    split_source_arg,
)
from kva.producer.encoder import JpegEncoder
from kva.producer.sources import (
    DemoSource,
    LiveCaptureSource,
    SourceError,
    TestPatternSource,
    make_source,
    redact_url,
    source_kind,
)
from kva.producer.sources.latest import LatestSlot


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("demo", (None, "demo")),
        ("door=rtsp://10.0.0.5:554/s", ("door", "rtsp://10.0.0.5:554/s")),
        ("rtsp://h/s?user=a&x=1", (None, "rtsp://h/s?user=a&x=1")),
        ("cam-2.a=http://h/v.mjpg?q=1", ("cam-2.a", "http://h/v.mjpg?q=1")),
        ("/videos/a=b.mp4", (None, "/videos/a=b.mp4")),
        ("webcam:0", (None, "webcam:0")),
    ],
)
def test_split_source_arg(text, expected):
    assert split_source_arg(text) == expected


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("webcam:0", "webcam"),
        ("rtsp://h/x", "rtsp"),
        ("RTSPS://h/x", "rtsp"),
        ("http://h/x.mjpg", "http"),
        ("https://h/live.m3u8", "http"),
        ("testsrc", "testsrc"),
        ("demo", "demo"),
        ("clip.mp4", "file"),
        ("webcam:x", "file"),
    ],
)
def test_source_kind(spec, kind):
    assert source_kind(spec) == kind


def test_sources_get_default_ids_and_global_defaults():
    settings = ProducerSettings(
        source=["demo", "door=testsrc", "http://h/x"], camera_fps=7, jpeg_quality=60
    )
    cameras = cameras_from_sources(settings)
    assert [c.id for c in cameras] == ["cam0", "door", "cam2"]
    assert {c.fps for c in cameras} == {7}
    assert {c.quality for c in cameras} == {60}


def test_duplicate_camera_ids_are_refused():
    with pytest.raises(CameraConfigError, match="'a' is used twice"):
        cameras_from_sources(ProducerSettings(source=["a=demo", "a=testsrc"]))


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("KVA_PRODUCE_SOURCE", "lobby=demo door=rtsp://h/s")
    monkeypatch.setenv("KVA_PRODUCE_FPS", "5")
    monkeypatch.setenv("KVA_PRODUCE_TOPIC", "cams")
    monkeypatch.setenv("KVA_PRODUCE_METRICS_PORT", "9200")
    settings = ProducerSettings()
    assert [(c.id, c.source) for c in cameras_from_sources(settings)] == [
        ("lobby", "demo"),
        ("door", "rtsp://h/s"),
    ]
    assert (settings.camera_fps, settings.frames_topic, settings.producer_metrics_port) == (
        5,
        "cams",
        9200,
    )


def test_bad_flags_give_a_readable_error():
    import argparse

    from kva.cliargs import add_settings_arguments

    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, ProducerSettings)
    args = parser.parse_args(["--fps", "0", "--jpeg-quality", "500", "--topic", "bad topic"])
    with pytest.raises(SettingsError) as info:
        settings_from_args(ProducerSettings, args)
    message = str(info.value)
    assert "--fps / KVA_PRODUCE_FPS" in message
    assert "--jpeg-quality / KVA_PRODUCE_JPEG_QUALITY" in message
    assert "--topic / KVA_PRODUCE_TOPIC" in message


def test_camera_file_yaml_and_json(tmp_path):
    settings = ProducerSettings(camera_fps=12)
    yaml_file = tmp_path / "cams.yaml"
    yaml_file.write_text(
        "cameras:\n  - id: door\n    source: rtsp://h/s\n    fps: 5\n    width: 320\n"
        "  - source: demo\n    quality: 50\n"
    )
    door, second = load_camera_file(yaml_file, settings)
    assert (door.id, door.fps, door.width, door.quality) == ("door", 5, 320, 80)
    assert (second.id, second.fps, second.quality) == ("cam1", 12, 50)
    json_file = tmp_path / "cams.json"
    json_file.write_text(json.dumps([{"id": "x", "source": "testsrc", "height": 240}]))
    (only,) = load_camera_file(json_file, settings)
    assert (only.id, only.height) == ("x", 240)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cameras: {id: a}", "expected a list of cameras"),
        ("- id: a\n  source: demo\n  colour: red\n", "entry 0: colour: Extra inputs"),
        ("- id: a b\n  source: demo\n", "may only use letters"),
        ("- id: a\n  source: demo\n  fps: -1\n", "fps: Input should be greater than 0"),
        ("- [1, 2]", "entry 0 is not a mapping"),
        ("cameras: [a, {", "not valid YAML/JSON"),
    ],
)
def test_camera_file_errors(tmp_path, text, message):
    path = tmp_path / "cams.yaml"
    path.write_text(text)
    with pytest.raises(CameraConfigError, match=message):
        load_camera_file(path, ProducerSettings())


def test_camera_file_missing_or_too_big(tmp_path):
    with pytest.raises(CameraConfigError, match="does not exist"):
        load_camera_file(tmp_path / "nope.yaml", ProducerSettings())
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_CAMERA_FILE_BYTES + 1))
    with pytest.raises(CameraConfigError, match="more than"):
        load_camera_file(big, ProducerSettings())


def test_backoff_grows_is_jittered_and_bounded():
    backoff = Backoff(0.5, 4.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    assert 0.4 <= delays[0] <= 0.5
    assert all(0.8 * 4.0 <= d <= 4.0 for d in delays[4:])
    assert delays[1] > delays[0] and delays[2] > delays[1]
    assert len(set(delays[4:])) == 4  # jittered, not all the same
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_latest_slot_keeps_the_newest_and_counts_the_rest():
    slot: LatestSlot[int] = LatestSlot()
    for item in range(5):
        slot.put(item)
    assert slot.take(0) == 4
    assert slot.dropped == 4
    assert slot.take(0.01) is None
    threading.Timer(0.05, slot.put, args=(9,)).start()
    assert slot.take(5) == 9
    slot.put(10)
    slot.fail(SourceError("gone"))
    assert slot.take(0) == 10  # what arrived before the failure is still delivered
    with pytest.raises(SourceError, match="gone"):
        slot.take(0)


def test_testsrc_counts_frames_and_moves():
    source = TestPatternSource(320, 180)
    source.open()
    first, second = source.read(0), source.read(0)
    assert first.image.shape == (180, 320, 3)
    assert not np.array_equal(first.image, second.image)
    assert second.capture_ns >= first.capture_ns
    assert source.count == 2


def test_demo_switches_photos_and_pans():
    source = DemoSource(320, 240, switch_seconds=4.0)
    source.open()
    frame = source.read(0)
    assert frame.image.shape == (240, 320, 3)
    assert [source.photo_index(t) for t in (0, 3.9, 4.1, 8.5, 12.2, 16.1)] == [0, 0, 1, 2, 3, 0]
    views = [source.view(*source._photos[0], p) for p in (0.0, 0.25)]
    assert np.abs(views[0].astype(int) - views[1].astype(int)).mean() > 5


def test_encoder_resizes_keeping_aspect_and_quality_matters():
    image = TestPatternSource(640, 480).read(0).image
    small = JpegEncoder(80, width=320).encode(image)
    assert (small.width, small.height) == (320, 240)
    decoded = cv2.imdecode(np.frombuffer(small.data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (240, 320, 3)
    low, high = JpegEncoder(20).encode(image), JpegEncoder(95).encode(image)
    assert len(low.data) < len(high.data)
    assert (JpegEncoder(80, height=120).encode(image).width) == 160


def test_redact_url_hides_passwords():
    assert redact_url("rtsp://admin:s3cret@10.0.0.5/live") == "rtsp://admin:***@10.0.0.5/live"
    assert redact_url("http://h/x") == "http://h/x"
    source = make_source("rtsp://admin:s3cret@10.0.0.5/live")
    assert "s3cret" not in source.name


def test_unreachable_camera_fails_fast_with_the_reason():
    from kva.ports import free_port

    source = LiveCaptureSource(f"rtsp://127.0.0.1:{free_port()}/cam", open_timeout=2)
    started = time.monotonic()
    with pytest.raises(SourceError, match="cannot reach .*Connection refused") as info:
        source.open()
    assert not info.value.permanent
    assert time.monotonic() - started < 2


def test_missing_webcam_is_a_retriable_clear_error():
    source = make_source("webcam:63")
    with pytest.raises(SourceError, match=r"cannot open webcam:63 \(/dev/video63 missing") as info:
        source.open()
    assert not info.value.permanent


def test_a_bad_camera_file_stops_the_start_before_kafka(tmp_path, caplog):
    from kva.ports import free_port
    from kva.producer.service import ProducerService
    from kva.service import run_service

    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - id: a\n    source: demo\n  - id: a\n    source: testsrc\n")
    settings = ProducerSettings(
        camera_file=cameras, bootstrap_server=f"127.0.0.1:{free_port()}", broker_timeout=1
    )
    assert run_service(ProducerService(settings), threading.Event(), (CameraConfigError,)) == 2
    assert "camera id 'a' is used twice" in caplog.text


def test_drop_series_of_a_camera_start_at_zero():
    """Issue 15, defect 11: a healthy run shows kva_producer_frames_dropped_total at 0."""
    from kva.producer.metrics import DROP_REASONS, ProducerMetrics

    metrics = ProducerMetrics(process=False)
    metrics.camera_up.labels("cam0").set(0)  # what building a camera does
    get = metrics.registry.get_sample_value
    assert [
        get("kva_producer_frames_dropped_total", {"stream": "cam0", "reason": r})
        for r in DROP_REASONS
    ] == [0.0] * len(DROP_REASONS)
