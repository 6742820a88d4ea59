"""The demo cameras: the fetched vtest.avi, and how ``kva up`` chooses between it and the photos."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from kva import paths
from kva.launcher.config import UpSettings
from kva.launcher.layout import cameras, producer_args
from kva.producer import demo
from kva.producer.sources import FileSource, make_source
from kva.tfserving.modelbuild.sources import sha256_file
from testbed.producer import producer_settings, running
from tests.producer.conftest import assert_well_formed, measured_fps

ROOT = Path(__file__).resolve().parents[2]
FRAMES_IN_VIDEO = 795


def _recorded_sha256() -> str:
    script = (ROOT / demo.FETCH_COMMAND).read_text()
    found = re.search(r"^SHA256=([0-9a-f]{64})$", script, re.MULTILINE)
    assert found, f"no SHA256=... in {demo.FETCH_COMMAND}"
    return found.group(1)


def test_the_fetched_video_is_the_pinned_file(demo_video: Path) -> None:
    assert demo_video == paths.demo_video()
    assert sha256_file(demo_video) == _recorded_sha256()


def test_the_demo_video_is_768x576_at_10_fps_and_loops(demo_video: Path) -> None:
    capture = cv2.VideoCapture(str(demo_video), cv2.CAP_FFMPEG)
    try:
        assert capture.get(cv2.CAP_PROP_FPS) == demo.VIDEO_FPS
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES_IN_VIDEO
        ok, first = capture.read()
        assert ok
    finally:
        capture.release()
    source = make_source(demo.demo_source("video"), loop=True)
    assert isinstance(source, FileSource)
    source.open()
    try:
        images = [source.read(1.0) for _ in range(FRAMES_IN_VIDEO + 1)]
    finally:
        source.close()
    shapes = {c.image.shape for c in images if c is not None}
    assert shapes == {(demo.VIDEO_SIZE[1], demo.VIDEO_SIZE[0], 3)}
    assert images[0] is not None and np.array_equal(images[0].image, first)
    again = images[FRAMES_IN_VIDEO]  # the 796th read is the first frame again
    assert again is not None and np.array_equal(again.image, first)


@pytest.mark.integration
def test_kva_up_s_demo_camera_sends_the_video_at_its_own_rate(
    demo_video: Path, kafka_settings, make_topic, collector_factory
) -> None:
    """The producer as ``kva up`` starts it by default: cam0, the video, 10 fps, looping."""
    up = UpSettings()
    sources, notes = cameras(up)
    assert sources == [f"cam0={demo_video}"] and notes == ()
    assert "--loop" in producer_args(sources, up.up_fps, 0, loop=True)
    topic = make_topic()
    collector = collector_factory(topic)
    settings = producer_settings(
        kafka_settings, topic, source=sources, camera_fps=up.up_fps, loop=True
    )
    with running(settings):
        frames = collector.count("cam0", 25, timeout=30)
    assert_well_formed(frames, "cam0", *demo.VIDEO_SIZE)
    assert measured_fps(frames) == pytest.approx(demo.VIDEO_FPS, rel=0.1)


def test_kva_up_falls_back_to_the_photos_and_says_how_to_get_the_video(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KVA_CACHE_DIR", str(tmp_path / "empty-cache"))
    with caplog.at_level(logging.WARNING, logger="kva.launcher.layout"):
        sources, notes = cameras(UpSettings())
    assert sources == ["cam0=demo"]
    missing = tmp_path / "empty-cache" / "demo" / "vtest.avi"
    expected = (
        f"the demo video {missing} is missing; get it with scripts/fetch-demo-video.sh "
        "(about 95 MB from Debian's opencv-doc package; `make run` does it too); "
        "showing the photo demo instead"
    )
    assert notes == (expected,)
    assert expected in caplog.text


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"up_demo": "photos"}, ["cam0=demo"]),
        ({"up_source": ["door=rtsp://cam/1", "testsrc"]}, ["door=rtsp://cam/1", "testsrc"]),
        ({"up_source": ["x=clip.mp4"], "up_demo": "video"}, ["x=clip.mp4"]),
    ],
)
def test_the_photo_demo_by_setting_and_the_user_s_cameras_win(
    values: dict[str, object], expected: list[str], demo_video: Path
) -> None:
    assert cameras(UpSettings(**values)) == (expected, ())  # type: ignore[arg-type]


def test_the_demo_is_chosen_by_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVA_UP_DEMO", "photos")
    assert UpSettings().up_demo == "photos"
    monkeypatch.setenv("KVA_UP_DEMO", "movie")
    with pytest.raises(ValueError, match="'video' or 'photos'"):
        UpSettings()
