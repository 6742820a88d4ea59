"""Frame work: one frame from its JPEG to the annotated frame and what is published.

Check the JPEG's header (:func:`kva.images.check_image`), decode it, send each
model the frame resized to its input (one encoding per input size, the models
in parallel), judge the answers, give the detectors' boxes their track ids
(:mod:`~kva.consumer.tracking`) and find the zone and line events
(:mod:`~kva.consumer.analytics`), draw them, encode the result, and build the
output: the annotated frame with its headers and the predictions document.
A frame that cannot go on is returned as :class:`Dropped` with its reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from kva.consumer.analytics import FrameInfo, SceneAnalytics
from kva.consumer.annotate import FrameAnnotator, SceneCounts
from kva.consumer.backend_api import Payload
from kva.consumer.config import ConsumerSettings
from kva.consumer.metrics import DropReason
from kva.consumer.model_input import InputFormat, to_tensor
from kva.consumer.models import ModelRuntime
from kva.consumer.ordering import StreamOrder
from kva.consumer.tracking import TrackerSettings, Tracking
from kva.events import Event, FrameRef
from kva.frame import JPEG, Frame
from kva.images import MAX_DECODE_PIXELS, ImageError, check_image
from kva.predictions import (
    CONSUMED_HEADER,
    PREDICTIONS_HEADER,
    Detections,
    FramePredictions,
    ModelResult,
)


class EncodeError(ValueError):
    """OpenCV could not encode an image as JPEG."""


@dataclass(frozen=True, slots=True)
class Dropped:
    """A frame that goes no further: why (the metric label) and what to log."""

    reason: DropReason
    detail: str


@dataclass(frozen=True, slots=True)
class Annotated:
    """A processed frame: the annotated JPEG (the source's attributes), the results (with
    track ids) and the zone and line events it raised."""

    frame: Frame
    results: list[ModelResult]
    events: list[Event] = field(default_factory=list)


class FrameWork:
    """Decodes, runs the models on, annotates and encodes frames. Thread-safe."""

    def __init__(
        self,
        models: list[ModelRuntime],
        *,
        jpeg_quality: int,
        request_quality: int,
        fps_out: Callable[[str], float] = lambda _stream: 0.0,
        max_workers: int = 64,
        tracking: Tracking | None = None,
        analytics: SceneAnalytics | None = None,
        track_order: StreamOrder | None = None,
    ) -> None:
        self.models = models
        self.tracking = tracking
        self.analytics = analytics
        #: each stream's frames are tracked oldest first: a newer frame waits (bounded) for
        #: an older one still at the models; one that comes after a newer is left untracked
        self.track_order = track_order
        self.jpeg_quality = jpeg_quality
        self.request_quality = request_quality
        self._fps_out = fps_out
        self._annotator = FrameAnnotator()
        self._model_calls = ThreadPoolExecutor(
            max(1, max_workers * max(0, len(models) - 1)), thread_name_prefix="kva-model"
        )

    def run(
        self, frame: Frame, release: Callable[[], None], ref: FrameRef | None = None
    ) -> Annotated | Dropped:
        """All the work on one frame; ``release()`` as soon as the models are done with it.

        ``ref`` is where the frame was read in Kafka (the events name it).
        """
        image = self.decode(frame)
        if isinstance(image, Dropped):
            return image
        try:
            results = self.run_models(image)
        except EncodeError as exc:
            return Dropped("encode_error", f"{frame.stream_id}: {exc}")
        release()
        dropped = judge(frame, results)
        if dropped is not None:
            return dropped
        results, events = self.track_in_order(frame, results, ref)
        annotated = self.render(frame, image, results)
        if isinstance(annotated, Annotated):
            annotated.events.extend(events)
        return annotated

    def track_in_order(
        self, frame: Frame, results: list[ModelResult], ref: FrameRef | None
    ) -> tuple[list[ModelResult], list[Event]]:
        """:meth:`track_and_find_events`, in the stream's order (see ``track_order``)."""
        if self.tracking is None:
            return results, []
        track = functools.partial(self.track_and_find_events, frame, results, ref)
        if self.track_order is None:
            return track()
        tracked = self.track_order.publish(frame, track)
        self.track_order.resolve(frame)  # newer frames of the stream may be tracked now
        return tracked if tracked is not None else (results, [])

    def track_and_find_events(
        self, frame: Frame, results: list[ModelResult], ref: FrameRef | None
    ) -> tuple[list[ModelResult], list[Event]]:
        """``results`` with track ids, and the zone and line events of the frame."""
        results = self.track(frame, results)
        if self.analytics is None:
            return results, []
        info = FrameInfo(frame.stream_id, frame.sequence, frame.capture_ns, ref)
        return results, self.analytics.update(info, results)

    def track(self, frame: Frame, results: list[ModelResult]) -> list[ModelResult]:
        """``results`` with track ids on the tracked detectors' boxes."""
        tracking = self.tracking
        if tracking is None:
            return results
        capture_s = frame.capture_ns / 1e9
        tracked = []
        for result in results:
            detections = result.prediction
            if isinstance(detections, Detections) and tracking.tracks(result.model):
                detections = tracking.update(frame.stream_id, result.model, capture_s, detections)
                result = replace(result, prediction=detections)
            tracked.append(result)
        return tracked

    def decode(self, frame: Frame) -> np.ndarray | Dropped:
        """The frame as a BGR image, after its header was checked."""
        problem = jpeg_problem(frame.data)
        if problem is not None:
            return Dropped("decode_error", f"{frame.stream_id}: {problem}")
        image = decode_jpeg(frame.data)
        if image is None:
            return Dropped("decode_error", f"{frame.stream_id}: JPEG does not decode")
        return image

    def run_models(
        self, image: np.ndarray, models: Sequence[ModelRuntime] | None = None
    ) -> list[ModelResult]:
        """Every model's result on ``image`` (or those of ``models``), in model order
        (models run in parallel).

        Raises:
            EncodeError: a model input did not encode.
        """
        chosen = self.models if models is None else models
        resized: dict[tuple[int, int], np.ndarray] = {}
        payloads: dict[InputFormat, Payload] = {}
        for model in chosen:
            fmt = model.input
            if fmt in payloads:
                continue
            size = (fmt.width, fmt.height)
            if size not in resized:
                resized[size] = resize_for_model(image, size)
            payloads[fmt] = (
                to_tensor(resized[size], fmt)
                if fmt.tensor
                else encode_jpeg(resized[size], self.request_quality)
            )
        calls: list[Callable[[], ModelResult]] = [
            functools.partial(m.run, payloads[m.input]) for m in chosen
        ]
        if len(calls) <= 1:
            return [call() for call in calls]
        futures: list[Future[ModelResult]] = [self._model_calls.submit(c) for c in calls[1:]]
        first = calls[0]()
        return [first, *(f.result() for f in futures)]

    def render(
        self,
        frame: Frame,
        image: np.ndarray,
        results: list[ModelResult],
        footer: str | None = None,
    ) -> Annotated | Dropped:
        """Draw ``results`` and a footer on ``image`` and encode it as the output frame.

        The footer is the frame's age and the stream's fps unless ``footer`` is given.
        """
        if footer is None:
            footer = (
                f"{frame.stream_id} #{frame.sequence}  age {frame.age_seconds() * 1000:.0f} ms"
                f"  {self._fps_out(frame.stream_id):.1f} fps"
            )
        scene, counts = None, None
        if self.analytics is not None:
            scene = self.analytics.scene(frame.stream_id)
            counts = SceneCounts(*self.analytics.counts(frame.stream_id))
        self._annotator.annotate(image, results, footer, scene, counts)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            return Dropped("encode_error", f"{frame.stream_id}: JPEG encode failed")
        height, width = image.shape[:2]
        out = frame.replace(data=encoded.tobytes(), width=width, height=height, content_type=JPEG)
        return Annotated(out, results)

    def close(self) -> None:
        """Stop the model calls not started yet."""
        self._model_calls.shutdown(wait=False, cancel_futures=True)


