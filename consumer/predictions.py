"""Model outputs -> the typed predictions of :mod:`kva.predictions` (validated)."""

from __future__ import annotations

import numpy as np

from kva.consumer.backend_api import ModelInfo, Outputs
from kva.consumer.errors import InferenceError
from kva.predictions import Classification, Detections


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
