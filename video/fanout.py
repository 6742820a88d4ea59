"""The live MJPEG streams, sent to every client from one thread.

A client's connection is taken over from the WSGI server (:data:`kva.wsgi.DETACH`)
once its request passed every check. From then on :class:`MjpegFanout` sends it,
with every other live client, from one thread: non-blocking sockets on one
selector, and each frame's part (``jpeg + CRLF + next part head``, built once
by the store) sent to every client from the same bytes, with no copy per
client and no thread per client.

The rules are those of :func:`kva.video.mjpeg.mjpeg_parts`: a client gets the
newest frame whenever it is ready for one, at most ``max_fps`` frames a second
(:class:`~kva.video.mjpeg.Pacer`); a client still sending its last part skips
the frames that come meanwhile, so nobody waits for a slow client. A client is
dropped when it closes, when its stream goes, when it sends more than a request
should, or when it takes nothing for ``stall_seconds``.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kva.video.mjpeg import Pacer
from kva.video.store import PART_HEAD, StoredFrame, StreamSlot

logger = logging.getLogger(__name__)

#: A client that has taken no byte for this long is dropped.
STALL_SECONDS = 60.0
#: Most bytes a client may send once its stream started (it has nothing more to say).
MAX_CLIENT_BYTES = 64 * 1024
#: Longest wait for I/O (how often stalled clients and closed streams are looked for).
IDLE_SECONDS = 0.5


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    slot: StreamSlot
    pacer: Pacer
    on_sent: Callable[[StoredFrame, int], None]
    on_close: Callable[[], None]
    #: What is still to be sent: the head, then one part at a time.
    pending: list[memoryview] = field(default_factory=list)
    version: int = 0
    first: bool = True
    received: int = 0
    progress_at: float = 0.0
    writing: bool = False  # registered for EVENT_WRITE
    due: float = 0.0  # the pacer's next allowed send, while one is waited for


class MjpegFanout:
    """Sends the live MJPEG streams of every taken-over connection, from one thread.

    :meth:`add` (any thread) hands a client over; :meth:`wake` (the frame store
    calls it on every new frame) makes the thread look for newer frames;
    :meth:`stop` closes every client and ends the thread.
    """

    def __init__(
        self,
        max_fps: float,
        stall_seconds: float = STALL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_fps = max_fps
        self.stall_seconds = stall_seconds
        self._clock = clock
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._woken = threading.Event()
        self._incoming: queue.SimpleQueue[_Client] = queue.SimpleQueue()
        self._by_slot: dict[StreamSlot, set[_Client]] = {}
        self._seen: dict[StreamSlot, int] = {}  # the newest version looked at, per slot
        self._timers: list[tuple[float, int, _Client]] = []
        self._ready: list[_Client] = []  # to be offered the newest frame this turn
        self._next_stall_check = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kva-video-fanout", daemon=True)
        self._lock = threading.Lock()
        self._closed = False

    # -- any thread ---------------------------------------------------------------------------
    def start(self) -> MjpegFanout:
        """Start the sender thread."""
        self._thread.start()
        return self

    def add(
        self,
        sock: socket.socket,
        head: bytes,
        slot: StreamSlot,
        on_sent: Callable[[StoredFrame, int], None] = lambda _f, _n: None,
        on_close: Callable[[], None] = lambda: None,
    ) -> None:
        """Send ``head`` and then ``slot``'s live frames on ``sock`` (non-blocking, now ours).

        ``on_sent`` counts each frame queued for the client; ``on_close`` runs once,
        when the client is dropped (also when the fan-out is already stopped).
        """
        client = _Client(sock, slot, Pacer(self.max_fps), on_sent, on_close)
        client.pending.append(memoryview(head))
        with self._lock:
            if not self._closed:
                self._incoming.put(client)
                client = None  # type: ignore[assignment]
        if client is not None:
            _close(client)
            return
        self.wake()

    def wake(self) -> None:
        """Make the sender look for newer frames (cheap when it is already woken)."""
        if self._woken.is_set():
            return
        self._woken.set()
        # full: the sender is woken anyway; closed: it stopped
        with contextlib.suppress(OSError):
            self._wake_write.send(b"\0")

    def stop(self, timeout: float = 5.0) -> None:
        """Close every client and end the thread."""
        self._stopping.set()
        self._woken.clear()
        self.wake()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        self._close_all()

    @property
    def clients(self) -> int:
        """The clients being sent to."""
        return sum(len(clients) for clients in list(self._by_slot.values()))

    # -- the sender thread --------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._turn()
            except Exception:
                logger.exception("MJPEG sender: unexpected error (carrying on)")

    def _turn(self) -> None:
        now = self._clock()
        timeout = 0.0 if self._ready else IDLE_SECONDS
        if self._timers:
            timeout = min(timeout, max(0.0, self._timers[0][0] - now))
        for key, events in self._selector.select(timeout):
            client = key.data
            if client is None:
                self._drain_wake()
                continue
            if events & selectors.EVENT_READ:
                self._read(client)
            if events & selectors.EVENT_WRITE and client.sock.fileno() >= 0:
                self._send(client)
        self._admit()
        now = self._clock()
        self._due(now)
        self._fresh_frames(now)
        self._serve_ready(now)
        self._drop_stalled(now)

    def _drain_wake(self) -> None:
        # Read first, then clear: a wake() in between finds the flag still set and sends
        # nothing, and its frame is seen by the look at the streams after this.
        with contextlib.suppress(OSError):
            while self._wake_read.recv(4096):
                pass
        self._woken.clear()

    def _admit(self) -> None:
        while True:
            try:
                client = self._incoming.get_nowait()
            except queue.Empty:
                return
            try:
                self._selector.register(client.sock, selectors.EVENT_READ, client)
            except (OSError, ValueError):
                _close(client)
                continue
            self._by_slot.setdefault(client.slot, set()).add(client)
            client.progress_at = self._clock()
            self._send(client)
            self._ready.append(client)

    def _fresh_frames(self, now: float) -> None:
        """Every idle client of a stream with a newer frame gets it (if its pacer allows)."""
        for slot, clients in list(self._by_slot.items()):
            if slot.closed:
                for client in list(clients):
                    self._drop(client)
                continue
            current = slot.current
            if current is None or self._seen.get(slot) == current.version:
                continue
            self._seen[slot] = current.version
            for client in list(clients):
                self._offer(client, now)

    def _due(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, client = heapq.heappop(self._timers)
            client.due = 0.0
            self._ready.append(client)

    def _serve_ready(self, now: float) -> None:
        ready, self._ready = self._ready, []
        for client in ready:
            self._offer(client, now)

    def _offer(self, client: _Client, now: float) -> None:
        """Queue the newest frame for ``client`` if it is idle, behind and allowed one."""
        if client.pending or client.due or client.sock.fileno() < 0:
            return  # busy sending, waiting for its pacer, or dropped
        current = client.slot.current
        if current is None or current.version <= client.version:
            return
        delay = client.pacer.delay()
        if delay > 0:
            client.due = now + delay
            heapq.heappush(self._timers, (client.due, id(client), client))
            return
        size = len(current.part)
        if client.first:
            client.pending.append(memoryview(PART_HEAD))
            client.first = False
            size += len(PART_HEAD)
        client.pending.append(memoryview(current.part))
        client.version = current.version
        client.pacer.sent(current.received_mono)
        try:
            client.on_sent(current, size)
        except Exception:
            logger.exception("MJPEG sender: counting a sent frame failed")
        self._send(client)

    def _send(self, client: _Client) -> None:
        """Send what ``client`` has pending, as far as its socket takes it now."""
        try:
            sent = client.sock.sendmsg(client.pending)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(client)
            return
        if sent:
            client.progress_at = self._clock()
            _consume(client.pending, sent)
        if client.pending:
            if not client.writing:
                self._selector.modify(
                    client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client
                )
                client.writing = True
        elif client.writing:
            # A client that kept up only now: a newer frame may have come meanwhile.
            self._selector.modify(client.sock, selectors.EVENT_READ, client)
            client.writing = False
            self._ready.append(client)

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(MAX_CLIENT_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        client.received += len(data)
        if not data or client.received > MAX_CLIENT_BYTES:
            self._drop(client)

    def _drop_stalled(self, now: float) -> None:
        if now < self._next_stall_check:
            return
        self._next_stall_check = now + IDLE_SECONDS
        for clients in list(self._by_slot.values()):
            for client in list(clients):
                if client.pending and now - client.progress_at > self.stall_seconds:
                    logger.info(
                        "MJPEG client of %s took nothing for %.0f s: dropped",
                        client.slot.stream_id,
                        now - client.progress_at,
                    )
                    self._drop(client)

    def _drop(self, client: _Client) -> None:
        clients = self._by_slot.get(client.slot)
        if clients is None or client not in clients:
            return
        clients.discard(client)
        if not clients:
            del self._by_slot[client.slot]
            self._seen.pop(client.slot, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(client.sock)
        _close(client)

    def _close_all(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for clients in list(self._by_slot.values()):
            for client in list(clients):
                self._drop(client)
        while True:
            try:
                _close(self._incoming.get_nowait())
            except queue.Empty:
                break
        self._selector.close()
        self._wake_read.close()
        self._wake_write.close()


def _consume(pending: list[memoryview], sent: int) -> None:
    """Drop ``sent`` bytes from the front of ``pending``."""
    while sent:
        first = pending[0]
        if sent >= len(first):
            sent -= len(first)
            pending.pop(0)
        else:
            pending[0] = first[sent:]
            return


def _close(client: _Client) -> None:
    client.pending.clear()
    try:
        client.sock.close()
    finally:
        try:
            client.on_close()
        except Exception:
            logger.exception("MJPEG sender: releasing a client failed")
