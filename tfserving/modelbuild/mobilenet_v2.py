"""torchvision's ImageNet MobileNetV2, rebuilt in OpenVINO from its state_dict (no torch).

The served graph takes ``image``: uint8 RGB NHWC ``[-1, 224, 224, 3]`` and
folds in everything else: ``/255``, ImageNet mean/std, NHWC→NCHW, the network
(batch norm folded into the convolutions), softmax and top-5. Outputs:
``scores`` float32 ``[N, 5]`` (probabilities, descending) and ``classes``
int32 ``[N, 5]`` (ImageNet class ids in torchvision order, names in ``labels.json``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kva.tfserving.modelbuild.errors import ModelBuildError
from kva.tfserving.modelbuild.repository import save_version
from kva.tfserving.modelbuild.sources import IMAGENET_LABELS, MOBILENET_V2_WEIGHTS
from kva.tfserving.modelbuild.torch_legacy import load_state_dict

logger = logging.getLogger(__name__)

NAME = "mobilenet_v2"
VERSION = 1
INPUT_SIZE = 224
TOP_K = 5
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
BN_EPS = 1e-5
#: torchvision's inverted residual settings: expansion t, channels c, repeats n, stride s.
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
DESCRIPTION = (
    "MobileNetV2 ImageNet classifier (torchvision weights mobilenet_v2-b0353104); input uint8 "
    "RGB image [N,224,224,3]; outputs top-5 softmax scores [N,5] and class ids [N,5]"
)


@dataclass
class _Builder:
    """Turns a state_dict into OpenVINO nodes, checking every tensor's shape."""

    weights: dict[str, np.ndarray]

    def take(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        try:
            value = self.weights.pop(key)
        except KeyError:
            raise ModelBuildError(f"{NAME}: the state_dict has no '{key}'") from None
        if value.shape != shape:
            raise ModelBuildError(f"{NAME}: '{key}' has shape {value.shape}, expected {shape}")
        return value.astype(np.float32)

    def conv_bn(self, x: Any, prefix: str, out: int, kernel: int, stride: int, groups: int) -> Any:
        """Conv (no bias) + batch norm folded into weights and bias."""
        from openvino import opset13 as ops

        cin = x.get_output_partial_shape(0)[1].get_length()
        weight = self.take(f"{prefix}.0.weight", (out, cin // groups, kernel, kernel))
        scale, shift = self._batch_norm(f"{prefix}.1", out)
        weight = weight * scale[:, None, None, None]
        pad = (kernel - 1) // 2
        args = ([stride, stride], [pad, pad], [pad, pad], [1, 1])
        if groups == 1:
            y = ops.convolution(x, ops.constant(weight), *args)
        else:
            grouped = weight.reshape(groups, out // groups, cin // groups, kernel, kernel)
            y = ops.group_convolution(x, ops.constant(grouped), *args)
        return ops.add(y, ops.constant(shift.reshape(1, out, 1, 1)))

    def _batch_norm(self, prefix: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
        gamma = self.take(f"{prefix}.weight", (channels,))
        beta = self.take(f"{prefix}.bias", (channels,))
        mean = self.take(f"{prefix}.running_mean", (channels,))
        var = self.take(f"{prefix}.running_var", (channels,))
        self.weights.pop(f"{prefix}.num_batches_tracked", None)
        scale = gamma / np.sqrt(var + BN_EPS)
        return scale, beta - mean * scale

    def conv_bn_relu6(
        self, x: Any, prefix: str, out: int, kernel: int, stride: int, groups: int
    ) -> Any:
        from openvino import opset13 as ops

        return ops.clamp(self.conv_bn(x, prefix, out, kernel, stride, groups), 0.0, 6.0)

    def inverted_residual(self, x: Any, index: int, out: int, stride: int, expand: int) -> Any:
        from openvino import opset13 as ops

        cin = x.get_output_partial_shape(0)[1].get_length()
        hidden = cin * expand
        prefix = f"features.{index}.conv"
        y, layer = x, 0
        if expand != 1:
            y = self.conv_bn_relu6(y, f"{prefix}.0", hidden, 1, 1, 1)
            layer = 1
        y = self.conv_bn_relu6(y, f"{prefix}.{layer}", hidden, 3, stride, hidden)
        # The projection is conv.{layer+1} (1x1, no bias) followed by BN conv.{layer+2}.
        weight = self.take(f"{prefix}.{layer + 1}.weight", (out, hidden, 1, 1))
        scale, shift = self._batch_norm(f"{prefix}.{layer + 2}", out)
        y = ops.convolution(
            y, ops.constant(weight * scale[:, None, None, None]), [1, 1], [0, 0], [0, 0], [1, 1]
        )
        y = ops.add(y, ops.constant(shift.reshape(1, out, 1, 1)))
        if stride == 1 and cin == out:
            y = ops.add(x, y)
        return y


def preprocess(image: Any) -> Any:
    """uint8 NHWC RGB → float32 NCHW normalised with ImageNet mean/std."""
    from openvino import opset13 as ops

    x = ops.convert(image, "f32")
    mean = np.array(MEAN, np.float32).reshape(1, 1, 1, 3) * 255.0
    inv_std = 1.0 / (np.array(STD, np.float32).reshape(1, 1, 1, 3) * 255.0)
    x = ops.multiply(ops.subtract(x, ops.constant(mean)), ops.constant(inv_std.astype(np.float32)))
    return ops.transpose(x, ops.constant(np.array([0, 3, 1, 2], np.int64)))


def build_network(weights: dict[str, np.ndarray]) -> Any:
    """The full served ``ov.Model`` from a torchvision MobileNetV2 state_dict."""
    import openvino as ov
    from openvino import opset13 as ops

    builder = _Builder(dict(weights))
    image = ops.parameter([-1, INPUT_SIZE, INPUT_SIZE, 3], np.uint8, name="image")
    image.output(0).set_names({"image"})
    x = builder.conv_bn_relu6(preprocess(image), "features.0", 32, 3, 2, 1)
    index = 1
    for expand, channels, repeats, stride in INVERTED_RESIDUAL_SETTING:
        for i in range(repeats):
            x = builder.inverted_residual(x, index, channels, stride if i == 0 else 1, expand)
            index += 1
    x = builder.conv_bn_relu6(x, f"features.{index}", 1280, 1, 1, 1)
    x = ops.reduce_mean(x, ops.constant(np.array([2, 3], np.int64)), keep_dims=False)
    fc_weight = builder.take("classifier.1.weight", (1000, 1280))
    fc_bias = builder.take("classifier.1.bias", (1000,))
    logits = ops.add(ops.matmul(x, ops.constant(fc_weight), False, True), ops.constant(fc_bias))
    if builder.weights:
        raise ModelBuildError(f"{NAME}: unused weights {sorted(builder.weights)[:5]}")
    probabilities = ops.softmax(logits, 1)
    top = ops.topk(
        probabilities, ops.constant(np.int64(TOP_K)), 1, "max", "value", index_element_type="i32"
    )
    scores = ops.result(top.output(0), name="scores")
    classes = ops.result(top.output(1), name="classes")
    top.output(0).set_names({"scores"})
    top.output(1).set_names({"classes"})
    return ov.Model([scores, classes], [image], NAME)


def imagenet_labels(path: Path) -> list[str]:
    """The 1000 class names in torchvision order (first synonym of each class)."""
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict) or len(raw) != 1000:
        raise ModelBuildError(f"{path}: expected a JSON object of 1000 labels")
    return [str(raw[str(i)]).split(",")[0].strip() for i in range(1000)]


def build(base_path: Path) -> Path:
    """Build ``<base_path>/mobilenet_v2/1/`` (IR, ``labels.json``, ``kva-model.json``)."""
    weights_path = MOBILENET_V2_WEIGHTS.locate()
    labels_path = IMAGENET_LABELS.locate()
    logger.info("%s: reading weights %s (restricted unpickler)", NAME, weights_path)
    weights = load_state_dict(weights_path)
    logger.info("%s: building the network from %d tensors", NAME, len(weights))
    model = build_network(weights)
    return save_version(
        model,
        base_path,
        NAME,
        VERSION,
        task="classification",
        description=DESCRIPTION,
        labels=imagenet_labels(labels_path),
        source=MOBILENET_V2_WEIGHTS.provenance(labels=IMAGENET_LABELS.requirement),
    )
