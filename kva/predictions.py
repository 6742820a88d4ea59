"""The predictions wire format: what the models said about one frame, typed, both ways.

The consumer writes one :class:`FramePredictions` per annotated frame, as JSON, to the
metadata topic (keyed by stream) and into the frame's ``kva-predictions`` header; the
viewer, and anyone else, reads it back with :meth:`FramePredictions.from_json`. This
module is the one definition of that document, so a reader never guesses names::

    {"v": 1, "stream": "cam0", "seq": 42, "capture_ns": ..., "published_ns": ...,
     "age_ms": 12.5, "width": 1280, "height": 720,
     "models": [
       {"model": "mobilenet_v2", "status": "ok", "latency_ms": 8.1, "replica": "http://…",
        "kind": "classifier", "classes": [{"id": 285, "label": "Egyptian cat", "score": 0.7}]},
       {"model": "blazeface", "status": "ok", "latency_ms": 6.3, "replica": "http://…",
        "kind": "detector", "detections": [{"box": [x0, y0, x1, y1], "score": 0.9,
                                            "label": "face", "track": 7}]},
       {"model": "other", "status": "unavailable", "latency_ms": 0.0, "replica": null,
        "error": "no replica in rotation"}]}

Boxes are ``[x_min, y_min, x_max, y_max]`` normalised to 0..1. A model's ``status`` is
``ok``, ``unavailable`` (no replica up: the frame passes un-annotated for this model),
``busy`` (no replica slot freed in time) or ``error`` (the request failed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast, get_args

from kva.frame import is_valid_stream_id

#: The frame header that carries the document on an annotated frame.
PREDICTIONS_HEADER = "kva-predictions"
#: The frame header with the time (ns) the consumer published the annotated frame.
CONSUMED_HEADER = "kva-consumed-ns"
#: The version this module writes and reads (the document's ``v``).
SCHEMA_VERSION = 1

ModelStatus = Literal["ok", "unavailable", "busy", "error"]
ModelKind = Literal["classifier", "detector"]
ParseReason = Literal["empty", "oversized", "bad_json", "bad_stream", "bad_schema"]

_STATUSES: frozenset[str] = frozenset(get_args(ModelStatus))
#: Most models, classes, detections one document may carry (bounds a reader's work).
MAX_MODELS = 32
MAX_ITEMS = 1000
MAX_TEXT = 200
#: The track id of a box that no track has claimed (never on the wire).
NO_TRACK = -1
#: Largest track id a document may carry.
MAX_TRACK_ID = 2**53


class PredictionsError(ValueError):
    """A document that is not a valid predictions document; ``reason`` is a metrics label."""

    def __init__(self, reason: ParseReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: ParseReason = reason


@dataclass(frozen=True, slots=True)
class Classification:
    """Top-k classes of one image, best first."""

    class_ids: tuple[int, ...]
    labels: tuple[str, ...]
    scores: tuple[float, ...]

    kind: ClassVar[ModelKind] = "classifier"

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": [
                {"id": i, "label": label, "score": round(score, 5)}
                for i, label, score in zip(self.class_ids, self.labels, self.scores, strict=True)
            ]
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Classification:
        items = [_object(c, "class") for c in _list(document.get("classes"), "classes")]
        return cls(
            class_ids=tuple(_int(c.get("id"), "class id") for c in items),
            labels=tuple(_text(c.get("label"), "class label") for c in items),
            scores=tuple(_number(c.get("score"), "class score") for c in items),
        )


@dataclass(frozen=True, slots=True)
class Detections:
    """Boxes ``[x_min, y_min, x_max, y_max]`` normalised to 0..1, with scores.

    ``tracks`` is empty when the model is not tracked; otherwise it holds one track id
    per box (:data:`NO_TRACK` for a box no track has claimed yet). On the wire a tracked
    box carries ``"track": id``; documents without it still parse (no tracks).
    """

    boxes: tuple[tuple[float, float, float, float], ...]
    scores: tuple[float, ...]
    label: str | None = None  # the class name of a single-class detector (e.g. "face")
    tracks: tuple[int, ...] = ()

    kind: ClassVar[ModelKind] = "detector"

    def track_of(self, index: int) -> int:
        """The track id of box ``index``, or :data:`NO_TRACK`."""
        return self.tracks[index] if self.tracks else NO_TRACK

    def to_json(self) -> dict[str, Any]:
        named = {"label": self.label} if self.label else {}
        items = []
        for index, (box, score) in enumerate(zip(self.boxes, self.scores, strict=True)):
            item = {"box": [round(v, 5) for v in box], "score": round(score, 5), **named}
            track = self.track_of(index)
            if track != NO_TRACK:
                item["track"] = track
            items.append(item)
        return {"detections": items}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Detections:
        items = [_object(d, "detection") for d in _list(document.get("detections"), "detections")]
        labels = {_text(d["label"], "detection label") for d in items if "label" in d}
        if len(labels) > 1:
            raise PredictionsError("bad_schema", "a detector's boxes carry different labels")
        tracked = any("track" in d for d in items)
        return cls(
            boxes=tuple(_box(d.get("box")) for d in items),
            scores=tuple(_number(d.get("score"), "detection score") for d in items),
            label=labels.pop() if labels else None,
            tracks=tuple(_track(d.get("track")) for d in items) if tracked else (),
        )


Prediction = Classification | Detections
_KINDS: dict[str, type[Classification] | type[Detections]] = {
    "classifier": Classification,
    "detector": Detections,
}


@dataclass(frozen=True, slots=True)
class ModelResult:
    """The outcome of one model on one frame (see the module docstring for ``status``)."""

    model: str
    status: ModelStatus
    prediction: Prediction | None = None
    latency_s: float = 0.0
    replica: str | None = None
    error: str | None = None
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "model": self.model,
            "status": self.status,
            "latency_ms": round(self.latency_s * 1000, 2),
            "replica": self.replica,
        }
        if self.prediction is not None:
            document["kind"] = self.prediction.kind
            document.update(self.prediction.to_json())
        if self.error:
            document["error"] = self.error
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ModelResult:
        status = document.get("status")
        if not isinstance(status, str) or status not in _STATUSES:
            raise PredictionsError("bad_schema", f"model status {str(status)[:40]!r} is unknown")
        kind = document.get("kind")
        if kind is not None and (not isinstance(kind, str) or kind not in _KINDS):
            raise PredictionsError("bad_schema", f"model kind {str(kind)[:40]!r} is unknown")
        replica, error = document.get("replica"), document.get("error")
        return cls(
            model=_text(document.get("model"), "model name"),
            status=cast(ModelStatus, status),  # checked against the Literal above
            prediction=_KINDS[kind].from_json(document) if kind else None,
            latency_s=_number(document.get("latency_ms", 0.0), "latency") / 1000,
            replica=None if replica is None else _text(replica, "replica"),
            error=None if error is None else _text(error, "error"),
        )


@dataclass(frozen=True, slots=True)
class FramePredictions:
    """Every model's result for one frame of one stream: the document on the wire."""

    stream: str
    seq: int
    capture_ns: int
    published_ns: int
    width: int
    height: int
    models: tuple[ModelResult, ...]

    @property
    def age_ms(self) -> float:
        """Capture to publication, in milliseconds."""
        return round((self.published_ns - self.capture_ns) / 1e6, 2)

    def to_json(self) -> str:
        """The compact JSON text (as the header and the metadata topic carry it)."""
        document = {
            "v": SCHEMA_VERSION,
            "stream": self.stream,
            "seq": self.seq,
            "capture_ns": self.capture_ns,
            "published_ns": self.published_ns,
            "age_ms": self.age_ms,
            "width": self.width,
            "height": self.height,
            "models": [m.to_json() for m in self.models],
        }
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str | None, max_bytes: int) -> FramePredictions:
        """Parse and validate one document.

        Raises:
            PredictionsError: and nothing else, whatever ``raw`` holds.
        """
        document = _load(raw, max_bytes)
        stream = document.get("stream")
        if not isinstance(stream, str) or not is_valid_stream_id(stream):
            raise PredictionsError("bad_stream", f"stream id {str(stream)[:60]!r} is invalid")
        version = document.get("v", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise PredictionsError("bad_schema", f"version {str(version)[:20]!r} is not 1")
        models = _list(document.get("models"), "models", MAX_MODELS)
        return cls(
            stream=stream,
            seq=_int(document.get("seq"), "seq"),
            capture_ns=_int(document.get("capture_ns"), "capture_ns"),
            published_ns=_int(document.get("published_ns", 0), "published_ns"),
            width=_int(document.get("width", 0), "width"),
            height=_int(document.get("height", 0), "height"),
            models=tuple(ModelResult.from_json(_object(m, "model result")) for m in models),
        )


# -- validation helpers: each raises PredictionsError("bad_schema") with what was wrong ---------
def _load(raw: bytes | str | None, max_bytes: int) -> dict[str, Any]:
    if not raw:
        raise PredictionsError("empty", "the document is empty")
    if len(raw) > max_bytes:
        raise PredictionsError("oversized", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PredictionsError("bad_json", f"not JSON: {str(exc)[:100]}") from None
    if not isinstance(document, dict):
        raise PredictionsError("bad_json", f"expected a JSON object, got {type(document).__name__}")
    return document


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise PredictionsError("bad_schema", f"{what} is not an object")
    return value


def _list(value: Any, what: str, limit: int = MAX_ITEMS) -> list[Any]:
    if not isinstance(value, list):
        raise PredictionsError("bad_schema", f"{what} is not a list")
    if len(value) > limit:
        raise PredictionsError("bad_schema", f"{what} has {len(value)} entries (limit {limit})")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise PredictionsError("bad_schema", f"{what} is not an integer in 0..2^63")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PredictionsError("bad_schema", f"{what} is not a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise PredictionsError("bad_schema", f"{what} is not finite")
    return number


def _track(value: Any) -> int:
    if value is None:
        return NO_TRACK
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TRACK_ID:
        raise PredictionsError("bad_schema", f"a track id is not an integer in 0..{MAX_TRACK_ID}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise PredictionsError("bad_schema", f"{what} is not a string")
    return value[:MAX_TEXT]


def _box(value: Any) -> tuple[float, float, float, float]:
    if not isinstance(value, list) or len(value) != 4:
        raise PredictionsError("bad_schema", "a box is not [x_min, y_min, x_max, y_max]")
    x0, y0, x1, y1 = (_number(v, "box coordinate") for v in value)
    return (x0, y0, x1, y1)
