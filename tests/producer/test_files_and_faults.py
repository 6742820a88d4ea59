"""Video files, bad input, a frozen camera, a camera file edited while running (real Kafka)."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np
import pytest

from kva.producer.camera import CameraState
from kva.producer.service import ProducerService
from kva.service import run_service
from testbed.cameras import MjpegCamera
from testbed.producer import producer_settings, running
from tests.producer.conftest import assert_well_formed, measured_fps
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

FRAMES_IN_FILE = 24


def _write_video(path, frames: int = FRAMES_IN_FILE, size=(320, 240)) -> list[int]:
    """An MJPEG AVI whose frame i is flat grey level 10*i; returns the levels."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    assert writer.isOpened()
    levels = [10 * i for i in range(frames)]
    for level in levels:
        writer.write(np.full((size[1], size[0], 3), level, np.uint8))
    writer.release()
    return levels


def _run_to_end(settings, timeout: float = 30) -> tuple[ProducerService, int]:
    service = ProducerService(settings)
    result: list[int] = []
    stop = threading.Event()
    thread = threading.Thread(target=lambda: result.append(run_service(service, stop)), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the producer did not finish on its own"
    return service, result[0]


def _grey(frame) -> float:
    image = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(image.mean())


def test_file_is_sent_frame_by_frame_then_the_stream_ends(
    kafka_settings, make_topic, collector_factory, tmp_path
):
    levels = _write_video(tmp_path / "clip.avi")
    topic = make_topic()
    collector = collector_factory(topic)
    settings = producer_settings(
        kafka_settings, topic, source=[f"clip={tmp_path / 'clip.avi'}"], camera_fps=20
    )
    service, status = _run_to_end(settings)
    assert status == 0
    assert service.fleet is not None
    assert service.fleet.runners["clip"].state is CameraState.ENDED
    frames = collector.count("clip", FRAMES_IN_FILE, timeout=10)
    assert [f.sequence for f in frames] == list(range(FRAMES_IN_FILE))
    assert_well_formed(frames, "clip", 320, 240)
    assert [_grey(f) for f in frames] == pytest.approx(levels, abs=3)
    assert measured_fps(frames) == pytest.approx(20, rel=0.1)


def test_file_loops_with_loop(kafka_settings, make_topic, collector_factory, tmp_path):
    levels = _write_video(tmp_path / "clip.avi")
    topic = make_topic()
    collector = collector_factory(topic)
    settings = producer_settings(
        kafka_settings, topic, source=[str(tmp_path / "clip.avi")], camera_fps=40, loop=True
    )
    with running(settings):
        frames = collector.count("cam0", FRAMES_IN_FILE + 10, timeout=20)
    assert [f.sequence for f in frames[: FRAMES_IN_FILE + 10]] == list(range(FRAMES_IN_FILE + 10))
    greys = [_grey(f) for f in frames[: FRAMES_IN_FILE + 10]]
    assert greys == pytest.approx(levels + levels[:10], abs=3)


def test_missing_and_garbage_files_fail_clearly(kafka_settings, make_topic, tmp_path, caplog):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(1).bytes(50_000))
    missing = tmp_path / "missing.mp4"
    settings = producer_settings(
        kafka_settings, make_topic(), source=[f"a={missing}", f"b={garbage}"]
    )
    with caplog.at_level(logging.ERROR, logger="producer"):
        service, status = _run_to_end(settings)
    assert status == 1
    assert service.fleet is not None
    runners = service.fleet.runners
    assert runners["a"].state is CameraState.FAILED
    assert runners["a"].error == f"video file not found: {missing}"
    assert runners["b"].state is CameraState.FAILED
    assert "cannot decode" in str(runners["b"].error)
    assert "not a video file FFmpeg can read" in caplog.text
    assert f"video file not found: {missing}" in caplog.text


