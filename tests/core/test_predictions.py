"""The predictions wire format: what the consumer writes, every reader reads back unchanged,
and no document, however hostile, raises anything but PredictionsError."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kva.predictions import (
    Classification,
    Detections,
    FramePredictions,
    ModelResult,
    PredictionsError,
)

DOCUMENT = FramePredictions(
    stream="cam0",
    seq=42,
    capture_ns=1_000_000_000,
    published_ns=1_012_500_000,
    width=1280,
    height=720,
    models=(
        ModelResult(
            "mobilenet_v2",
            "ok",
            Classification((285, 281), ("Egyptian cat", "tabby"), (0.7, 0.2)),
            latency_s=0.0081,
            replica="http://127.0.0.1:8501/v2/models/mobilenet_v2",
        ),
        ModelResult("blazeface", "ok", Detections(((0.1, 0.2, 0.3, 0.4),), (0.9,), "face")),
        ModelResult("other", "unavailable", error="no replica in rotation"),
    ),
)


def test_round_trip() -> None:
    assert FramePredictions.from_json(DOCUMENT.to_json(), 10_000) == DOCUMENT


def test_the_wire_shape() -> None:
    sent = json.loads(DOCUMENT.to_json())
    assert sent["v"] == 1 and sent["age_ms"] == 12.5
    classifier, detector, other = sent["models"]
    assert classifier["kind"] == "classifier" and classifier["latency_ms"] == 8.1
    assert classifier["classes"][0] == {"id": 285, "label": "Egyptian cat", "score": 0.7}
    assert detector["detections"] == [{"box": [0.1, 0.2, 0.3, 0.4], "score": 0.9, "label": "face"}]
    assert "kind" not in other and other["error"] == "no replica in rotation"


def test_a_detector_whose_boxes_disagree_on_their_label_is_refused() -> None:
    sent = json.loads(DOCUMENT.to_json())
    sent["models"][1]["detections"] *= 2
    sent["models"][1]["detections"][1] = {"box": [0, 0, 1, 1], "score": 0.5, "label": "cat"}
    with pytest.raises(PredictionsError, match="different labels"):
        FramePredictions.from_json(json.dumps(sent), 10_000)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), 2**63])
    | st.floats()
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                ["models", "classes", "detections", "box", "label", "score", "model", "kind"]
                + ["status", "latency_ms", "error", "replica", "id", "stream", "seq", "v"]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=40,
)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.fixed_dictionaries(
        {"stream": st.just("cam0"), "seq": st.just(1), "capture_ns": st.just(1)}
    ).flatmap(
        lambda base: st.dictionaries(st.text(max_size=10), _json, max_size=4).map(base.__or__)
    )
    | st.fixed_dictionaries(
        {"stream": st.just("cam0"), "seq": st.just(1), "capture_ns": st.just(1), "models": _json}
    )
)
def test_no_document_raises_anything_but_predictions_error(document) -> None:
    raw = json.dumps(document)
    try:
        parsed = FramePredictions.from_json(raw, len(raw) + 1)
    except PredictionsError as exc:
        assert exc.reason in ("bad_schema", "bad_json", "bad_stream")
    else:  # what was accepted is typed all the way down and writes back as valid JSON
        json.loads(parsed.to_json())
