"""Live cameras into a real Kafka: an HTTP MJPEG camera and a real RTSP server (GStreamer).

Each test also drops the camera mid-stream and brings it back on the same
port: frames must resume without restarting the producer. The measured time
from "camera back" to "first new frame captured" is printed.
"""

from __future__ import annotations

import time

import pytest

from kva.producer.camera import CameraState
from testbed.cameras import MjpegCamera
from testbed.producer import producer_settings, running
from tests.producer.conftest import assert_well_formed, measured_fps
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


def _drop_and_return(service, collector, stream, stop_camera, start_camera) -> float:
    """Stop the camera, wait for backoff attempts, start it again; returns the reconnect time."""
    runner = service.fleet.runners[stream]
    metrics = service.metrics
    before = len(collector.of(stream))
    stop_camera()
    wait_for(lambda: runner.state is CameraState.DOWN, 10, "the producer to notice the drop")
    assert metrics.value("kva_producer_camera_up", stream=stream) == 0
    reconnects = metrics.value("kva_producer_reconnects_total", stream=stream)
    wait_for(
        lambda: metrics.value("kva_producer_reconnects_total", stream=stream) >= reconnects + 2,
        15,
        "two failed reconnect attempts while the camera is away",
    )
    back_ns = time.time_ns()
    start_camera()
    frames = collector.collect(
        lambda _f: any(f.capture_ns > back_ns for f in collector.of(stream)), timeout=15
    )
    fresh = [f for f in frames if f.stream_id == stream and f.capture_ns > back_ns]
    assert fresh, "no frames after the camera came back"
    reconnect_seconds = (fresh[0].capture_ns - back_ns) / 1e9
    print(f"\n{stream}: frames resumed {reconnect_seconds:.2f}s after the camera came back")
    assert reconnect_seconds < 5
    assert runner.state is CameraState.UP
    assert metrics.value("kva_producer_camera_up", stream=stream) == 1
    after = collector.count(stream, len(collector.of(stream)) + 5, timeout=10)
    sequences = [f.sequence for f in after]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    assert len(after) > before
    return reconnect_seconds


@pytest.mark.faults
def test_http_mjpeg_camera_and_its_return(kafka_settings, make_topic, collector_factory):
    camera = MjpegCamera(fps=15, width=480, height=270)
    port = camera.port
    topic = make_topic()
    collector = collector_factory(topic)
    settings = producer_settings(
        kafka_settings, topic, source=[f"door={camera.url}"], camera_fps=10
    )
    try:
        with running(settings) as service:
            frames = collector.count("door", 30, timeout=20)
            assert_well_formed(frames, "door", 480, 270)
            assert measured_fps(frames) == pytest.approx(10, rel=0.1)
            cameras = [camera]

            def restart() -> None:
                cameras.append(MjpegCamera(port=port, fps=15, width=480, height=270))

            _drop_and_return(service, collector, "door", camera.stop, restart)
            # 15 fps in, 10 fps out: the reader keeps the newest frame and counts the others.
            assert (
                service.metrics.value(
                    "kva_producer_frames_dropped_total", stream="door", reason="stale"
                )
                > 0
            )
    finally:
        for cam in cameras:
            if not cam.stopped.is_set():
                cam.stop()


@pytest.mark.faults
def test_rtsp_camera_and_its_return(kafka_settings, make_topic, collector_factory, rtsp_camera):
    topic = make_topic()
    collector = collector_factory(topic)
    settings = producer_settings(
        kafka_settings, topic, source=[rtsp_camera.url], camera_fps=10, camera_width=320
    )
    with running(settings) as service:
        frames = collector.count("cam0", 30, timeout=20)
        assert_well_formed(frames, "cam0", 320, 180)
        assert measured_fps(frames) == pytest.approx(10, rel=0.1)
        _drop_and_return(service, collector, "cam0", rtsp_camera.stop, rtsp_camera.start)
