"""The viewer reads prediction documents with the one schema: every error a user can hit,
and the summaries the page shows."""

from __future__ import annotations

import json

import pytest

from kva.predictions import (
    Classification,
    Detections,
    FramePredictions,
    ModelResult,
    PredictionsError,
)
from kva.video.predictions import header_predictions, parse_metadata, summarize
from tests.support.frames import make_frame


def document(*models: ModelResult, stream: str = "cam0", seq: int = 7) -> FramePredictions:
    return FramePredictions(stream, seq, 123, 456, 640, 480, models)


def test_parse_metadata() -> None:
    sent = document(ModelResult("m", "ok", Classification((1,), ("one",), (0.5,))))
    stream, predictions = parse_metadata(sent.to_json().encode(), 1000)
    assert stream == "cam0"
    assert (predictions.sequence, predictions.capture_ns, predictions.source) == (
        7,
        123,
        "metadata",
    )
    assert predictions.document == sent


@pytest.mark.parametrize(
    "value,reason,message",
    [
        (b"", "empty", "empty"),
        (None, "empty", "empty"),
        (b"{" + b" " * 2000 + b"}", "oversized", "> limit 1000"),
        (b"not json", "bad_json", "not JSON"),
        (b"\xff\xfe", "bad_json", "not JSON"),
        (b"[" * 600 + b"]" * 600, "oversized", "limit"),
        (b"[1, 2]", "bad_json", "expected a JSON object, got list"),
        (b'{"seq": 1}', "bad_stream", "is invalid"),
        (b'{"stream": "a b"}', "bad_stream", "'a b' is invalid"),
        (b'{"stream": 5}', "bad_stream", "is invalid"),
        (b'{"stream": "cam0", "seq": 1, "capture_ns": 1}', "bad_schema", "models is not a list"),
        (b'{"stream": "cam0", "seq": -1, "capture_ns": 1, "models": []}', "bad_schema", "seq"),
        (
            b'{"v": 2, "stream": "cam0", "seq": 1, "capture_ns": 1, "models": []}',
            "bad_schema",
            "version",
        ),
        (
            b'{"stream": "cam0", "seq": 1, "capture_ns": 1, "models": [{"model": "m", "status": "meh"}]}',
            "bad_schema",
            "status 'meh' is unknown",
        ),
    ],
)
def test_bad_metadata(value, reason, message) -> None:
    with pytest.raises(PredictionsError) as err:
        parse_metadata(value, 1000)
    assert err.value.reason == reason
    assert message in str(err.value)


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    value = b'{"stream":"cam0","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(PredictionsError) as err:
        parse_metadata(value, len(value))
    assert err.value.reason == "bad_json"


def test_header_predictions() -> None:
    text = document(seq=4).to_json()
    frame = make_frame("cam0", 4, b"x", 1, 1, {"kva-predictions": text})
    predictions = header_predictions(frame)
    assert predictions is not None and predictions.source == "header" and predictions.sequence == 4
    assert header_predictions(make_frame("cam0", 4, b"x", 1, 1)) is None
    with pytest.raises(PredictionsError, match="bad_json"):
        header_predictions(make_frame("c", 1, b"x", 1, 1, {"kva-predictions": "{"}))
    with pytest.raises(PredictionsError, match="oversized"):
        header_predictions(frame, max_bytes=10)
    deep = '{"stream":"cam0","x":' + "[" * 100_000 + "]" * 100_000 + "}"  # issue 15, defect 2
    with pytest.raises(PredictionsError, match="bad_json"):
        header_predictions(make_frame("c", 1, b"x", 1, 1, {"kva-predictions": deep}))


def test_what_kva_consume_publishes_is_summarized() -> None:
    sent = document(
        ModelResult(
            "mobilenet_v2",
            "ok",
            Classification((281, 282), ("tabby", "tiger cat"), (0.62, 0.2)),
            latency_s=0.0081,
            replica="r1",
        ),
        ModelResult(
            "blazeface", "ok", Detections(((0.1, 0.2, 0.3, 0.4),), (0.9,), "face"), 0.003, "r2"
        ),
        ModelResult("boxes", "ok", Detections(((0, 0, 1, 1), (0, 0, 0.5, 0.5)), (0.5, 0.8))),
        ModelResult("slow", "unavailable", error="no replica in rotation"),
        ModelResult("busy", "busy"),
    )
    _, predictions = parse_metadata(sent.to_json().encode(), 10_000)
    assert summarize(predictions.document) == [
        {
            "model": "mobilenet_v2",
            "kind": "classification",
            "latency_ms": 8.1,
            "labels": [{"label": "tabby", "score": 0.62}, {"label": "tiger cat", "score": 0.2}],
        },
        {  # the detector's own label (BlazeFace ships labels.json ["face"])
            "model": "blazeface",
            "kind": "detection",
            "count": 1,
            "latency_ms": 3.0,
            "labels": [{"label": "face", "score": 0.9}],
        },
        {
            "model": "boxes",
            "kind": "detection",
            "count": 2,
            "latency_ms": 0.0,
            "labels": [{"label": "object", "score": 0.8}, {"label": "object", "score": 0.5}],
        },
        {
            "model": "slow",
            "kind": "error",
            "error": "no replica in rotation",
            "labels": [],
            "latency_ms": 0.0,
        },
        {"model": "busy", "kind": "error", "error": "model busy", "labels": [], "latency_ms": 0.0},
    ]


def test_summary_keeps_at_most_five_labels() -> None:
    ids = tuple(range(9))
    result = ModelResult(
        "m", "ok", Classification(ids, tuple(map(str, ids)), tuple(i / 10 for i in ids))
    )
    (item,) = summarize(document(result))
    assert [x["label"] for x in item["labels"]] == ["8", "7", "6", "5", "4"]
    json.dumps(item, allow_nan=False)  # what browsers can parse
