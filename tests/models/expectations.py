"""What the built models must answer on scikit-image's bundled photos.

Shared by the in-process accuracy tests here and the server's HTTP tests: feed
the same photos (resized by stretching to the model input, as the server does)
and check the outputs with these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import skimage.data

#: photo -> acceptable top-1 ImageNet names (labels.json, torchvision order).
CLASSIFICATION_CASES: dict[str, frozenset[str]] = {
    "chelsea": frozenset({"Egyptian cat", "tabby", "tiger cat"}),
    "coffee": frozenset({"espresso"}),
}
#: The astronaut's face in skimage.data.astronaut() (512 x 512), x_min, y_min, x_max, y_max.
ASTRONAUT_FACE_PX = (173.0, 68.0, 279.0, 174.0)
FACE_SCORE = 0.5
MIN_IOU = 0.5
#: Photos without any face.
NO_FACE_PHOTOS = ("coffee", "chelsea")
#: The astronaut herself in skimage.data.astronaut(), x_min, y_min, x_max, y_max, labelled by
#: hand: from her left arm to her right shoulder, from the top of her hair to the bottom edge.
ASTRONAUT_PERSON_PX = (18.0, 15.0, 365.0, 512.0)
#: The person detector finds her with at least this score (0.93 with OpenVINO 2026.4) ...
PERSON_SCORE = 0.85
#: ... and a box this close to the one above (0.90).
PERSON_MIN_IOU = 0.75
#: Photos without any person.
NO_PERSON_PHOTOS = ("coffee", "chelsea")


def photo(name: str) -> np.ndarray:
    """An RGB uint8 photo shipped with scikit-image (``chelsea``, ``coffee``, ``astronaut``)."""
    image = getattr(skimage.data, name)()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    return image


def photo_jpeg(name: str, width: int | None = None, height: int | None = None) -> bytes:
    """A bundled photo as JPEG bytes: at its own size, or resized to ``width`` x ``height``."""
    image = photo(name)
    if width is not None and height is not None:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return bytes(data.tobytes())


def stretch(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (no aspect ratio kept) to ``size`` x ``size``, as the server does."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x_min, y_min, x_max, y_max]`` boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def check_top5(scores: np.ndarray, classes: np.ndarray) -> None:
    """One row of classifier outputs is a valid top-5: descending probabilities, distinct ids."""
    assert scores.shape == (5,) and classes.shape == (5,)
    assert np.all(np.diff(scores) <= 0), scores
    assert float(scores.min()) >= 0.0 and float(scores.sum()) <= 1.0 + 1e-4
    assert len(set(classes.tolist())) == 5 and classes.min() >= 0 and classes.max() < 1000


def check_classification(photo_name: str, labels: list[str], top1_class: int) -> None:
    """The top-1 class of ``photo_name`` is one of the acceptable names."""
    assert labels[top1_class] in CLASSIFICATION_CASES[photo_name], (photo_name, labels[top1_class])


def faces(boxes: np.ndarray, scores: np.ndarray, width: int, height: int) -> list[list[float]]:
    """Pixel boxes of one image's detections with score >= :data:`FACE_SCORE`."""
    return [box for box, _score in detected(boxes, scores, width, height, FACE_SCORE)]


def detected(
    boxes: np.ndarray, scores: np.ndarray, width: int, height: int, min_score: float
) -> list[tuple[list[float], float]]:
    """(pixel box, score) of one image's detections with score >= ``min_score``."""
    scale = np.array([width, height, width, height], np.float32)
    kept = zip(boxes, scores, strict=True)
    return [((box * scale).tolist(), float(score)) for box, score in kept if score >= min_score]


def check_detector_row(boxes: np.ndarray, scores: np.ndarray) -> None:
    """One image's detector outputs: [K,4] / [K] normalised, descending, zero-padded."""
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and scores.shape == (boxes.shape[0],)
    assert np.all(np.diff(scores) <= 0), scores
    assert np.all((boxes >= 0.0) & (boxes <= 1.0))
    empty = scores == 0
    assert np.all(boxes[empty] == 0)
    assert np.all(boxes[~empty][:, 2:] > boxes[~empty][:, :2])
