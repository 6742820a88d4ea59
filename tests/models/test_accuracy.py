"""The built models, run in-process with OpenVINO, on scikit-image's photos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.models.expectations import (
    ASTRONAUT_FACE_PX,
    CLASSIFICATION_CASES,
    MIN_IOU,
    NO_FACE_PHOTOS,
    check_classification,
    check_detector_row,
    check_top5,
    faces,
    iou,
    photo,
    stretch,
)


@pytest.mark.parametrize("name", sorted(CLASSIFICATION_CASES))
def test_mobilenet_top1(mobilenet: Any, imagenet_labels: list[str], name: str) -> None:
    result = mobilenet(stretch(photo(name), 224)[None])
    scores, classes = result["scores"][0], result["classes"][0]
    check_top5(scores, classes)
    check_classification(name, imagenet_labels, int(classes[0]))


def test_mobilenet_reference_scores(mobilenet: Any, imagenet_labels: list[str]) -> None:
    cat = mobilenet(stretch(photo("chelsea"), 224)[None])
    assert imagenet_labels[int(cat["classes"][0, 0])] == "Egyptian cat"
    assert 0.6 < float(cat["scores"][0, 0]) < 0.8
    coffee = mobilenet(stretch(photo("coffee"), 224)[None])
    assert float(coffee["scores"][0, 0]) > 0.95


def test_mobilenet_batches_like_single_images(mobilenet: Any) -> None:
    batch = np.stack([stretch(photo(n), 224) for n in ("chelsea", "coffee", "astronaut")])
    together = mobilenet(batch)
    for i, image in enumerate(batch):
        alone = mobilenet(image[None])
        np.testing.assert_array_equal(together["classes"][i], alone["classes"][0])
        np.testing.assert_allclose(together["scores"][i], alone["scores"][0], atol=1e-3)


def test_mobilenet_signature_and_labels(built_models: Path, mobilenet: Any) -> None:
    (image,) = mobilenet.inputs
    assert image.get_any_name() == "image" and image.get_element_type().get_type_name() == "u8"
    assert str(image.get_partial_shape()) == "[?,224,224,3]"
    outputs = {o.get_any_name(): o for o in mobilenet.outputs}
    assert set(outputs) == {"scores", "classes"}
    assert outputs["scores"].get_element_type().get_type_name() == "f32"
    assert outputs["classes"].get_element_type().get_type_name() == "i32"
    folder = built_models / "mobilenet_v2" / "1"
    labels = json.loads((folder / "labels.json").read_text())
    assert len(labels) == 1000
    assert (labels[281], labels[285], labels[967]) == ("tabby", "Egyptian cat", "espresso")
    sidecar = json.loads((folder / "kva-model.json").read_text())
    assert sidecar["task"] == "classification" and sidecar["labels"] == "labels.json"


def _detect(blazeface: Any, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    result = blazeface(stretch(image, 192)[None])
    boxes, scores = result["boxes"], result["scores"]
    assert boxes.shape == (1, 16, 4) and scores.shape == (1, 16)
    check_detector_row(boxes[0], scores[0])
    return boxes[0], scores[0]


def test_blazeface_finds_the_astronaut(blazeface: Any) -> None:
    image = photo("astronaut")
    boxes, scores = _detect(blazeface, image)
    found = faces(boxes, scores, image.shape[1], image.shape[0])
    assert len(found) == 1, found
    assert iou(found[0], ASTRONAUT_FACE_PX) >= MIN_IOU, found[0]


@pytest.mark.parametrize("name", NO_FACE_PHOTOS)
def test_blazeface_finds_no_face(blazeface: Any, name: str) -> None:
    image = photo(name)
    boxes, scores = _detect(blazeface, image)
    assert faces(boxes, scores, image.shape[1], image.shape[0]) == []


def test_blazeface_separates_several_faces(blazeface: Any) -> None:
    """Four astronauts in a 2x2 grid: NMS keeps one box per face, the rest is padding."""
    one = photo("astronaut")
    grid = np.concatenate([np.concatenate([one, one], 1)] * 2, 0)
    boxes, scores = _detect(blazeface, grid)
    found = (boxes[scores > 0] * 1024).tolist()
    x0, y0, x1, y1 = ASTRONAUT_FACE_PX
    truth = [(x0 + dx, y0 + dy, x1 + dx, y1 + dy) for dx in (0, 512) for dy in (0, 512)]
    matched = {max(range(4), key=lambda i, box=box: iou(box, truth[i])) for box in found}
    assert len(found) >= 3 and len(matched) == len(found), found
    assert all(max(iou(box, t) for t in truth) >= MIN_IOU for box in found), found


def test_blazeface_signature(built_models: Path, blazeface: Any) -> None:
    (image,) = blazeface.inputs
    assert image.get_any_name() == "image" and str(image.get_partial_shape()) == "[1,192,192,3]"
    assert image.get_element_type().get_type_name() == "u8"
    assert {o.get_any_name() for o in blazeface.outputs} == {"boxes", "scores"}
    sidecar = json.loads((built_models / "blazeface" / "1" / "kva-model.json").read_text())
    assert sidecar["task"] == "detection" and sidecar["labels"] == "labels.json"
    assert json.loads((built_models / "blazeface" / "1" / "labels.json").read_text()) == ["face"]


def test_half_plus_two(built_models: Path, ov_core: Any) -> None:
    model = ov_core.compile_model(str(built_models / "half_plus_two" / "123" / "model.xml"), "CPU")
    x = np.array([[1.0], [2.0], [5.0]], np.float32)
    np.testing.assert_allclose(model({"x": x})["y"], [[2.5], [3.0], [4.5]])
