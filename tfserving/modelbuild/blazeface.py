"""MediaPipe BlazeFace (full range) with decoding and NMS folded into the served graph.

The served graph takes ``image``: uint8 RGB NHWC ``[1, 192, 192, 3]`` and
returns ``boxes`` float32 ``[1, K, 4]`` as ``[x_min, y_min, x_max, y_max]``
normalised to 0..1 of the input image, and ``scores`` float32 ``[1, K]``
(descending; K = :data:`MAX_DETECTIONS`, unused slots are zeros). Inside:
``x/127.5 - 1``, the MediaPipe network read from its ``.tflite``, SSD anchor
decoding (stride 4, one anchor per cell, 48×48 = 2304 anchors), sigmoid and
OpenVINO's NonMaxSuppression (IoU 0.3, score ≥ :data:`SCORE_THRESHOLD`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from kva.tfserving.modelbuild.errors import ModelBuildError
from kva.tfserving.modelbuild.repository import save_version
from kva.tfserving.modelbuild.sources import BLAZEFACE_FULL_RANGE

logger = logging.getLogger(__name__)

NAME = "blazeface"
VERSION = 1
INPUT_SIZE = 192
STRIDE = 4
NUM_ANCHORS = (INPUT_SIZE // STRIDE) ** 2
MAX_DETECTIONS = 16
SCORE_THRESHOLD = 0.5
IOU_THRESHOLD = 0.3
DESCRIPTION = (
    "MediaPipe BlazeFace full-range face detector; input uint8 RGB image [1,192,192,3]; outputs "
    f"boxes [1,{MAX_DETECTIONS},4] (x_min, y_min, x_max, y_max normalised 0..1) and scores "
    f"[1,{MAX_DETECTIONS}] (>= {SCORE_THRESHOLD}, zero-padded)"
)


def anchor_centres() -> np.ndarray:
    """SSD anchor centres ``[2304, 2]`` as (x, y) in 0..1, row-major like MediaPipe."""
    cells = INPUT_SIZE // STRIDE
    ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
    centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1)
    return centres.reshape(-1, 2).astype(np.float32)


def _const(values: Any, dtype: Any = np.float32) -> Any:
    from openvino import opset13 as ops

    return ops.constant(np.asarray(values, dtype=dtype))


def decode_boxes(regressors: Any) -> Any:
    """Raw ``[1, 2304, 16]`` regressors → corner boxes ``[1, 2304, 4]`` in 0..1."""
    from openvino import opset13 as ops

    raw = ops.slice(
        regressors,
        _const([0], np.int64),
        _const([4], np.int64),
        _const([1], np.int64),
        _const([2], np.int64),
    )
    scaled = ops.divide(raw, _const(float(INPUT_SIZE)))
    centre_xy = ops.add(
        ops.slice(
            scaled,
            _const([0], np.int64),
            _const([2], np.int64),
            _const([1], np.int64),
            _const([2], np.int64),
        ),
        _const(anchor_centres()[None]),
    )
    half_wh = ops.multiply(
        ops.slice(
            scaled,
            _const([2], np.int64),
            _const([4], np.int64),
            _const([1], np.int64),
            _const([2], np.int64),
        ),
        _const(0.5),
    )
    corners = ops.concat([ops.subtract(centre_xy, half_wh), ops.add(centre_xy, half_wh)], 2)
    return ops.clamp(corners, 0.0, 1.0)


def select_detections(boxes: Any, logits: Any) -> tuple[Any, Any]:
    """Sigmoid + NMS, padded to a fixed ``[1, K, 4]`` boxes and ``[1, K]`` scores."""
    from openvino import opset13 as ops

    k = MAX_DETECTIONS
    scores = ops.sigmoid(ops.clamp(logits, -100.0, 100.0))  # [1, N, 1]
    scores = ops.transpose(scores, _const([0, 2, 1], np.int64))  # [1, 1, N]
    nms = ops.non_max_suppression(
        boxes,
        scores,
        _const(k, np.int64),
        _const(IOU_THRESHOLD),
        _const(SCORE_THRESHOLD),
        box_encoding="corner",
        sort_result_descending=True,
        output_type="i32",
    )
    # Rows are [batch, class, box] / [batch, class, score]; fewer than K rows (or -1 rows).
    index = ops.gather(nms.output(0), _const(2, np.int64), _const(1, np.int64))
    score = ops.gather(nms.output(1), _const(2, np.int64), _const(1, np.int64))
    index = _first_k(ops.concat([index, _const(np.full(k, -1), np.int32)], 0), k)
    score = _first_k(ops.concat([score, _const(np.zeros(k))], 0), k)
    valid = ops.greater_equal(index, _const(0, np.int32))
    picked = ops.gather(
        ops.squeeze(boxes, _const([0], np.int64)),
        ops.maximum(index, _const(0, np.int32)),
        _const(0, np.int64),
    )
    picked = ops.select(ops.unsqueeze(valid, _const([1], np.int64)), picked, _const(0.0))
    score = ops.select(valid, score, _const(0.0))
    return (
        ops.reshape(picked, _const([1, k, 4], np.int64), False),
        ops.reshape(score, _const([1, k], np.int64), False),
    )


def _first_k(values: Any, k: int) -> Any:
    from openvino import opset13 as ops

    return ops.slice(values, _const([0], np.int64), _const([k], np.int64), _const([1], np.int64))


def build_network(tflite: Path) -> Any:
    """The served ``ov.Model`` around MediaPipe's ``face_detection_full_range.tflite``."""
    import openvino as ov
    from openvino import opset13 as ops
    from openvino.preprocess import PrePostProcessor

    network = ov.Core().read_model(str(tflite))
    shapes = [tuple(out.get_partial_shape().to_shape()) for out in network.outputs]
    if len(network.inputs) != 1 or sorted(shapes) != [(1, NUM_ANCHORS, 1), (1, NUM_ANCHORS, 16)]:
        raise ModelBuildError(f"{tflite}: unexpected BlazeFace inputs/outputs {shapes}")
    ppp = PrePostProcessor(network)
    ppp.input().tensor().set_element_type(ov.Type.u8)
    ppp.input().preprocess().convert_element_type(ov.Type.f32).mean(127.5).scale(127.5)
    network = ppp.build()
    image = network.get_parameters()[0]
    image.set_friendly_name("image")
    image.output(0).set_names({"image"})
    by_width = {out.get_partial_shape()[2].get_length(): out for out in network.outputs}
    regressors = by_width[16].get_node().input_value(0)
    logits = by_width[1].get_node().input_value(0)
    boxes, scores = select_detections(decode_boxes(regressors), logits)
    boxes.output(0).set_names({"boxes"})
    scores.output(0).set_names({"scores"})
    results = [ops.result(boxes, name="boxes"), ops.result(scores, name="scores")]
    return ov.Model(results, [image], NAME)


def build(base_path: Path) -> Path:
    """Build ``<base_path>/blazeface/1/`` (IR, ``labels.json`` and ``kva-model.json``)."""
    tflite = BLAZEFACE_FULL_RANGE.locate()
    logger.info("%s: reading %s", NAME, tflite)
    model = build_network(tflite)
    return save_version(
        model,
        base_path,
        NAME,
        VERSION,
        task="detection",
        description=DESCRIPTION,
        labels=["face"],  # one class: every box is a face
        source=BLAZEFACE_FULL_RANGE.provenance(),
    )
