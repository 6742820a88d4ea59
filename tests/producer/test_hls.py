"""An HLS stream (a playlist of MPEG-TS segments over HTTP) into a real Kafka, at its own pace."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from testbed.producer import producer_settings, running
from tests.producer.conftest import assert_well_formed, measured_fps

pytestmark = pytest.mark.integration


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _write_hls(directory, frames: int = 90, fps: int = 15) -> None:
    """OpenCV's FFmpeg writer picks the HLS muxer from the .m3u8 name (MPEG-2 video in TS)."""
    path = str(directory / "live.m3u8")
    writer = cv2.VideoWriter(path, cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MPEG"), fps, (320, 240))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write HLS with MPEG-2 video")
    for i in range(frames):
        writer.write(np.full((240, 320, 3), int(i * 2.5), np.uint8))
    writer.release()


def test_hls_plays_at_its_own_speed(kafka_settings, make_topic, collector_factory, tmp_path):
    _write_hls(tmp_path)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/live.m3u8"
    topic = make_topic()
    collector = collector_factory(topic)
    settings = producer_settings(kafka_settings, topic, source=[f"hls={url}"], camera_fps=10)
    try:
        with running(settings) as service:
            frames = collector.count("hls", 30, timeout=20)
            stale = service.metrics.value(
                "kva_producer_frames_dropped_total", stream="hls", reason="stale"
            )
    finally:
        server.shutdown()
        server.server_close()
    frames = frames[:30]
    assert_well_formed(frames, "hls", 320, 240)
    assert measured_fps(frames) == pytest.approx(10, rel=0.1)
    greys = [
        float(cv2.imdecode(np.frombuffer(f.data, np.uint8), cv2.IMREAD_GRAYSCALE).mean())
        for f in frames
    ]
    steps = np.diff(greys)
    # 15 fps of video sent at 10 fps: every step moves forward by one or two source frames.
    assert (steps > 0).all(), greys
    assert np.median(steps) == pytest.approx(2.5 * 1.5, abs=1.5)
    assert stale > 0
