"""The one-thread sender of the live MJPEG streams (``kva.video.fanout``), over real sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from kva.video.fanout import MAX_CLIENT_BYTES, MjpegFanout
from kva.video.store import PART_HEAD, FrameStore, StoredFrame, StreamSlot
from tests.support.frames import make_frame
from tests.support.wait import wait_for

HEAD = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"


class Closes:
    """Counts ``on_close`` calls."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.count += 1


@pytest.fixture
def fanout() -> Iterator[MjpegFanout]:
    sender = MjpegFanout(max_fps=1000, stall_seconds=0.5).start()
    yield sender
    sender.stop()


def _pair() -> tuple[socket.socket, socket.socket]:
    """(the server's end, non-blocking; the client's end, with a timeout)."""
    server_end, client_end = socket.socketpair()
    server_end.setblocking(False)
    client_end.settimeout(10)
    return server_end, client_end


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def _closed(sock: socket.socket) -> bool:
    """True once the other end closed (whatever is still buffered is read away)."""
    sock.settimeout(0.05)
    try:
        while chunk := sock.recv(1 << 20):
            del chunk
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


def test_the_head_then_each_newest_frame_from_the_stores_own_bytes(fanout) -> None:
    store = FrameStore()
    store.add_listener(fanout.wake)
    first = store.put_frame(make_frame("cam0", 0, b"\xff\xd8one\xff\xd9"))
    assert first is not None
    slot = store.get("cam0")
    assert slot is not None
    server_end, client_end = _pair()
    sent: list[tuple[StoredFrame, int]] = []
    fanout.add(server_end, HEAD, slot, lambda f, n: sent.append((f, n)))
    expected = HEAD + PART_HEAD + first.part
    assert _read(client_end, len(expected)) == expected
    second = store.put_frame(make_frame("cam0", 1, b"\xff\xd8two\xff\xd9"))
    assert second is not None
    assert _read(client_end, len(second.part)) == second.part
    assert [(f.version, n) for f, n in sent] == [
        (1, len(PART_HEAD) + len(first.part)),
        (2, len(second.part)),
    ]
    client_end.close()


def test_a_client_that_takes_nothing_is_dropped_and_holds_nobody_up(fanout) -> None:
    slot = StreamSlot("cam0")
    big = b"\xff\xd8" + bytes(4 << 20) + b"\xff\xd9"  # more than both socket buffers
    stuck_end, stuck_client = _pair()
    fast_end, fast_client = _pair()
    stuck_closed, fast_closed = Closes(), Closes()
    fanout.add(stuck_end, HEAD, slot, on_close=stuck_closed)
    fanout.add(fast_end, HEAD, slot, on_close=fast_closed)
    assert _read(fast_client, len(HEAD)) == HEAD
    stored = slot.put(make_frame("cam0", 0, big), 0.0)
    fanout.wake()
    # the fast client gets the whole big frame while the stuck one reads nothing
    assert len(_read(fast_client, len(PART_HEAD) + len(stored.part))) > len(big)
    wait_for(lambda: stuck_closed.count == 1, 10, "the stalled client to be dropped")
    assert _closed(stuck_client)
    assert fast_closed.count == 0 and fanout.clients == 1
    fast_client.close()
    wait_for(lambda: fast_closed.count == 1, 5, "the closed client to be dropped")
    assert fanout.clients == 0


def test_a_client_that_keeps_talking_is_dropped(fanout) -> None:
    slot = StreamSlot("cam0")
    server_end, client_end = _pair()
    closes = Closes()
    fanout.add(server_end, HEAD, slot, on_close=closes)
    assert _read(client_end, len(HEAD)) == HEAD
    try:
        for _ in range(2 * MAX_CLIENT_BYTES // 4096 + 1):
            client_end.sendall(b"x" * 4096)
    except OSError:
        pass  # already dropped
    wait_for(lambda: closes.count == 1, 5, "the talking client to be dropped")
    assert _closed(client_end)


def test_a_stream_that_goes_away_ends_its_clients(fanout) -> None:
    store = FrameStore()
    store.add_listener(fanout.wake)
    store.put_frame(make_frame("cam0", 0, b"\xff\xd8a\xff\xd9"))
    slot = store.get("cam0")
    assert slot is not None
    server_end, client_end = _pair()
    closes = Closes()
    fanout.add(server_end, HEAD, slot, on_close=closes)
    assert _read(client_end, len(HEAD)) == HEAD
    slot.close()
    fanout.wake()
    wait_for(lambda: closes.count == 1, 5, "the client of the closed stream to be dropped")
    assert _closed(client_end)


def test_stop_closes_every_client_once_and_refuses_new_ones() -> None:
    sender = MjpegFanout(max_fps=30).start()
    slot = StreamSlot("cam0")
    pairs = [_pair() for _ in range(3)]
    closes = Closes()
    for server_end, client_end in pairs:
        sender.add(server_end, HEAD, slot, on_close=closes)
        assert _read(client_end, len(HEAD)) == HEAD
    sender.stop()
    assert closes.count == 3
    assert all(_closed(client_end) for _, client_end in pairs)
    late_end, late_client = _pair()
    sender.add(late_end, HEAD, slot, on_close=closes)
    assert closes.count == 4 and _closed(late_client)
