"""MJPEG over real HTTP against waitress: framing, concurrency, slow and vanished clients."""

from __future__ import annotations

import socket
import statistics
import threading
import time

import cv2
import numpy as np
import pytest
import requests

from kva.video.app import create_app
from kva.video.state import viewer_state
from tests.support.frames import make_frame
from tests.support.wait import wait_for
from tests.video.frames import annotate, encode_jpeg, photo, photo_frames
from tests.video.mjpeg_client import MjpegClient


def _viewers(url: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("kva_video_viewers "):
            return float(line.split()[1])
    raise AssertionError("no kva_video_viewers metric")


def _frames_sent(url: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("kva_video_frames_sent_total{"):
            return float(line.split()[1])
    return 0.0


def _client(server, stream: str = "cam0") -> MjpegClient:
    return MjpegClient(server.host, server.port, f"/streams/{stream}.mjpg").connect()


def _fps_of(client: MjpegClient, seconds: float, out: list[float]) -> None:
    """Reads parts for ``seconds`` and appends the rate it got."""
    client.read_part()
    start, count = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        client.read_part()
        count += 1
    out.append(count / (time.monotonic() - start))


def test_parts_decode_as_jpegs_and_advance(make_settings, serve, feed, cat_frames) -> None:
    app = create_app(make_settings())
    store = viewer_state(app).store
    by_data: dict[bytes, int] = {}

    def put(frame):
        by_data[frame.data] = frame.sequence
        store.put_frame(frame)

    frames = [
        f.replace(data=encode_jpeg(annotate(photo("chelsea", 320, 240), "cat", i)))
        for i, f in enumerate(cat_frames)
    ]
    feed(put, frames, fps=20)
    wait_for(lambda: store.get("cam0") is not None, 5, "the first frame")
    server = serve(app)
    client = _client(server)
    try:
        assert client.status == 200
        assert (
            client.response_headers["content-type"]
            == "multipart/x-mixed-replace; boundary=kvaframe"
        )
        sequences = []
        for _ in range(8):
            part = client.read_part()
            assert part.headers["content-type"] == "image/jpeg"
            image = cv2.imdecode(np.frombuffer(part.body, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and image.shape == (240, 320, 3)
            sequences.append(by_data[part.body])
    finally:
        client.close()
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences), sequences


def test_a_single_frame_is_complete_at_once(make_settings, serve, cat_frames) -> None:
    """A one-frame stream still shows: the next boundary follows the JPEG immediately."""
    app = create_app(make_settings())
    viewer_state(app).store.put_frame(cat_frames[0])
    client = _client(serve(app))
    try:
        part = client.read_part()
    finally:
        client.close()
    assert part.body == cat_frames[0].data


@pytest.mark.slow  # measures each client's rate over 2 s
@pytest.mark.parametrize("clients", [2, 10])
def test_concurrent_clients_all_get_frames(make_settings, serve, feed, cat_frames, clients) -> None:
    app = create_app(make_settings())
    store = viewer_state(app).store
    feed(store.put_frame, cat_frames, fps=20)
    wait_for(lambda: store.get("cam0") is not None, 5, "the first frame")
    server = serve(app)
    readers = [_client(server) for _ in range(clients)]
    rates: list[float] = []
    threads = [threading.Thread(target=_fps_of, args=(c, 2.0, rates)) for c in readers]
    try:
        for t in threads:
            t.start()
        wait_for(lambda: _viewers(server.url) == clients, 10, f"{clients} viewers")
        for t in threads:
            t.join(20)
    finally:
        for c in readers:
            c.close()
    assert len(rates) == clients
    assert min(rates) >= 14, rates  # source 20 fps


@pytest.mark.faults
def test_a_client_that_never_reads_does_not_slow_the_others(make_settings, serve, feed) -> None:
    app = create_app(make_settings(video_client_buffer_bytes=64 * 1024))
    store = viewer_state(app).store
    rng = np.random.default_rng(1)
    noisy = [  # ~700 kB JPEGs fill a stuck client's socket buffers within a second
        make_frame(
            "cam0",
            i,
            encode_jpeg(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), 95),
            640,
            480,
        )
        for i in range(4)
    ]
    feeder = feed(store.put_frame, noisy, fps=20)
    wait_for(lambda: store.get("cam0") is not None, 5, "the first frame")
    server = serve(app)
    stuck = socket.create_connection((server.host, server.port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(b"GET /streams/cam0.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
    sent_before = feeder.sent
    wait_for(
        lambda: feeder.sent > sent_before + 40,
        10,
        "2 s of frames (the stuck client's buffers are full)",
    )
    others = [_client(server) for _ in range(3)]
    rates: list[float] = []
    threads = [threading.Thread(target=_fps_of, args=(c, 3.0, rates)) for c in others]
    sent_before = _frames_sent(server.url)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert _viewers(server.url) == 4  # the stuck client is still connected
        # In that window the stuck client got (almost) nothing: it really was stuck.
        sent_to_others = sum(rate * 3.0 + 2 for rate in rates)
        assert _frames_sent(server.url) - sent_before <= sent_to_others + 2
    finally:
        stuck.close()
        for c in others:
            c.close()
    assert len(rates) == 3 and min(rates) >= 16, rates  # source 20 fps


@pytest.mark.slow  # measures the rate over 3 s
def test_max_fps_paces_each_client(make_settings, serve, feed, cat_frames) -> None:
    app = create_app(make_settings(video_max_fps=8))
    store = viewer_state(app).store
    feed(store.put_frame, cat_frames, fps=40)
    wait_for(lambda: store.get("cam0") is not None, 5, "the first frame")
    client = _client(serve(app))
    rates: list[float] = []
    try:
        for _ in range(4):  # the first frames may come in a burst (the pacer's bucket)
            client.read_part()
        _fps_of(client, 3.0, rates)
    finally:
        client.close()
    assert 6.0 <= rates[0] <= 8.5, rates


def test_a_slow_reader_skips_to_the_newest_frame(make_settings, serve, feed, cat_frames) -> None:
    app = create_app(make_settings())
    store = viewer_state(app).store
    feeder = feed(store.put_frame, cat_frames, fps=30)
    wait_for(lambda: store.get("cam0") is not None, 5, "the first frame")
    client = _client(serve(app))
    try:
        client.read_part()
        time.sleep(1.0)  # the client is busy: it reads nothing for a second
        client.read_part()  # one part may have been written before it was busy
        newest = client.read_part()
    finally:
        client.close()
    current = store.get("cam0").current
    assert current is not None
    assert newest.body in {f.data for f in cat_frames}
    assert feeder.sent - 1 - current.frame.sequence <= 2  # the reader was never held up


def test_disconnected_clients_are_cleaned_up(make_settings, serve, cat_frames) -> None:
    """Even on a stream that has gone quiet, a closed connection is noticed at once."""
    app = create_app(make_settings())
    viewer_state(app).store.put_frame(cat_frames[0])
    server = serve(app)
    clients = [_client(server) for _ in range(5)]
    for c in clients:
        c.read_part()
    wait_for(lambda: _viewers(server.url) == 5, 5, "5 viewers")
    for c in clients:
        c.close()
    wait_for(lambda: _viewers(server.url) == 0, 3, "the viewers to be cleaned up")


def test_frames_sent_and_bytes_are_counted(make_settings, serve, cat_frames) -> None:
    app = create_app(make_settings())
    viewer_state(app).store.put_frame(cat_frames[0])
    server = serve(app)
    client = _client(server)
    sent = 'kva_video_frames_sent_total{stream="cam0"} 1.0'
    try:
        client.read_part()
        # the server counts a frame once its write returned, which can be after the client
        # has read it
        wait_for(
            lambda: sent in requests.get(f"{server.url}/metrics", timeout=5).text,
            5,
            "the sent frame counted",
        )
    finally:
        client.close()


def test_unknown_stream_over_http(make_settings, serve) -> None:
    server = serve(create_app(make_settings()))
    response = requests.get(f"{server.url}/streams/ghost.mjpg", timeout=5)
    assert response.status_code == 404
    assert response.text == "404 not found: unknown stream 'ghost'\n"


def test_stop_ends_open_streams(make_settings, cat_frames) -> None:
    from kva.video.server import ViewerServer

    app = create_app(make_settings())
    viewer_state(app).store.put_frame(cat_frames[0])
    server = ViewerServer(app, port=0).start()
    client = _client(server)
    client.read_part()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5
    with pytest.raises((ConnectionError, OSError)):
        for _ in range(3):
            client.read_part()
    client.close()


def test_photo_frames_are_distinct() -> None:
    frames = photo_frames("coffee", "cup", 3)
    assert len({f.data for f in frames}) == 3
    assert statistics.mean(len(f.data) for f in frames) > 5000


def test_mjpeg_clients_never_take_the_threads_of_the_page(make_settings, serve, cat_frames) -> None:
    app = create_app(make_settings(video_threads=8))  # 8 - 4 reserved = 4 MJPEG clients
    viewer_state(app).store.put_frame(cat_frames[0])
    server = serve(app)
    clients = [_client(server) for _ in range(4)]
    try:
        for c in clients:
            c.read_part()
        response = requests.get(f"{server.url}/streams/cam0.mjpg", timeout=5, stream=True)
        assert response.status_code == 503
        assert "too many viewers" in response.text
        assert requests.get(f"{server.url}/api/streams", timeout=5).status_code == 200
        assert requests.get(f"{server.url}/", timeout=5).status_code == 200
        clients.pop().close()
        wait_for(lambda: _viewers(server.url) == 3, 5, "a free slot")
        again = _client(server)
        clients.append(again)
        assert again.status == 200 and again.read_part().body == cat_frames[0].data
    finally:
        for c in clients:
            c.close()


def test_live_streams_go_out_from_one_thread_not_one_per_client(
    make_settings, serve, feed, cat_frames
) -> None:
    """30 live clients, all sent by the fan-out: no chunked framing, and every header of
    the app (the security headers too) in the head it sends."""
    app = create_app(make_settings(video_threads=40))
    state = viewer_state(app)
    server = serve(app)
    feed(state.store.put_frame, cat_frames, 30)
    clients = [_client(server) for _ in range(30)]
    try:
        for c in clients:
            assert c.read_part().body in {f.data for f in cat_frames}
        assert state.fanout is not None and state.fanout.clients == 30
        head = clients[0].response_headers
        assert "transfer-encoding" not in head and head["connection"] == "close"
        assert head["content-type"].startswith("multipart/x-mixed-replace")
        assert head["x-frame-options"] == "DENY"
        assert _viewers(server.url) == 30
    finally:
        for c in clients:
            c.close()
    wait_for(lambda: _viewers(server.url) == 0, 5, "every viewer released")
