"""The in-memory AVI of a clip: OpenCV reads back every JPEG, at the clip's average rate."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kva.video.avi import HEADER_BYTES, AviBuilder, ClipTooLarge
from tests.support.frames import jpeg


def _read_back(path: Path, api: int) -> tuple[list[np.ndarray], float, float]:
    capture = cv2.VideoCapture(str(path), api)
    assert capture.isOpened(), f"OpenCV cannot open {path}"
    count, fps = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
    images = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        images.append(image)
    capture.release()
    return images, count, fps


@pytest.mark.parametrize("api", [cv2.CAP_OPENCV_MJPEG, cv2.CAP_FFMPEG], ids=["opencv", "ffmpeg"])
def test_opencv_reads_every_frame_back_at_the_clips_rate(tmp_path: Path, api: int) -> None:
    frames = [jpeg(320, 180, grey=20 + 9 * i, text=str(i)) for i in range(15)]
    builder = AviBuilder(320, 180, 10 * 1024 * 1024)
    for data in frames:
        builder.add(data)
    data = builder.finish(duration_s=14 / 7.5)  # 15 frames, 7.5 fps
    assert len(data) == builder.size
    path = tmp_path / "clip.avi"
    path.write_bytes(data)
    images, count, fps = _read_back(path, api)
    assert count == 15 and len(images) == 15
    assert fps == pytest.approx(7.5, abs=0.01)
    for image, original in zip(images, frames, strict=True):
        decoded = cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (180, 320, 3)
        assert (
            np.abs(image.astype(np.int16) - decoded).mean() < 2
        )  # the JPEG itself, not re-encoded


def test_the_jpegs_are_copied_as_they_are() -> None:
    base = jpeg(64, 48)
    odd = base if len(base) % 2 else base + b"\0"  # an odd length: its chunk is padded
    builder = AviBuilder(64, 48, 1024 * 1024)
    builder.add(odd)
    builder.add(odd)
    data = builder.finish(0.1)
    assert data[:4] == b"RIFF" and data[8:12] == b"AVI "
    assert data[HEADER_BYTES - 4 : HEADER_BYTES] == b"movi"
    assert data.count(odd) == 2
    assert data[HEADER_BYTES + 8 + len(odd)] == 0  # the pad byte
    assert data[HEADER_BYTES + 8 + len(odd) + 1 : HEADER_BYTES + 12 + len(odd) + 1] == b"00dc"


def test_a_file_over_its_limit_is_refused_and_keeps_what_fits() -> None:
    frame = jpeg(320, 180)
    builder = AviBuilder(320, 180, HEADER_BYTES + 3 * (len(frame) + 30))
    for _ in range(3):
        builder.add(frame)
    with pytest.raises(
        ClipTooLarge, match=r"larger than \d+ bytes after 3 frames: choose a shorter"
    ):
        builder.add(frame)
    assert builder.frames == 3
    assert builder.size <= builder.max_bytes


def test_a_single_frame_or_equal_times_give_the_default_rate(tmp_path: Path) -> None:
    builder = AviBuilder(64, 48, 1024 * 1024)
    builder.add(jpeg(64, 48))
    path = tmp_path / "one.avi"
    path.write_bytes(builder.finish(0.0))
    images, count, fps = _read_back(path, cv2.CAP_OPENCV_MJPEG)
    assert (len(images), count, fps) == (1, 1, 10.0)


def test_a_frame_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="frame size 0x48 is not positive"):
        AviBuilder(0, 48, 1024)