def test_unreachable_camera_is_retried_with_backoff_without_crashing(
    kafka_settings, make_topic, caplog
):
    from kva.ports import free_port

    url = f"http://127.0.0.1:{free_port()}/video.mjpg"
    settings = producer_settings(
        kafka_settings, make_topic(), source=[url, "testsrc"], reconnect_min=0.1, reconnect_max=0.4
    )
    with caplog.at_level(logging.WARNING, logger="producer"), running(settings) as service:
        metrics = service.metrics
        wait_for(
            lambda: metrics.value("kva_producer_reconnects_total", stream="cam0") >= 4,
            15,
            "reconnect attempts",
        )
        runner = service.fleet.runners["cam0"]
        assert runner.state is CameraState.DOWN
        assert "Connection refused" in str(runner.error)
        assert service.fleet.runners["cam1"].state is CameraState.UP  # the others carry on
    assert f"cannot reach {url}: Connection refused" in caplog.text
    assert "reconnect attempt 3 in" in caplog.text


def test_frozen_camera_trips_the_watchdog_and_recovers(
    kafka_settings, make_topic, collector_factory, caplog
):
    camera = MjpegCamera(fps=15, width=320, height=180)
    topic = make_topic()
    collector = collector_factory(topic)
    settings = producer_settings(
        kafka_settings, topic, source=[camera.url], watchdog_timeout=1.0, reconnect_min=0.2
    )
    try:
        with caplog.at_level(logging.WARNING, logger="producer"), running(settings) as service:
            collector.count("cam0", 5, timeout=15)
            runner = service.fleet.runners["cam0"]
            camera.paused.set()
            wait_for(lambda: runner.state is CameraState.DOWN, 5, "the watchdog")
            assert "no frame for 1s (watchdog)" in str(runner.error)
            back_ns = time.time_ns()
            camera.paused.clear()
            collector.collect(
                lambda _f: any(f.capture_ns > back_ns for f in collector.of("cam0")), timeout=10
            )
            assert any(f.capture_ns > back_ns for f in collector.of("cam0"))
            assert runner.state is CameraState.UP
        assert "(watchdog); reconnect attempt 1" in caplog.text
    finally:
        camera.stop()


def test_camera_file_reload_adds_and_removes_cameras(
    kafka_settings, make_topic, collector_factory, tmp_path, caplog
):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - id: a\n    source: testsrc\n    width: 160\n")
    topic = make_topic(partitions=2)
    collector = collector_factory(topic)
    settings = producer_settings(
        kafka_settings, topic, camera_file=cameras, camera_fps=10, camera_file_poll=0.2
    )
    with running(settings) as service:
        assert service.fleet is not None
        collector.count("a", 3, timeout=15)
        cameras.write_text(
            "cameras:\n  - id: a\n    source: testsrc\n    width: 160\n"
            "  - id: b\n    source: demo\n    width: 160\n    fps: 5\n"
        )
        collector.count("b", 3, timeout=15)
        assert set(service.fleet.runners) == {"a", "b"}
        cameras.write_text("[{id: b, source: demo, width: 160, fps: 5}]\n")
        wait_for(lambda: set(service.fleet.runners) == {"b"}, 10, "camera a to be removed")
        removed_ns = time.time_ns()
        count_b = len(collector.of("b"))
        collector.count("b", count_b + 6, timeout=15)
        assert not [f for f in collector.of("a") if f.capture_ns > removed_ns]
        assert service.metrics.value("kva_producer_camera_up", stream="a") == 0
        last_b = collector.of("b")[-1].sequence
        cameras.write_text("[{id: b, source: demo, width: 240, fps: 5}]\n")  # changed: restart
        frames = collector.collect(lambda _f: collector.of("b")[-1].width == 240, timeout=15)
        resized = [f for f in frames if f.stream_id == "b" and f.width == 240]
        assert resized and resized[0].sequence > last_b  # the stream's sequence goes on
        cameras.write_text("cameras: [{id: b, source: demo, fps: oops}]\n")  # a broken edit
        # (write_text truncates first: the watcher may see the file empty for a moment, which
        # it also answers with "keeping the current cameras"; wait for the parse error itself)
        bad_fps = "entry 0: fps: Input should be a valid number"
        wait_for(lambda: bad_fps in caplog.text, 10, "the reload error")
        assert "keeping the current cameras" in caplog.text
        assert set(service.fleet.runners) == {"b"}
        assert service.fleet.runners["b"].is_alive()
