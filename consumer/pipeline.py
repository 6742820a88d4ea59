"""The frame pipeline: newest frame per stream → models (pipelined) → annotate → publish.

``accept`` (called by the Kafka loop) keeps at most one waiting frame per
stream: a newer frame replaces an older one that has not been sent yet
(``overload``). Frames are dispatched to a worker pool while the models'
replicas have free capacity, so several frames of a stream are at the model
servers at once. A result that comes back after a newer frame of its stream
was published is dropped (``stale``), so a stream never goes backwards.

:class:`Pipeline` coordinates; each job has its own module: admission in
:mod:`~kva.consumer.scheduling`, the order of publication in
:mod:`~kva.consumer.ordering`, the work on one frame in :mod:`~kva.consumer.work`.
Every drop is counted here, under one :data:`~kva.consumer.metrics.DropReason`.
The zone and line events a frame raised are published with it, in the same order,
to the events topic (keyed by stream), each naming the Kafka record the frame was
read from.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from kva.consumer.analytics import SceneAnalytics
from kva.consumer.config import ConsumerSettings
from kva.consumer.metrics import NO_STREAM, ConsumerMetrics, DropReason
from kva.consumer.models import ModelRuntime
from kva.consumer.ordering import StreamOrder
from kva.consumer.roster import StreamRoster
from kva.consumer.scheduling import Scheduler, replica_capacity
from kva.consumer.streams import StreamBook
from kva.consumer.tracking import TrackerSettings, Tracking
from kva.consumer.work import Dropped, FrameWork, build_output
from kva.events import Event, FrameRef
from kva.frame import Frame, FrameDecodeError
from kva.images import JPEG_START
from kva.kafka import FrameProducer, ProduceDropped, Record
from kva.logs import RateLimitedLog
from kva.predictions import ModelResult

logger = logging.getLogger(__name__)

#: Frames waiting or in work whose Kafka record is remembered (for the events' ``frame``).
MAX_FRAME_REFS = 4096


class Pipeline:
    """Frames from the Kafka loop to the output topic. Thread-safe ``accept``/``dispatch``."""

    def __init__(
        self,
        *,
        models: list[ModelRuntime],
        producer: FrameProducer,
        metrics: ConsumerMetrics,
        settings: ConsumerSettings,
        max_workers: int = 64,
    ) -> None:
        s = settings
        self.producer = producer
        self.metrics = metrics
        self.streams = StreamBook()
        self.output_topic = s.consume_output_topic
        self.metadata_topic = s.consume_metadata_topic
        self.max_frame_bytes = s.consume_max_frame_bytes
        self.passthrough = s.consume_passthrough
        self.events_topic = s.consume_events_topic
        self.tracking: Tracking | None = None
        detectors = {m.name for m in models if m.info.kind == "detector"}
        tracked = (set(s.consume_track_models) or detectors) & detectors
        if s.consume_track and not s.consume_passthrough and tracked:
            self.tracking = Tracking(
                TrackerSettings(s.consume_track_window, s.consume_max_tracks), tracked
            )
        self.analytics = SceneAnalytics(
            window_s=s.consume_track_window, max_tracks=s.consume_max_tracks
        )
        self._refs: OrderedDict[tuple[str, int, int], FrameRef] = OrderedDict()
        self._refs_lock = threading.Lock()
        self.scheduler = Scheduler(
            capacity=functools.partial(replica_capacity, models),
            max_frame_age=s.consume_max_frame_age,
            # one request per replica: prepare the next frame meanwhile; with two or more,
            # a replica already has the next request queued and a prepared frame only ages
            prefetch=1 if s.consume_max_inflight == 1 else 0,
            on_inflight=metrics.frames_inflight.set,
        )
        self.order = StreamOrder(s.consume_reorder_wait)
        #: tracking goes in each stream's order too (a tracker takes frames oldest first)
        self.track_order = StreamOrder(s.consume_reorder_wait)
        self.roster = StreamRoster(
            s.consume_max_streams, s.consume_forget_after, on_forget=self._forget
        )
        self.work = FrameWork(
            models,
            jpeg_quality=s.consume_jpeg_quality,
            request_quality=s.consume_request_quality,
            fps_out=self.streams.fps_out,
            max_workers=max_workers,
            tracking=self.tracking,
            analytics=self.analytics if self.tracking is not None else None,
            track_order=self.track_order,
        )
        self._log = RateLimitedLog(logger, interval=10.0)
        self._errors_log = RateLimitedLog(logger, interval=10.0)
        self._workers = ThreadPoolExecutor(max_workers, thread_name_prefix="kva-frame")

    def accept(self, record: Record) -> None:
        """Take one consumed message: decode the envelope, keep it as its stream's newest."""
        try:
            frame = record.frame(self.max_frame_bytes)
        except FrameDecodeError as exc:
            self._drop(NO_STREAM, "decode_error", f"{record.topic}[{record.partition}]: {exc}")
            return
        stream = frame.stream_id
        if not self.roster.admit(stream):
            self._drop(
                NO_STREAM,
                "too_many_streams",
                f"{self.roster.max_streams} streams are tracked: no room for a new one",
            )
            return
        self.metrics.frames_in.labels(stream).inc()
        self.streams.frame_in(stream)
        if self.passthrough:
            self._publish(frame, frame, [])
            return
        if not frame.data.startswith(JPEG_START):
            self._drop(stream, "decode_error", f"{stream}: payload is not JPEG")
            return
        if self.scheduler.stale(frame):
            self._drop(stream, "stale", f"{stream}: frame too old")
            return
        self._remember(frame, FrameRef(record.topic, record.partition, record.offset))
        older = self.scheduler.admit(frame)
        if older is not None:
            self._take_ref(older)
            self._drop(stream, "overload", "")
        self.dispatch()

    def _remember(self, frame: Frame, ref: FrameRef) -> None:
        with self._refs_lock:
            self._refs[(frame.stream_id, frame.sequence, frame.capture_ns)] = ref
            while len(self._refs) > MAX_FRAME_REFS:
                self._refs.popitem(last=False)

    def _take_ref(self, frame: Frame) -> FrameRef | None:
        with self._refs_lock:
            return self._refs.pop((frame.stream_id, frame.sequence, frame.capture_ns), None)

    def record_failed(self, record: Record, exc: Exception) -> None:
        """The safety net of the Kafka loop: handling ``record`` raised ``exc`` (a bug).

        Counted as a drop (``internal_error``) and by exception type, logged with its
        traceback at most once per interval per type; the loop goes on.
        """
        kind = type(exc).__name__
        self.metrics.record_errors.labels(kind).inc()
        self.metrics.dropped.labels(NO_STREAM, "internal_error").inc()
        self._errors_log.failure(kind, record.where, exc)

    def expire(self) -> list[str]:
        """Forget the streams that went quiet (with their metric series)."""
        return self.roster.expire()

    def _forget(self, stream: str) -> None:
        self.metrics.forget(stream)
        self.streams.forget(stream)
        self.order.forget(stream)
        self.track_order.forget(stream)
        if self.tracking is not None:
            self.tracking.forget(stream)
        self.analytics.forget(stream)

    def dispatch(self) -> None:
        """Start waiting frames while there is capacity (round robin over streams)."""
        while (frame := self.scheduler.next_frame()) is not None:
            if self.scheduler.stale(frame):
                stream = frame.stream_id
                self._take_ref(frame)
                self._drop(stream, "stale", f"{stream}: frame too old when a replica was free")
                self.scheduler.models_done()
                self.scheduler.finished()
                continue
            self.order.register(frame)
            self.track_order.register(frame)
            try:
                self._workers.submit(self._process, frame)
            except RuntimeError:  # shutting down
                self.order.resolve(frame)
                self.track_order.resolve(frame)
                self.scheduler.models_done()
                self.scheduler.finished()
                return

    def _process(self, frame: Frame) -> None:
        """A worker's job: one frame through the models to the output topic, or dropped."""
        released = False

        def release() -> None:
            """The models are done with this frame: let the next one go to the replicas."""
            nonlocal released
            if not released:
                released = True
                self.scheduler.models_done()
                self.dispatch()

        try:
            outcome = self.work.run(frame, release, self._take_ref(frame))
            if isinstance(outcome, Dropped):
                self._drop(frame.stream_id, outcome.reason, outcome.detail)
            else:
                self._publish(frame, outcome.frame, outcome.results, outcome.events)
        except Exception:  # a bug must not kill the worker or leak the slot
            logger.exception("processing %s #%d failed", frame.stream_id, frame.sequence)
            self._drop(frame.stream_id, "internal_error", "")
        finally:
            release()
            self.track_order.resolve(frame)
            self.order.resolve(frame)
            self.scheduler.finished()
            self.dispatch()

    def _publish(
        self,
        source: Frame,
        out: Frame,
        results: list[ModelResult],
        events: list[Event] | None = None,
    ) -> None:
        """Publish ``out`` in its stream's order (see :mod:`~kva.consumer.ordering`)."""
        stream = source.stream_id
        send = functools.partial(self._send, source, out, results, events or [])
        try:
            published_ns = self.order.publish(source, send)
        except ProduceDropped as exc:
            self._drop(stream, "overload", f"{stream}: output dropped: {exc}")
            return
        if published_ns is None:
            self._drop(stream, "stale", "")
            return
        age = source.age_seconds(published_ns)
        self.metrics.frames_out.labels(stream).inc()
        self.metrics.frame_age.labels(stream).observe(age)
        self.streams.frame_out(stream, source.sequence, age)

    def _send(
        self, source: Frame, out: Frame, results: list[ModelResult], events: list[Event]
    ) -> int:
        """Send the output frame, its document to the metadata topic and its events to the
        events topic; returns the time."""
        now_ns = time.time_ns()
        frame, text = build_output(source, out, results, now_ns, passthrough=self.passthrough)
        self.producer.send_frame(self.output_topic, frame)
        if self.metadata_topic and not self.passthrough:
            self.producer.send(
                self.metadata_topic,
                source.stream_id.encode(),
                text.encode(),
                timestamp_ms=source.capture_ns // 1_000_000,
            )
        self._send_events(events)
        return now_ns

    def _send_events(self, events: list[Event]) -> None:
        """Each event to the events topic (if any), keyed by stream, and counted in the
        metrics; a full local queue loses the event (counted and logged), never the frame."""
        for event in events:
            if self.events_topic:
                try:
                    self.producer.send(
                        self.events_topic,
                        event.stream.encode(),
                        event.to_json().encode(),
                        timestamp_ms=event.capture_ns // 1_000_000,
                    )
                except ProduceDropped as exc:
                    self.metrics.events_failed.labels(event.stream).inc()
                    self._log.log("events", logging.WARNING, "event dropped: %s", exc)
            self.metrics.count_event(event)

    def _drop(self, stream: str, reason: DropReason, detail: str) -> None:
        self.metrics.dropped.labels(stream, reason).inc()
        self.streams.drop(stream, reason)
        if detail:
            self._log.log(reason, logging.WARNING, "frame dropped (%s): %s", reason, detail)

    def close(self, timeout: float = 10.0) -> None:
        """Stop dispatching and wait (bounded) for frames in flight."""
        self.scheduler.close(timeout)
        self._workers.shutdown(wait=False, cancel_futures=True)
        self.work.close()
