"""Prediction documents: parse them from the metadata topic or a frame header, and
boil them down to what the page shows (model, top labels with scores, detection counts).

The consumer publishes one JSON object per frame (stream, sequence, capture time
and per-model results). The viewer is lenient about the exact shape of the
per-model results, so it keeps working while that format evolves: it looks for
the usual names (``labels``/``classes``/``top`` for classifiers,
``detections``/``boxes`` for detectors) and shows anything else as plain text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from kva.frame import Frame, is_valid_stream_id
from kva.video.store import Predictions

PREDICTIONS_HEADER = "kva-predictions"
MAX_LABELS = 5
_ENVELOPE_KEYS = frozenset(
    {"stream", "stream_id", "seq", "sequence", "capture_ns", "capture_time_ns", "version"}
)
_MODEL_MAP_KEYS = ("models", "results", "predictions")
_CLASS_KEYS = ("top", "classes", "labels", "classifications", "predictions")
_DETECTION_KEYS = ("detections", "objects", "boxes")
_LABEL_NAMES = ("label", "name", "class_name", "class", "category")
_SCORE_NAMES = ("score", "probability", "confidence", "prob")


class MetadataError(ValueError):
    """A metadata message the viewer cannot use; ``reason`` is a metrics label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def parse_metadata(value: bytes | None, max_bytes: int) -> tuple[str, Predictions]:
    """A metadata-topic message -> (stream id, predictions).

    Raises:
        MetadataError: empty, oversized, not JSON, not an object, or a bad stream id.
    """
    if not value:
        raise MetadataError("empty", "metadata message has no payload")
    if len(value) > max_bytes:
        raise MetadataError("oversized", f"{len(value)} bytes > limit {max_bytes}")
    document = _load_object(value)
    stream_id = document.get("stream", document.get("stream_id"))
    if not isinstance(stream_id, str) or not is_valid_stream_id(stream_id):
        raise MetadataError("bad_stream", f"stream id {str(stream_id)[:60]!r} missing or invalid")
    sequence = _int_field(document, ("seq", "sequence"))
    capture_ns = _int_field(document, ("capture_ns", "capture_time_ns"))
    return stream_id, Predictions(sequence, capture_ns, document, "metadata")


def header_predictions(frame: Frame) -> Predictions | None:
    """The ``kva-predictions`` header of an annotated frame, if present and valid JSON."""
    raw = frame.attributes.get(PREDICTIONS_HEADER)
    if raw is None:
        return None
    try:
        document = _load_object(raw.encode("utf-8"))
    except MetadataError:
        return None
    return Predictions(frame.sequence, frame.capture_ns, document, "header")


def _load_object(value: bytes) -> dict[str, Any]:
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MetadataError("bad_json", f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MetadataError("bad_json", f"expected a JSON object, got {type(document).__name__}")
    return document


def _int_field(document: Mapping[str, Any], names: Iterable[str]) -> int:
    for name in names:
        value = document.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
            return value
    return 0


def summarize(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per-model display items: ``{"model", "kind", "labels": [{"label", "score"}], ...}``."""
    items = []
    for name, result in _model_results(document):
        items.append(_summarize_model(name, result))
    return items


def _model_results(document: Mapping[str, Any]) -> list[tuple[str, Any]]:
    for key in _MODEL_MAP_KEYS:
        models = document.get(key)
        if isinstance(models, Mapping):
            return [(str(k), v) for k, v in models.items()]
        if isinstance(models, list) and all(isinstance(m, Mapping) for m in models):
            return [
                (str(m.get("model", m.get("name", f"model{i}"))), m) for i, m in enumerate(models)
            ]
    rest = {k: v for k, v in document.items() if k not in _ENVELOPE_KEYS}
    return [(str(k), v) for k, v in rest.items() if isinstance(v, Mapping | list)]


def _summarize_model(name: str, result: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"model": name, "kind": "other", "labels": []}
    if isinstance(result, list):
        result = {"predictions": result}
    if not isinstance(result, Mapping):
        item["text"] = str(result)[:200]
        return item
    status = result.get("status", "ok")
    if result.get("error") or status not in ("ok", None):
        item["kind"] = "error"
        item["error"] = str(result.get("error") or f"model {status}")[:200]
    latency = _score(result.get("latency_ms", result.get("latency")))
    if latency is not None:
        item["latency_ms"] = latency
    for key in _DETECTION_KEYS:
        if isinstance(result.get(key), list):
            detections = _labelled(result[key], result.get("scores"), result.get("labels"))
            item.update(kind="detection", count=len(result[key]), labels=detections)
            return item
    for key in _CLASS_KEYS:
        if isinstance(result.get(key), list):
            item.update(kind="classification", labels=_labelled(result[key], result.get("scores")))
            return item
    return item


def _labelled(values: list[Any], scores: Any = None, labels: Any = None) -> list[dict[str, Any]]:
    """[{"label", "score"}] from dicts, or from parallel label/score lists, best first."""
    out: list[dict[str, Any]] = []
    score_list = scores if isinstance(scores, list) else []
    label_list = labels if isinstance(labels, list) else []
    for i, value in enumerate(values):
        if isinstance(value, Mapping):
            label = next((value[n] for n in _LABEL_NAMES if n in value), None)
            score = next((value[n] for n in _SCORE_NAMES if n in value), None)
        else:
            label, score = value, None
        if isinstance(label, list) or label is None:  # a bare box: name it by its label list
            label = label_list[i] if i < len(label_list) else "object"
        if score is None and i < len(score_list):
            score = score_list[i]
        out.append({"label": str(label)[:80], "score": _score(score)})
    out.sort(key=lambda d: 1.0 if d["score"] is None else -d["score"])
    return out[:MAX_LABELS]


def _score(value: Any) -> float | None:
    """A finite number rounded for display, else None (JSON for browsers has no NaN/inf)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            return None
        return round(number, 4) if math.isfinite(number) else None
    return None
