"""The built models, run in-process with OpenVINO, on scikit-image's photos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kva.tfserving.modelbuild import person as person_module
from kva.tfserving.modelbuild.sources import PERSON_SSDLITE
from tests.models.expectations import (
    ASTRONAUT_FACE_PX,
    ASTRONAUT_PERSON_PX,
    CLASSIFICATION_CASES,
    MIN_IOU,
    NO_FACE_PHOTOS,
    NO_PERSON_PHOTOS,
    PERSON_MIN_IOU,
    PERSON_SCORE,
    check_classification,
    check_detector_row,
    check_top5,
    detected,
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


def _people(person: Any, image: np.ndarray) -> list[tuple[list[float], float]]:
    """(pixel box, score) of everyone the served person model finds on ``image``."""
    result = person(stretch(image, 300)[None])
    boxes, scores = result["boxes"], result["scores"]
    assert boxes.shape == (1, 32, 4) and scores.shape == (1, 32)
    check_detector_row(boxes[0], scores[0])
    threshold = person_module.SCORE_THRESHOLD
    assert np.all((scores[0] == 0) | (scores[0] >= threshold)), scores
    return detected(boxes[0], scores[0], image.shape[1], image.shape[0], threshold)


def test_person_finds_the_astronaut(person: Any) -> None:
    (found,) = _people(person, photo("astronaut"))
    box, score = found
    assert score >= PERSON_SCORE, found
    assert iou(box, ASTRONAUT_PERSON_PX) >= PERSON_MIN_IOU, found


@pytest.mark.parametrize("name", NO_PERSON_PHOTOS)
def test_person_finds_nobody(person: Any, name: str) -> None:
    assert _people(person, photo(name)) == []


def test_person_signature(built_models: Path, person: Any) -> None:
    (image,) = person.inputs
    assert image.get_any_name() == "image" and str(image.get_partial_shape()) == "[1,300,300,3]"
    assert image.get_element_type().get_type_name() == "u8"
    outputs = {o.get_any_name(): o for o in person.outputs}
    assert set(outputs) == {"boxes", "scores"}
    assert all(o.get_element_type().get_type_name() == "f32" for o in outputs.values())
    folder = built_models / "person" / "1"
    sidecar = json.loads((folder / "kva-model.json").read_text())
    assert sidecar["task"] == "detection" and sidecar["labels"] == "labels.json"
    assert sidecar["source"]["sha256"] == PERSON_SSDLITE.sha256
    assert json.loads((folder / "labels.json").read_text()) == ["person"]


def _vtest_frames(path: Path, indexes: tuple[int, ...]) -> list[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    try:
        for index in range(max(indexes) + 1):
            ok, image = capture.read()
            assert ok, index
            if index in indexes:
                frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    return frames


@pytest.mark.slow
def test_person_returns_what_the_ssd_graph_it_wraps_finds(
    person: Any, ov_core: Any, demo_video: Path
) -> None:
    """The served outputs are the original graph's, reordered: on four astronauts and on three
    frames of vtest.avi, every person box ``(y0, x0, y1, x1)`` with its score, in order."""
    import openvino as ov

    graph = ov.convert_model(str(PERSON_SSDLITE.locate()), input=[1, 300, 300, 3])
    original = ov_core.compile_model(graph, "CPU")
    one = photo("astronaut")
    images = [np.concatenate([np.concatenate([one, one], 1)] * 2, 0)]
    images += _vtest_frames(demo_video, (0, 300, 600))
    most = 0
    for image in images:
        x = stretch(image, 300)[None]
        raw = {
            name.removesuffix(":0"): value
            for output, value in original(x).items()
            for name in output.get_names()
        }
        keep = (raw["detection_classes"][0] == 1) & (
            raw["detection_scores"][0] >= person_module.SCORE_THRESHOLD
        )
        order = np.argsort(-raw["detection_scores"][0][keep], kind="stable")
        boxes = np.clip(raw["detection_boxes"][0][keep][order], 0, 1)[:, [1, 0, 3, 2]]
        scores = raw["detection_scores"][0][keep][order]
        served = person(x)
        n = len(scores)
        np.testing.assert_allclose(served["scores"][0][:n], scores, atol=1e-5)
        np.testing.assert_allclose(served["boxes"][0][:n], boxes, atol=1e-5)
        assert not served["scores"][0][n:].any() and not served["boxes"][0][n:].any()
        most = max(most, n)
    assert most >= 4, "no image with several people: the comparison proves little"


def test_half_plus_two(built_models: Path, ov_core: Any) -> None:
    model = ov_core.compile_model(str(built_models / "half_plus_two" / "123" / "model.xml"), "CPU")
    x = np.array([[1.0], [2.0], [5.0]], np.float32)
    np.testing.assert_allclose(model({"x": x})["y"], [[2.5], [3.0], [4.5]])
