"""One camera, one thread: open the source, pace frames to wall-clock, encode, send; never give up.

Failures of live sources (cannot connect, stream stopped, watchdog: open
but silent) close the source and retry with bounded, jittered exponential
backoff for as long as the producer runs. A file that cannot be read is a
permanent failure; a file that ends without ``loop`` ends its stream cleanly.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kva.frame import Frame
from kva.logs import RateLimitedLog
from kva.producer.backoff import Backoff
from kva.producer.config import CameraConfig
from kva.producer.encoder import EncodeError, JpegEncoder
from kva.producer.metrics import DROP_REASONS, ProducerMetrics
from kva.producer.sink import FrameSink
from kva.producer.sources import Captured, Source, SourceEnded, SourceError, make_source

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerTiming:
    """Reconnect, watchdog and logging intervals (seconds)."""

    reconnect_min: float = 0.5
    reconnect_max: float = 3.0
    watchdog_timeout: float = 5.0
    open_timeout: float = 5.0
    progress_interval: float = 5.0


SourceFactory = Callable[[CameraConfig, RunnerTiming], Source]


def default_source_factory(camera: CameraConfig, timing: RunnerTiming) -> Source:
    """The source a camera's ``source`` string names."""
    return make_source(
        camera.source,
        width=camera.width,
        height=camera.height,
        loop=camera.loop,
        open_timeout=timing.open_timeout,
        read_timeout=2 * timing.watchdog_timeout,  # the watchdog speaks first
    )


class CameraState(enum.Enum):
    """Where a camera runner is in its life."""

    STARTING = "starting"
    UP = "up"
    DOWN = "down"  # failed, waiting to reconnect
    ENDED = "ended"  # a file reached its end
    FAILED = "failed"  # a permanent error (missing or unreadable file)
    STOPPED = "stopped"


