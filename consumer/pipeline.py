"""The frame pipeline: newest frame per stream → models (pipelined) → annotate → publish.

``accept`` (called by the Kafka loop) keeps at most one waiting frame per
stream: a newer frame replaces an older one that has not been sent yet
(``overload``). Frames are dispatched to a worker pool while the models'
replicas have free capacity, so several frames of a stream are at the model
servers at once. A result that comes back after a newer frame of its stream
was published is dropped (``stale``), so a stream never goes backwards.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

from kva.consumer.annotate import FrameAnnotator
from kva.consumer.metrics import NO_STREAM, ConsumerMetrics
from kva.consumer.models import ModelRuntime
from kva.consumer.streams import StreamBook
from kva.frame import JPEG, Frame, FrameDecodeError
from kva.images import JPEG_START, MAX_DECODE_PIXELS, ImageError, check_image
from kva.kafka import FrameProducer, ProduceDropped, Record
from kva.logs import RateLimitedLog
from kva.predictions import CONSUMED_HEADER, PREDICTIONS_HEADER, FramePredictions, ModelResult

logger = logging.getLogger(__name__)

#: Frames processed at once when no model limits it (all unavailable, or passthrough).
IDLE_CAPACITY = 2


class Pipeline:
    """Schedules, processes and publishes frames. Thread-safe ``accept``/``dispatch``."""

    def __init__(
        self,
        *,
        models: list[ModelRuntime],
        producer: FrameProducer,
        metrics: ConsumerMetrics,
        output_topic: str,
        metadata_topic: str,
        max_frame_age: float,
        max_frame_bytes: int,
        jpeg_quality: int,
        request_quality: int,
        passthrough: bool = False,
        reorder_wait: float = 0.1,
        max_streams: int = 1024,
        prefetch: int = 1,
        max_workers: int = 64,
    ) -> None:
        self.models = models
        self.producer = producer
        self.metrics = metrics
        self.streams = StreamBook()
        self.output_topic = output_topic
        self.metadata_topic = metadata_topic
        self.max_frame_age = max_frame_age
        self.max_frame_bytes = max_frame_bytes
        self.jpeg_quality = jpeg_quality
        self.request_quality = request_quality
        self.passthrough = passthrough
        self._annotator = FrameAnnotator()
        self._log = RateLimitedLog(logger, interval=10.0)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending: dict[str, Frame] = {}
        self._order: list[str] = []
        self._inflight = 0  # dispatched, not yet back from the models
        self._busy = 0  # dispatched, not yet published or dropped
        self._closed = False
        self._publish_cond = threading.Condition()
        self._last_published: dict[str, tuple[int, int]] = {}
        self._in_work: dict[str, set[tuple[int, int]]] = {}
        self.reorder_wait = reorder_wait
        self.max_streams = max_streams
        #: frames dispatched beyond the replicas' capacity: decoded and resized while
        #: the replicas are busy, so a replica never waits for the consumer
        self.prefetch = prefetch
        self._streams_seen: set[str] = set()
        self._workers = ThreadPoolExecutor(max_workers, thread_name_prefix="kva-frame")
        self._model_calls = ThreadPoolExecutor(
            max(1, max_workers * max(0, len(models) - 1)), thread_name_prefix="kva-model"
        )

    # -- intake ----------------------------------------------------------------------
    def accept(self, record: Record) -> None:
        """Take one consumed message: decode the envelope, keep it as its stream's newest."""
        try:
            frame = record.frame(self.max_frame_bytes)
        except FrameDecodeError as exc:
            self._drop(NO_STREAM, "decode_error", f"{record.topic}[{record.partition}]: {exc}")
            return
        if not self._known_stream(frame.stream_id):
            self._drop(NO_STREAM, "overload", f"more than {self.max_streams} streams")
            return
        self.metrics.frames_in.labels(frame.stream_id).inc()
        self.streams.frame_in(frame.stream_id)
        if self.passthrough:
            self._publish(frame, frame, [])
            return
        if not frame.data.startswith(JPEG_START):
            self._drop(frame.stream_id, "decode_error", f"{frame.stream_id}: payload is not JPEG")
            return
        if frame.age_seconds() > self.max_frame_age:
            self._drop(frame.stream_id, "stale", f"{frame.stream_id}: frame too old")
            return
        with self._lock:
            older = self._pending.pop(frame.stream_id, None)
            self._pending[frame.stream_id] = frame
            if older is None:
                self._order.append(frame.stream_id)
        if older is not None:
            self._drop(frame.stream_id, "overload", "")
        self.dispatch()

    def _known_stream(self, stream: str) -> bool:
        """Track at most ``max_streams`` streams (bounded state and metric labels)."""
        with self._lock:
            if stream in self._streams_seen:
                return True
            if len(self._streams_seen) >= self.max_streams:
                return False
            self._streams_seen.add(stream)
            return True

    def capacity(self) -> int:
        """Frames that may be at the model servers at once."""
        limits = [m.pool.capacity() for m in self.models if m.pool.up_count()]
        return min(limits) if limits else IDLE_CAPACITY

    def dispatch(self) -> None:
        """Start waiting frames while there is capacity (round robin over streams)."""
        while True:
            with self._lock:
                limit = self.capacity() + self.prefetch
                # frames past the models (annotating, publishing) are bounded too
                full = self._inflight >= limit or self._busy >= 2 * limit
                if self._closed or not self._order or full:
                    return
                stream = self._order.pop(0)
                frame = self._pending.pop(stream)
                self._inflight += 1
                self._busy += 1
                self.metrics.frames_inflight.set(self._inflight)
            if frame.age_seconds() > self.max_frame_age:
                self._drop(stream, "stale", f"{stream}: frame too old when a replica was free")
                self._models_done()
                self._finished()
                continue
            self._register(frame)
            try:
                self._workers.submit(self._process, frame)
            except RuntimeError:  # shutting down
                self._resolve(frame)
                self._models_done()
                self._finished()
                return

    def _models_done(self) -> None:
        with self._lock:
            self._inflight -= 1
            self.metrics.frames_inflight.set(self._inflight)

    def _finished(self) -> None:
        with self._lock:
            self._busy -= 1
            self._idle.notify_all()

    def inflight(self) -> int:
        with self._lock:
            return self._inflight

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- work ------------------------------------------------------------------------
    def _process(self, frame: Frame) -> None:
        released = False

        def release() -> None:
            """The models are done with this frame: let the next one go to the replicas."""
            nonlocal released
            if not released:
                released = True
                self._models_done()
                self.dispatch()

        try:
            self._work(frame, release)
        except Exception:  # a bug must not kill the worker or leak the slot
            logger.exception("processing %s #%d failed", frame.stream_id, frame.sequence)
            self._drop(frame.stream_id, "decode_error", "")
        finally:
            release()
            self._resolve(frame)
            self._finished()
            self.dispatch()

    def _register(self, frame: Frame) -> None:
        with self._publish_cond:
            key = (frame.sequence, frame.capture_ns)
            self._in_work.setdefault(frame.stream_id, set()).add(key)

    def _resolve(self, frame: Frame) -> None:
        """The frame is published or dropped: frames waiting behind it may go."""
        with self._publish_cond:
            keys = self._in_work.get(frame.stream_id)
            if keys is not None:
                keys.discard((frame.sequence, frame.capture_ns))
                if not keys:
                    del self._in_work[frame.stream_id]
            self._publish_cond.notify_all()

    def _older_in_work(self, frame: Frame) -> bool:
        keys = self._in_work.get(frame.stream_id, ())
        return any(s < frame.sequence and c < frame.capture_ns for s, c in keys)

    def _work(self, frame: Frame, release: Callable[[], None]) -> None:
        problem = jpeg_problem(frame.data)
        if problem is not None:
            self._drop(frame.stream_id, "decode_error", f"{frame.stream_id}: {problem}")
            return
        image = decode_jpeg(frame.data)
        if image is None:
            self._drop(frame.stream_id, "decode_error", f"{frame.stream_id}: JPEG does not decode")
            return
        results = self._run_models(image)
        release()
        if any(r.status == "busy" for r in results):
            self._drop(frame.stream_id, "overload", f"{frame.stream_id}: replicas busy")
            return
        if any(r.status == "error" for r in results) and not any(r.status == "ok" for r in results):
            errors = "; ".join(r.error or "" for r in results if r.error)
            self._drop(frame.stream_id, "model_error", f"{frame.stream_id}: {errors}")
            return
        footer = (
            f"{frame.stream_id} #{frame.sequence}  age {frame.age_seconds() * 1000:.0f} ms  "
            f"{self.streams.fps_out(frame.stream_id):.1f} fps"
        )
        self._annotator.annotate(image, results, footer)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            self._drop(frame.stream_id, "decode_error", f"{frame.stream_id}: JPEG encode failed")
            return
        height, width = image.shape[:2]
        out = frame.replace(data=encoded.tobytes(), width=width, height=height, content_type=JPEG)
        self._publish(frame, out, results)

    def _run_models(self, image: np.ndarray) -> list[ModelResult]:
        payloads: dict[tuple[int, int], bytes] = {}
        for model in self.models:
            size = (model.info.width, model.info.height)
            if size not in payloads:
                payloads[size] = encode_for_model(image, size, self.request_quality)
        calls: list[Callable[[], ModelResult]] = [
            functools.partial(m.run, payloads[(m.info.width, m.info.height)]) for m in self.models
        ]
        if len(calls) == 1:
            return [calls[0]()]
        futures: list[Future[ModelResult]] = [self._model_calls.submit(c) for c in calls[1:]]
        first = calls[0]()
        return [first, *(f.result() for f in futures)]

    # -- output ----------------------------------------------------------------------
    def _publish(self, source: Frame, out: Frame, results: list[ModelResult]) -> None:
        """Publish in stream order: wait (bounded by ``reorder_wait``) for older frames of
        the stream still at the models; a frame older than the last published is dropped."""
        stream = source.stream_id
        with self._publish_cond:
            if not self.passthrough and self.reorder_wait > 0:
                self._publish_cond.wait_for(
                    lambda: not self._older_in_work(source), self.reorder_wait
                )
            last = self._last_published.get(stream)
            if last is not None and source.sequence <= last[0] and source.capture_ns <= last[1]:
                self._drop(stream, "stale", "")
                return
            now_ns = time.time_ns()
            text = "" if self.passthrough else self._document(source, results, now_ns)
            attributes = dict(out.attributes)
            attributes[CONSUMED_HEADER] = str(now_ns)
            if not self.passthrough:
                attributes[PREDICTIONS_HEADER] = text
            try:
                self.producer.send_frame(self.output_topic, out.replace(attributes=attributes))
                if self.metadata_topic and not self.passthrough:
                    self.producer.send(self.metadata_topic, stream.encode(), text.encode())
            except ProduceDropped as exc:
                self._drop(stream, "overload", f"{stream}: output dropped: {exc}")
                return
            self._last_published[stream] = (source.sequence, source.capture_ns)
        age = source.age_seconds(now_ns)
        self.metrics.frames_out.labels(stream).inc()
        self.metrics.frame_age.labels(stream).observe(age)
        self.streams.frame_out(stream, source.sequence, age)

    @staticmethod
    def _document(source: Frame, results: list[ModelResult], now_ns: int) -> str:
        """The metadata document (also the ``kva-predictions`` header) of one frame."""
        return FramePredictions(
            stream=source.stream_id,
            seq=source.sequence,
            capture_ns=source.capture_ns,
            published_ns=now_ns,
            width=source.width,
            height=source.height,
            models=tuple(results),
        ).to_json()

    def _drop(self, stream: str, reason: str, detail: str) -> None:
        self.metrics.dropped.labels(stream, reason).inc()
        self.streams.drop(stream, reason)
        if detail:
            self._log.log(reason, logging.WARNING, "frame dropped (%s): %s", reason, detail)

    def close(self, timeout: float = 10.0) -> None:
        """Stop dispatching and wait (bounded) for frames in flight."""
        with self._lock:
            self._closed = True
            self._pending.clear()
            self._order.clear()
            self._idle.wait_for(lambda: self._busy <= 0, timeout)
        self._workers.shutdown(wait=False, cancel_futures=True)
        self._model_calls.shutdown(wait=False, cancel_futures=True)


def jpeg_problem(data: bytes, max_pixels: int = MAX_DECODE_PIXELS) -> str | None:
    """Why ``data`` must not be decoded, or None (see :func:`kva.images.check_image`)."""
    try:
        check_image(data, max_pixels, jpeg_only=True)
    except ImageError as exc:
        return str(exc)
    return None


def decode_jpeg(data: bytes) -> np.ndarray | None:
    """BGR image, or None when the bytes are not a decodable image."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    return image if image is not None and image.size else None


def resize_for_model(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Stretch to ``size`` (width, height): exact halvings with area averaging, then linear.

    Close to one ``INTER_AREA`` resize (under one grey level apart) at a fraction of its cost.
    """
    width, height = size
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        half = (image.shape[1] // 2, image.shape[0] // 2)
        image = cv2.resize(image, half, interpolation=cv2.INTER_AREA)
    if image.shape[1] != width or image.shape[0] != height:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return image


def encode_for_model(image: np.ndarray, size: tuple[int, int], quality: int) -> bytes:
    """The smallest honest payload: the frame resized (stretched) to the model input, as JPEG."""
    ok, encoded = cv2.imencode(
        ".jpg", resize_for_model(image, size), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return encoded.tobytes()
