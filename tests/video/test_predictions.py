"""Prediction documents: parsing (every error a user can hit) and the summaries the page shows."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kva.video.predictions import MetadataError, header_predictions, parse_metadata, summarize
from tests.video.frames import make_frame


def test_parse_metadata() -> None:
    doc = {"stream": "cam0", "seq": 7, "capture_ns": 123, "models": {}}
    stream, predictions = parse_metadata(json.dumps(doc).encode(), 1000)
    assert stream == "cam0"
    assert (predictions.sequence, predictions.capture_ns, predictions.source) == (
        7,
        123,
        "metadata",
    )
    assert predictions.document == doc


@pytest.mark.parametrize(
    "value,reason,message",
    [
        (b"", "empty", "no payload"),
        (None, "empty", "no payload"),
        (b"{" + b" " * 2000 + b"}", "oversized", "> limit 1000"),
        (b"not json", "bad_json", "not JSON"),
        (b"\xff\xfe", "bad_json", "not JSON"),
        (b"[1, 2]", "bad_json", "expected a JSON object, got list"),
        (b'{"seq": 1}', "bad_stream", "missing or invalid"),
        (b'{"stream": "a b"}', "bad_stream", "'a b' missing or invalid"),
        (b'{"stream": 5}', "bad_stream", "missing or invalid"),
    ],
)
def test_bad_metadata(value, reason, message) -> None:
    with pytest.raises(MetadataError) as err:
        parse_metadata(value, 1000)
    assert err.value.reason == reason
    assert message in str(err.value)


def test_header_predictions() -> None:
    frame = make_frame("cam0", 4, b"x", 1, 1, {"kva-predictions": '{"models": {"m": {}}}'})
    predictions = header_predictions(frame)
    assert predictions is not None and predictions.source == "header" and predictions.sequence == 4
    assert header_predictions(make_frame("cam0", 4, b"x", 1, 1)) is None
    assert header_predictions(make_frame("c", 1, b"x", 1, 1, {"kva-predictions": "{"})) is None


@pytest.mark.parametrize(
    "document,expected",
    [
        (  # classifier: label/score objects
            {
                "models": {
                    "mobilenet_v2": {
                        "classes": [
                            {"label": "tabby", "score": 0.2},
                            {"label": "tiger cat", "score": 0.7},
                        ]
                    }
                }
            },
            [
                {
                    "model": "mobilenet_v2",
                    "kind": "classification",
                    "labels": [
                        {"label": "tiger cat", "score": 0.7},
                        {"label": "tabby", "score": 0.2},
                    ],
                }
            ],
        ),
        (  # classifier: parallel lists
            {"results": {"m": {"labels": ["espresso", "cup"], "scores": [0.9, 0.05]}}},
            [
                {
                    "model": "m",
                    "kind": "classification",
                    "labels": [
                        {"label": "espresso", "score": 0.9},
                        {"label": "cup", "score": 0.05},
                    ],
                }
            ],
        ),
        (  # detector: list of detections
            {
                "models": [
                    {
                        "model": "blazeface",
                        "detections": [
                            {"box": [0.1, 0.1, 0.3, 0.3], "score": 0.95, "label": "face"}
                        ],
                        "latency_ms": 4,
                    }
                ]
            },
            [
                {
                    "model": "blazeface",
                    "kind": "detection",
                    "count": 1,
                    "latency_ms": 4.0,
                    "labels": [{"label": "face", "score": 0.95}],
                }
            ],
        ),
        (  # detector: bare boxes with parallel scores
            {
                "models": {
                    "faces": {"boxes": [[0, 0, 1, 1], [0, 0, 0.5, 0.5]], "scores": [0.5, 0.8]}
                }
            },
            [
                {
                    "model": "faces",
                    "kind": "detection",
                    "count": 2,
                    "labels": [
                        {"label": "object", "score": 0.8},
                        {"label": "object", "score": 0.5},
                    ],
                }
            ],
        ),
        (  # a model that failed
            {"models": {"m": {"error": "model unavailable"}}},
            [{"model": "m", "kind": "error", "error": "model unavailable", "labels": []}],
        ),
        (  # no model map: top-level entries that look like results
            {"stream": "cam0", "seq": 1, "mobilenet": {"top": [{"name": "cat", "probability": 1}]}},
            [
                {
                    "model": "mobilenet",
                    "kind": "classification",
                    "labels": [{"label": "cat", "score": 1.0}],
                }
            ],
        ),
        (  # what kva consume publishes (metadata topic and kva-predictions header)
            {
                "stream": "cam0",
                "seq": 9,
                "capture_ns": 1,
                "published_ns": 2,
                "age_ms": 40.5,
                "width": 640,
                "height": 480,
                "models": [
                    {
                        "model": "mobilenet_v2",
                        "status": "ok",
                        "latency_ms": 8.1,
                        "replica": "r1",
                        "kind": "classifier",
                        "classes": [
                            {"id": 281, "label": "tabby", "score": 0.62},
                            {"id": 282, "label": "tiger cat", "score": 0.2},
                        ],
                    },
                    {
                        "model": "blazeface",
                        "status": "ok",
                        "latency_ms": 3.0,
                        "replica": "r2",
                        "kind": "detector",
                        "detections": [{"box": [0.1, 0.2, 0.3, 0.4], "score": 0.9}],
                    },
                    {"model": "slow", "status": "unavailable", "latency_ms": 0.0, "replica": None},
                ],
            },
            [
                {
                    "model": "mobilenet_v2",
                    "kind": "classification",
                    "latency_ms": 8.1,
                    "labels": [
                        {"label": "tabby", "score": 0.62},
                        {"label": "tiger cat", "score": 0.2},
                    ],
                },
                {
                    "model": "blazeface",
                    "kind": "detection",
                    "count": 1,
                    "latency_ms": 3.0,
                    "labels": [{"label": "object", "score": 0.9}],
                },
                {
                    "model": "slow",
                    "kind": "error",
                    "error": "model unavailable",
                    "labels": [],
                    "latency_ms": 0.0,
                },
            ],
        ),
        ({"stream": "cam0"}, []),
    ],
)
def test_summaries(document, expected) -> None:
    assert summarize(document) == expected


def test_summary_keeps_at_most_five_labels() -> None:
    labels = [{"label": str(i), "score": i / 10} for i in range(9)]
    (item,) = summarize({"models": {"m": {"classes": labels}}})
    assert [x["label"] for x in item["labels"]] == ["8", "7", "6", "5", "4"]


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400)])
    | st.floats()
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "models",
                    "results",
                    "predictions",
                    "classes",
                    "labels",
                    "scores",
                    "detections",
                    "boxes",
                    "label",
                    "score",
                    "model",
                    "error",
                    "status",
                    "latency_ms",
                    "top",
                    "name",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.text(max_size=10), _json, max_size=6)
    | st.fixed_dictionaries({"models": _json})
)
def test_summarize_never_fails_on_any_json(document) -> None:
    """A summary is built on every /api/streams request: no document may break it."""
    items = summarize(document)
    json.dumps(items, allow_nan=False)  # what browsers can parse
    for item in items:
        assert set(item) >= {"model", "kind", "labels"}
        assert len(item["labels"]) <= 5