class CameraRunner:
    """Reads one camera in its own thread until :meth:`stop`."""

    def __init__(
        self,
        camera: CameraConfig,
        sink: FrameSink,
        metrics: ProducerMetrics,
        timing: RunnerTiming | None = None,
        source_factory: SourceFactory = default_source_factory,
        first_sequence: int = 0,
    ) -> None:
        self.camera = camera
        self._sink = sink
        self._metrics = metrics
        self._timing = timing or RunnerTiming()
        self._factory = source_factory
        self._encoder = JpegEncoder(camera.quality, camera.width, camera.height)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera.id}", daemon=True)
        self._log = RateLimitedLog(logger, interval=10.0)
        self.state = CameraState.STARTING
        self.error: str | None = None
        self.next_sequence = first_sequence
        #: Seconds from each reconnect attempt that worked back to the failure it recovered from.
        self.recoveries: list[float] = []
        self._down_since: float | None = None
        self._delivered = 0
        self._stale_counted = 0
        self._progress = _Progress()
        metrics.camera_up.labels(camera.id).set(0)

    @property
    def stream(self) -> str:
        return self.camera.id

    def start(self) -> CameraRunner:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to finish (returns at once; see :meth:`join`)."""
        self._stop.set()

    def join(self, timeout: float) -> bool:
        """Wait for the thread; True when it has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the others silently
            logger.exception("%s: camera thread crashed", self.stream)
            self._finish(CameraState.FAILED, f"internal error: {exc}")
        finally:
            self._metrics.camera_up.labels(self.stream).set(0)
            if self.state in (CameraState.UP, CameraState.DOWN, CameraState.STARTING):
                self.state = CameraState.STOPPED

    def _loop(self) -> None:
        backoff = Backoff(self._timing.reconnect_min, self._timing.reconnect_max)
        while not self._stop.is_set():
            source = self._factory(self.camera, self._timing)
            self._stale_counted = 0
            try:
                source.open()
                logger.info("%s: opened %s", self.stream, source.name)
                self._stream(source, backoff)
            except SourceEnded:
                logger.info("%s: %s ended; stream finished", self.stream, source.name)
                self._finish(CameraState.ENDED, None)
                return
            except SourceError as exc:
                self._metrics.source_errors.labels(self.stream).inc()
                if exc.permanent:
                    logger.error("%s: %s; giving up on this stream", self.stream, exc)
                    self._finish(CameraState.FAILED, str(exc))
                    return
                self._wait_to_retry(backoff, str(exc))
            except Exception as exc:  # noqa: BLE001 - never give up on a camera, even on a bug
                logger.warning("%s: unexpected error", self.stream, exc_info=True)
                self._metrics.source_errors.labels(self.stream).inc()
                self._wait_to_retry(backoff, f"unexpected error: {exc!r}")
            finally:
                self._close(source)

    def _close(self, source: Source) -> None:
        try:
            source.close()
        except Exception:  # noqa: BLE001 - a failing close must not end the camera
            logger.warning("%s: closing %s failed", self.stream, source.name, exc_info=True)
        self._count_stale(source)

    def _finish(self, state: CameraState, error: str | None) -> None:
        self.state, self.error = state, error
        self._metrics.camera_up.labels(self.stream).set(0)

    def _wait_to_retry(self, backoff: Backoff, reason: str) -> None:
        self._metrics.camera_up.labels(self.stream).set(0)
        if self.state is not CameraState.DOWN:
            self._down_since = time.monotonic()
        self.state, self.error = CameraState.DOWN, reason
        delay = backoff.next_delay()
        logger.warning(
            "%s: %s; reconnect attempt %d in %.2fs", self.stream, reason, backoff.attempts, delay
        )
        if not self._stop.wait(delay):
            self._metrics.reconnects.labels(self.stream).inc()

    def _stream(self, source: Source, backoff: Backoff) -> None:
        interval = 1.0 / self.camera.fps
        watchdog = self._timing.watchdog_timeout
        next_tick = last_frame = time.monotonic()
        while not self._stop.is_set():
            delay = next_tick - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            cpu = time.thread_time()
            captured = source.read(min(0.25, watchdog))
            self._cpu("capture", cpu)
            self._count_stale(source)
            now = time.monotonic()
            if captured is None:
                if now - last_frame > watchdog:
                    raise SourceError(f"{source.name}: no frame for {watchdog:g}s (watchdog)")
                continue
            first = self.state is not CameraState.UP
            if first:
                self._came_up(backoff, now)
            last_frame = now
            self._send(captured)
            if first:  # the rate is measured from this frame on
                self._progress.reset(now)
            next_tick += interval
            if next_tick < now - interval:  # fell behind (slow source): do not burst
                next_tick = now
            self._maybe_log_progress(now)

    def _came_up(self, backoff: Backoff, now: float) -> None:
        if self._down_since is not None:
            outage = now - self._down_since
            self.recoveries.append(outage)
            logger.info("%s: frames again after %.2fs down", self.stream, outage)
        self._down_since = None
        self.state, self.error = CameraState.UP, None
        backoff.reset()
        self._metrics.camera_up.labels(self.stream).set(1)

    def _send(self, captured: Captured) -> None:
        stream = self.stream
        self._metrics.frames_read.labels(stream).inc()
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            encoded = self._encoder.encode(captured.image)
        except EncodeError as exc:
            self._metrics.dropped(stream, "encode_error")
            self._log.log("encode", logging.WARNING, "%s: %s", stream, exc)
            return
        self._metrics.encode_seconds.labels(stream).observe(time.perf_counter() - started)
        cpu = self._cpu("encode", cpu)
        frame = Frame(
            stream_id=stream,
            sequence=self.next_sequence,
            capture_ns=captured.capture_ns,
            width=encoded.width,
            height=encoded.height,
            data=encoded.data,
        )
        self.next_sequence += 1
        self._metrics.frames_encoded.labels(stream).inc()
        self._sink.send(frame, self._on_delivered)
        self._cpu("produce", cpu)
        self._progress.add(len(encoded.data))

    def _on_delivered(self, _frame: Frame) -> None:
        self._delivered += 1

    def _cpu(self, stage: str, since: float) -> float:
        now = time.thread_time()
        self._metrics.stage_cpu_seconds.labels(self.stream, stage).inc(max(0.0, now - since))
        return now

    def _count_stale(self, source: Source) -> None:
        stale = source.stale_frames - self._stale_counted
        if stale > 0:
            self._stale_counted = source.stale_frames
            self._metrics.dropped(self.stream, "stale", stale)

    def _maybe_log_progress(self, now: float) -> None:
        progress = self._progress
        elapsed = now - progress.since
        if elapsed < self._timing.progress_interval:
            return
        dropped = sum(
            self._metrics.value(
                "kva_producer_frames_dropped_total", stream=self.stream, reason=reason
            )
            for reason in DROP_REASONS
        )
        logger.info(
            "%s: %.1f fps, %.1f kB/frame, %d sent, %d dropped",
            self.stream,
            progress.frames / elapsed,
            progress.bytes / max(1, progress.frames) / 1000,
            self._delivered,
            dropped,
        )
        progress.reset(now)


class _Progress:
    """Frames and bytes since the last progress line."""

    def __init__(self) -> None:
        self.since = time.monotonic()
        self.frames = 0
        self.bytes = 0

    def reset(self, now: float) -> None:
        self.since, self.frames, self.bytes = now, 0, 0

    def add(self, size: int) -> None:
        self.frames += 1
        self.bytes += size
