"""Consumer building blocks without a broker: settings, labels, outputs, annotation."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from kva.cliargs import SettingsError, settings_from_args
from kva.consumer.annotate import FrameAnnotator, Style
from kva.consumer.backend_api import ModelInfo, model_kind
from kva.consumer.config import ConsumerSettings
from kva.consumer.errors import InferenceError, MetadataError
from kva.consumer.labels import LabelsError, load_labels, parse_labels
from kva.consumer.predictions import to_prediction
from kva.predictions import Classification, Detections, ModelResult

URL = "http://127.0.0.1:8501/v1/models/m"


def test_settings_from_environment(monkeypatch) -> None:
    monkeypatch.setenv(
        "KVA_CONSUME_MODEL", f"m={URL},http://h:1/v2/models/m n=http://h:2/v2/models/n"
    )
    monkeypatch.setenv("KVA_CONSUME_MAX_FRAME_AGE", "1.5")
    monkeypatch.setenv("KVA_CONSUME_LABELS", "m=/tmp/labels.json")
    settings = ConsumerSettings()
    specs = settings.model_specs()
    assert [s.name for s in specs] == ["m", "n"]
    assert specs[0].urls == (URL, "http://h:1/v2/models/m")
    assert settings.consume_max_frame_age == 1.5
    assert settings.label_sources() == {"m": "/tmp/labels.json"}
    assert settings.consume_input_topic == "frames"


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (["m"], "is not NAME=URL"),
        (["m=ftp://h/v1/models/m"], "must start with http"),
        (["m=http://h:1/v3/models/m"], "must end in /v1/models/<model>"),
        (["m=http://h:1/v1/models/m/versions/x"], "versions/<positive integer>"),
        ([f"m={URL},{URL}"], "same replica URL twice"),
        ([f"m={URL}", f"m={URL}x"], "given twice"),
    ],
)
def test_bad_model_flags_are_clear(models, message) -> None:
    import argparse

    args = argparse.Namespace(consume_models=models)
    with pytest.raises(SettingsError) as info:
        settings_from_args(ConsumerSettings, args)
    assert message in str(info.value)


def test_models_or_passthrough_required() -> None:
    with pytest.raises(ValueError, match="at least one --model"):
        ConsumerSettings()
    assert ConsumerSettings(consume_passthrough=True).model_specs() == []


def test_labels_for_unknown_model_rejected() -> None:
    with pytest.raises(ValueError, match="which no --model defines"):
        ConsumerSettings(consume_models=[f"m={URL}"], consume_labels=["x=/tmp/l.txt"])


def test_labels_forms(tmp_path) -> None:
    assert parse_labels('["cat", "dog"]') == ["cat", "dog"]
    assert parse_labels('{"0": "cat", "2": "dog"}') == ["cat", "1", "dog"]
    assert parse_labels("cat\ndog\n") == ["cat", "dog"]
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"281": "tabby, tabby cat"}))
    assert load_labels(str(path))[281] == "tabby, tabby cat"
    with pytest.raises(LabelsError, match="cannot read labels"):
        load_labels(str(tmp_path / "missing.json"))
    with pytest.raises(LabelsError, match="not valid JSON"):
        parse_labels("[1, 2")
    with pytest.raises(LabelsError, match="class ids"):
        parse_labels('{"x": "cat"}')


def test_model_kind_from_output_names() -> None:
    assert model_kind({"scores", "classes"}) == "classifier"
    assert model_kind({"boxes", "scores"}) == "detector"
    with pytest.raises(MetadataError, match="neither a classifier"):
        model_kind({"y"})


CLASSIFIER = ModelInfo("mobilenet_v2", "classifier", "image", 224, 224, ("scores", "classes"))
DETECTOR = ModelInfo("blazeface", "detector", "image", 128, 128, ("boxes", "scores"))


def test_classifier_outputs_to_top_k() -> None:
    outputs = {"scores": np.array([0.1, 0.7, 0.2]), "classes": np.array([5, 285, 281])}
    prediction = to_prediction(
        CLASSIFIER, outputs, ["x"] * 281 + ["tabby"] + ["y"] * 3 + ["Egyptian cat"], 2, 0.5
    )
    assert isinstance(prediction, Classification)
    assert prediction.labels == ("Egyptian cat", "tabby")
    assert prediction.class_ids == (285, 281)
    no_labels = to_prediction(CLASSIFIER, outputs, None, 1, 0.5)
    assert no_labels.labels == ("285",)  # type: ignore[union-attr]


def test_detector_outputs_filtered_and_clipped() -> None:
    outputs = {
        "boxes": np.array([[0.1, 0.2, 0.3, 1.2], [0, 0, 0, 0]]),
        "scores": np.array([0.9, 0.0]),
    }
    prediction = to_prediction(DETECTOR, outputs, None, 3, 0.5)
    assert isinstance(prediction, Detections)
    assert prediction.boxes == ((0.1, 0.2, 0.3, 1.0),)


@pytest.mark.parametrize(
    ("info", "outputs"),
    [
        (CLASSIFIER, {"scores": np.array([0.1, 0.2]), "classes": np.array([1])}),
        (CLASSIFIER, {"scores": np.array([np.nan]), "classes": np.array([1])}),
        (CLASSIFIER, {"scores": np.array([0.1])}),
        (DETECTOR, {"boxes": np.array([0.1, 0.2]), "scores": np.array([0.9])}),
        (DETECTOR, {"boxes": np.zeros((2, 4)), "scores": np.array([0.9])}),
    ],
)
def test_badly_shaped_outputs_are_typed_errors(info, outputs) -> None:
    with pytest.raises(InferenceError) as error:
        to_prediction(info, outputs, None, 3, 0.5)
    assert error.value.reason == "bad_response" and error.value.retriable


@pytest.mark.parametrize(("width", "height"), [(640, 360), (1280, 720), (3840, 2160)])
def test_annotation_scales_with_the_frame(width, height) -> None:
    image = np.full((height, width, 3), 128, np.uint8)
    results = [
        ModelResult("mobilenet_v2", "ok", Classification((285,), ("Egyptian cat",), (0.7,))),
        ModelResult("blazeface", "ok", Detections(((0.5, 0.5, 0.7, 0.8),), (0.9,))),
        ModelResult("other", "unavailable"),
    ]
    FrameAnnotator().annotate(image, results, "cam0 #1  age 10 ms  30.0 fps")
    changed = np.abs(image.astype(int) - 128).max(axis=2) > 30
    style = Style.for_height(height)
    # the panel (top left), the box edge and the footer (bottom left) are drawn
    assert changed[: height // 4, : width // 4].mean() > 0.05
    x = round(0.5 * (width - 1))
    assert changed[round(0.6 * height) : round(0.7 * height), x].all()
    assert changed[height - 3 * style.line : height, : width // 8].mean() > 0.1
    # and the middle right stays untouched
    assert not changed[height // 3 : height // 2, round(0.8 * width) :].any()
    # the red "model unavailable" mark is there: strongly red pixels
    red = (image[..., 2] > 200) & (image[..., 0] < 80) & (image[..., 1] < 80)
    assert red.sum() > 100
    # text height grows with the frame
    ok, _ = cv2.imencode(".jpg", image)
    assert ok


def test_text_grows_with_resolution() -> None:
    assert Style.for_height(2160).line > 2 * Style.for_height(720).line
    assert Style.for_height(360).scale >= 0.45
