"""Prediction documents for the page: read with the one schema (:mod:`kva.predictions`),
from the metadata topic or a frame's header, and boiled down to what the page shows
(model, top labels with scores, detection counts, errors).
"""

from __future__ import annotations

from typing import Any

from kva.frame import Frame
from kva.predictions import (
    PREDICTIONS_HEADER,
    Classification,
    Detections,
    FramePredictions,
    ModelResult,
    PredictionsError,
)
from kva.video.store import Predictions

__all__ = ["PredictionsError", "header_predictions", "parse_metadata", "summarize"]

#: Labels shown per model.
MAX_LABELS = 5
#: Largest ``kva-predictions`` header read (a frame's headers are bounded by Kafka too).
MAX_HEADER_BYTES = 1 << 20


def parse_metadata(value: bytes | None, max_bytes: int) -> tuple[str, Predictions]:
    """A metadata-topic message -> (stream id, predictions).

    Raises:
        PredictionsError: empty, oversized, not JSON, or not a predictions document.
    """
    document = FramePredictions.from_json(value, max_bytes)
    return document.stream, Predictions(document.seq, document.capture_ns, document, "metadata")


def header_predictions(frame: Frame, max_bytes: int = MAX_HEADER_BYTES) -> Predictions | None:
    """The ``kva-predictions`` header of an annotated frame, or None without one.

    Raises:
        PredictionsError: the header is not a valid predictions document.
    """
    raw = frame.attributes.get(PREDICTIONS_HEADER)
    if raw is None:
        return None
    document = FramePredictions.from_json(raw, max_bytes)
    return Predictions(frame.sequence, frame.capture_ns, document, "header")


def summarize(document: FramePredictions) -> list[dict[str, Any]]:
    """Per-model display items: ``{"model", "kind", "labels": [{"label", "score"}], ...}``."""
    return [_summarize_model(result) for result in document.models]


def _summarize_model(result: ModelResult) -> dict[str, Any]:
    item: dict[str, Any] = {
        "model": result.model,
        "kind": "other",
        "labels": [],
        "latency_ms": round(result.latency_s * 1000, 4),
    }
    if result.status != "ok":
        item.update(kind="error", error=result.error or f"model {result.status}")
    prediction = result.prediction
    if isinstance(prediction, Detections):
        name = prediction.label or "object"
        labelled = [(name, score) for score in prediction.scores]
        item.update(kind="detection", count=len(prediction.boxes), labels=_best(labelled))
    elif isinstance(prediction, Classification):
        labelled = list(zip(prediction.labels, prediction.scores, strict=True))
        item.update(kind="classification", labels=_best(labelled))
    return item


def _best(labelled: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """The best :data:`MAX_LABELS` as ``[{"label", "score"}]``, best first."""
    ranked = sorted(labelled, key=lambda pair: -pair[1])[:MAX_LABELS]
    return [{"label": label[:80], "score": round(score, 4)} for label, score in ranked]
