"""A clip's MJPEG body: every frame with its capture time, paced by the capture times,
ended by the closing boundary, bounded in bytes, stopped when the client or server goes."""

from __future__ import annotations

import threading
import time

from kva.frame import Frame
from kva.video.clip_stream import END, clip_parts, part_head


def _frames(offsets_ms: list[int], size: int = 1000) -> list[Frame]:
    base = 1_765_108_800_000_000_000
    return [
        Frame("cam0", i, base + ms * 1_000_000, 64, 48, bytes([i % 250]) * size)
        for i, ms in enumerate(offsets_ms)
    ]


def _parse(body: bytes) -> list[tuple[dict[str, str], bytes]]:
    parts = []
    rest = body
    while not rest.startswith(b"--kvaframe--"):
        head, _, rest = rest.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "--kvaframe"
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers["Content-Length"])
        parts.append((headers, rest[:length]))
        assert rest[length : length + 2] == b"\r\n"
        rest = rest[length + 2 :]
    assert rest == END
    return parts


def test_every_frame_goes_out_with_its_capture_time_and_sequence() -> None:
    frames = _frames([0, 40, 80])
    chunks = list(clip_parts(iter(frames), threading.Event(), max_bytes=10**6))
    assert len(chunks) == 3  # one a frame, each with the next part's head (Chromium shows it then)
    assert chunks[0].startswith(part_head(frames[0]))
    assert chunks[0].endswith(part_head(frames[1]))
    parts = _parse(b"".join(chunks))
    assert [body for _h, body in parts] == [f.data for f in frames]
    assert [int(h["X-Kva-Capture-Ns"]) for h, _b in parts] == [f.capture_ns for f in frames]
    assert [h["X-Kva-Seq"] for h, _b in parts] == ["0", "1", "2"]
    assert {h["Content-Type"] for h, _b in parts} == {"image/jpeg"}


def test_frames_go_out_at_their_original_timing() -> None:
    offsets = [0, 150, 300, 310, 600]
    started = time.monotonic()
    arrivals = [
        time.monotonic() - started
        for _chunk in clip_parts(iter(_frames(offsets)), threading.Event(), max_bytes=10**6)
    ]
    for arrived, due_ms in zip(arrivals, offsets, strict=True):
        assert arrived >= due_ms / 1000 - 0.005, f"a frame due at {due_ms} ms came at {arrived:.3f}"
    assert arrivals[-1] < 0.6 + 1.0  # and not much later (a loaded machine gets slack)


def test_a_clip_ends_before_the_frame_that_would_pass_its_byte_limit() -> None:
    chunks = list(clip_parts(iter(_frames([0, 1, 2, 3])), threading.Event(), max_bytes=2500))
    parts = _parse(b"".join(chunks))
    assert len(parts) == 2


def test_an_empty_clip_is_just_the_end() -> None:
    assert list(clip_parts(iter([]), threading.Event(), max_bytes=1000)) == [END]


def test_a_stopping_server_or_a_gone_client_ends_the_clip_at_once() -> None:
    stop = threading.Event()
    parts = clip_parts(iter(_frames([0, 60_000])), stop, max_bytes=10**6)
    assert next(parts)
    stop.set()  # set while the second frame waits its turn, a minute ahead
    started = time.monotonic()
    assert list(parts) == []
    assert time.monotonic() - started < 1.0
    gone = clip_parts(
        iter(_frames([0, 60_000])), threading.Event(), max_bytes=10**6, disconnected=lambda: True
    )
    assert next(gone)
    assert list(gone) == []


def test_the_sent_callback_counts_every_chunk() -> None:
    sent: list[tuple[int, int]] = []
    frames = _frames([0, 1, 2])
    chunks = list(
        clip_parts(
            iter(frames),
            threading.Event(),
            max_bytes=10**6,
            on_sent=lambda f, n: sent.append((f.sequence, n)),
        )
    )
    assert sent == [(i, len(c)) for i, c in enumerate(chunks)]
