"""Domain values for what models say about a frame, and their JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from kva.consumer.backend_api import ModelInfo, Outputs
from kva.consumer.errors import InferenceError

#: The outcome of one model on one frame (see :class:`ModelResult`).
ModelStatus = Literal["ok", "unavailable", "busy", "error"]


@dataclass(frozen=True, slots=True)
class Classification:
    """Top-k classes of one image, best first."""

    class_ids: tuple[int, ...]
    labels: tuple[str, ...]
    scores: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": [
                {"id": i, "label": label, "score": round(score, 5)}
                for i, label, score in zip(self.class_ids, self.labels, self.scores, strict=True)
            ]
        }


@dataclass(frozen=True, slots=True)
class Detections:
    """Boxes ``[x_min, y_min, x_max, y_max]`` normalised to 0..1, with scores."""

    boxes: tuple[tuple[float, float, float, float], ...]
    scores: tuple[float, ...]
    label: str | None = None  # the class name of a single-class detector (e.g. "face")

    def to_json(self) -> dict[str, Any]:
        named = {"label": self.label} if self.label else {}
        return {
            "detections": [
                {"box": [round(v, 5) for v in box], "score": round(score, 5), **named}
                for box, score in zip(self.boxes, self.scores, strict=True)
            ]
        }


@dataclass(frozen=True, slots=True)
class ModelResult:
    """The outcome of one model on one frame.

    ``status`` is ``ok``, ``unavailable`` (no replica up: the frame passes
    un-annotated for this model), ``busy`` (no replica slot freed in time: the
    frame is dropped as ``overload``) or ``error`` (the request failed).
    """

    model: str
    status: ModelStatus
    prediction: Classification | Detections | None = None
    latency_s: float = 0.0
    replica: str | None = None
    error: str | None = None
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "model": self.model,
            "status": self.status,
            "latency_ms": round(self.latency_s * 1000, 2),
            "replica": self.replica,
        }
        if self.prediction is not None:
            document["kind"] = (
                "classifier" if isinstance(self.prediction, Classification) else "detector"
            )
            document.update(self.prediction.to_json())
        if self.error:
            document["error"] = self.error
        return document


def label_for(class_id: int, labels: list[str] | None) -> str:
    """Class name, or the numeric id when there are no labels for it."""
    if labels is not None and 0 <= class_id < len(labels):
        return labels[class_id]
    return str(class_id)


def to_prediction(
    info: ModelInfo,
    outputs: Outputs,
    labels: list[str] | None,
    top_k: int,
    min_score: float,
) -> Classification | Detections:
    """Model outputs (batch dimension removed) -> a domain value, validated.

    Raises:
        InferenceError: shapes or values do not fit the model kind (``bad_response``).
    """
    try:
        if info.kind == "classifier":
            return _classification(outputs, labels, top_k)
        return _detections(outputs, min_score, labels[0] if labels and len(labels) == 1 else None)
    except (KeyError, ValueError, TypeError) as exc:
        raise InferenceError(
            "bad_response", f"{info.name}: outputs do not fit a {info.kind}: {exc}", retriable=True
        ) from exc


def _classification(outputs: Outputs, labels: list[str] | None, top_k: int) -> Classification:
    scores = np.asarray(outputs["scores"], dtype=np.float64).reshape(-1)
    classes = np.asarray(outputs["classes"]).reshape(-1)
    if scores.shape != classes.shape or scores.size == 0:
        raise ValueError(f"scores {scores.shape} and classes {classes.shape} differ or are empty")
    if not np.all(np.isfinite(scores)):
        raise ValueError("non-finite scores")
    order = np.argsort(-scores, kind="stable")[:top_k]
    ids = tuple(int(classes[i]) for i in order)
    return Classification(
        class_ids=ids,
        labels=tuple(label_for(i, labels) for i in ids),
        scores=tuple(float(scores[i]) for i in order),
    )


def _detections(outputs: Outputs, min_score: float, label: str | None = None) -> Detections:
    boxes = np.asarray(outputs["boxes"], dtype=np.float64)
    scores = np.asarray(outputs["scores"], dtype=np.float64).reshape(-1)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.shape[0] != scores.size:
        raise ValueError(f"boxes {boxes.shape} do not match scores {scores.shape}")
    if not (np.all(np.isfinite(boxes)) and np.all(np.isfinite(scores))):
        raise ValueError("non-finite boxes or scores")
    keep = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= min_score]
    clipped = np.clip(boxes, 0.0, 1.0)
    return Detections(
        boxes=tuple((float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in clipped[keep]),
        scores=tuple(float(scores[i]) for i in keep),
        label=label,
    )