def build_tracking(models: Sequence[ModelRuntime], settings: ConsumerSettings) -> Tracking | None:
    """The trackers of the detectors ``settings`` track (``--track-model``, else every
    detector), or None when tracking is off or nothing is tracked."""
    s = settings
    detectors = {m.name for m in models if m.info.kind == "detector"}
    tracked = (set(s.consume_track_models) or detectors) & detectors
    if not s.consume_track or s.consume_passthrough or not tracked:
        return None
    return Tracking(TrackerSettings(s.consume_track_window, s.consume_max_tracks), tracked)


def judge(frame: Frame, results: list[ModelResult]) -> Dropped | None:
    """Why the models' results do not make an output frame, or None when they do.

    A frame any model found busy is ``overload``; one every model failed on is
    ``model_error``. Unavailable models let the frame pass (marked).
    """
    if any(r.status == "busy" for r in results):
        return Dropped("overload", f"{frame.stream_id}: replicas busy")
    if any(r.status == "error" for r in results) and not any(r.status == "ok" for r in results):
        errors = "; ".join(r.error or "" for r in results if r.error)
        return Dropped("model_error", f"{frame.stream_id}: {errors}")
    return None


def build_output(
    source: Frame, out: Frame, results: list[ModelResult], now_ns: int, *, passthrough: bool
) -> tuple[Frame, str]:
    """The frame to publish (``out`` with the consumer's headers) and its predictions
    document (empty in passthrough), published at ``now_ns``."""
    text = "" if passthrough else predictions_document(source, results, now_ns)
    attributes = dict(out.attributes)
    attributes[CONSUMED_HEADER] = str(now_ns)
    if not passthrough:
        attributes[PREDICTIONS_HEADER] = text
    return out.replace(attributes=attributes), text


def predictions_document(source: Frame, results: list[ModelResult], now_ns: int) -> str:
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


def encode_jpeg(resized: np.ndarray, quality: int) -> bytes:
    """``resized`` (already the model input's size) as JPEG.

    Raises:
        EncodeError: OpenCV did not encode the image.
    """
    ok, encoded = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise EncodeError("JPEG encoding of the model input failed")
    return encoded.tobytes()
