"""How a frame goes into a model: as a JPEG the server decodes, or as a tensor made here.

``kva serve`` and OVMS decode an encoded image into an image input, so by default a
model whose input is uint8 NHWC gets the frame as a small JPEG (the cheapest thing to
send). A model that wants something else (float, NCHW, BGR, scaled and shifted) or a
server that does not decode images (MLServer, Triton) gets a tensor: the frame resized
here, in the layout, channel order, dtype, scale and mean the model takes, sent binary
(v2 binary extension, gRPC raw contents, a TF Serving TensorProto; JSON numbers only
for TF Serving REST, which has nothing else).

Per model, ``--model-input NAME:KEY=VALUE[,KEY=VALUE...]`` sets:

- ``send``: ``auto`` (default: a JPEG for uint8 NHWC inputs, else a tensor), ``jpeg``,
  ``tensor``;
- ``dtype`` (``uint8``, ``float32``, ...), ``layout`` (``NHWC``/``NCHW``), ``size``
  (``WxH``): taken from the server's metadata; given, they are checked against it;
- ``order`` (``RGB``, the default, or ``BGR``), ``scale`` and ``mean`` (``a/b/c``, per
  channel in ``order``): the tensor is ``(pixel - mean) * scale``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, cast, get_args

import numpy as np

from kva.consumer.backend_api import Layout, ModelInfo
from kva.consumer.errors import MetadataError

Send = Literal["auto", "jpeg", "tensor"]
Order = Literal["RGB", "BGR"]
#: Element types a tensor input may have.
TENSOR_DTYPES = ("uint8", "int8", "int32", "float16", "float32", "float64")
_KEYS = ("send", "dtype", "layout", "size", "order", "scale", "mean")


@dataclass(frozen=True, slots=True)
class InputOptions:
    """One model's ``--model-input`` values (None: take it from the server's metadata)."""

    send: Send = "auto"
    dtype: str | None = None
    layout: Layout | None = None
    size: tuple[int, int] | None = None  # (width, height)
    order: Order = "RGB"
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class InputFormat:
    """What one model is sent; equal formats share one payload per frame."""

    tensor: bool
    width: int
    height: int
    dtype: str = "uint8"
    layout: Layout = "NHWC"
    order: Order = "RGB"
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def describe(self) -> str:
        if not self.tensor:
            return f"JPEG {self.width}x{self.height}"
        return (
            f"{self.dtype} {self.layout} {self.order} tensor {self.width}x{self.height}, "
            f"scale {self.scale:g}, mean {'/'.join(f'{m:g}' for m in self.mean)}"
        )


def parse_model_input(text: str) -> tuple[str, InputOptions]:
    """``NAME:KEY=VALUE[,KEY=VALUE...]`` -> (name, options); ``ValueError`` with the reason."""
    name, sep, rest = text.partition(":")
    if not sep or not name.strip() or not rest.strip():
        raise ValueError(f"{text!r} is not NAME:KEY=VALUE[,KEY=VALUE...]")
    values: dict[str, str] = {}
    for item in rest.split(","):
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or key not in _KEYS or not value:
            raise ValueError(f"{text!r}: {item!r} is not one of {', '.join(_KEYS)} = a value")
        values[key] = value
    return name.strip(), _options(values, text)


def _options(values: dict[str, str], text: str) -> InputOptions:
    options = InputOptions()
    try:
        if "send" in values:
            options = replace(options, send=cast(Send, _choice(values["send"], get_args(Send))))
        if "dtype" in values:
            options = replace(options, dtype=_choice(values["dtype"], TENSOR_DTYPES))
        if "layout" in values:
            options = replace(options, layout=cast(Layout, _choice(values["layout"].upper(),
                                                                   ("NHWC", "NCHW"))))  # fmt: skip
        if "order" in values:
            order = _choice(values["order"].upper(), ("RGB", "BGR"))
            options = replace(options, order=cast(Order, order))
        if "size" in values:
            width, _x, height = values["size"].lower().partition("x")
            size = (int(width), int(height))
            if min(size) < 1 or max(size) > 8192:
                raise ValueError("size must be WxH within 1..8192")
            options = replace(options, size=size)
        if "scale" in values:
            options = replace(options, scale=float(values["scale"]))
        if "mean" in values:
            parts = values["mean"].split("/")
            if len(parts) != 3:
                raise ValueError("mean must be three numbers a/b/c")
            options = replace(options, mean=(float(parts[0]), float(parts[1]), float(parts[2])))
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    if not np.isfinite([options.scale, *options.mean]).all():
        raise ValueError(f"{text!r}: scale and mean must be finite numbers")
    return options


def _choice(value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
    return value


def input_format(info: ModelInfo, options: InputOptions) -> InputFormat:
    """What ``info``'s model is sent, from its metadata and ``options``.

    Raises:
        MetadataError: an option contradicts the server's metadata, or a JPEG/tensor
            choice the model cannot take.
    """
    dtype = info.input_dtype or options.dtype or "uint8"
    mismatches = [
        f"{key} {given} but the server says {known}"
        for key, given, known in (
            ("dtype", options.dtype, info.input_dtype or options.dtype),
            ("layout", options.layout, info.layout),
            ("size", options.size, (info.width, info.height)),
        )
        if given is not None and given != known
    ]
    if mismatches:
        raise MetadataError(f"--model-input {info.name}: " + "; ".join(map(str, mismatches)))
    if dtype not in TENSOR_DTYPES:
        raise MetadataError(f"model {info.name}: input dtype {dtype} is not an image tensor")
    custom = options.order != "RGB" or options.scale != 1.0 or options.mean != (0.0, 0.0, 0.0)
    tensor = options.send == "tensor" or (
        options.send == "auto" and (dtype != "uint8" or info.layout != "NHWC" or custom)
    )
    if not tensor:
        if custom:
            raise MetadataError(
                f"--model-input {info.name}: order/scale/mean need send=tensor "
                "(the server decodes a JPEG itself)"
            )
        return InputFormat(False, info.width, info.height)
    if np.dtype(dtype).kind in "iu" and (options.scale != 1.0 or options.mean != (0, 0, 0)):
        raise MetadataError(
            f"--model-input {info.name}: scale/mean need a float input, the model takes {dtype}"
        )
    return InputFormat(
        True, info.width, info.height, dtype, info.layout, options.order,
        options.scale, options.mean,
    )  # fmt: skip


def to_tensor(resized_bgr: np.ndarray, fmt: InputFormat) -> np.ndarray:
    """The frame, already resized to ``fmt``'s size (BGR), as ``fmt``'s tensor, batch first."""
    pixels = resized_bgr
    if fmt.order == "RGB":
        pixels = pixels[..., ::-1]
    if fmt.scale != 1.0 or fmt.mean != (0.0, 0.0, 0.0):
        pixels = (pixels.astype(np.float32) - np.array(fmt.mean, np.float32)) * np.float32(
            fmt.scale
        )
    if fmt.layout == "NCHW":
        pixels = pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels[None], dtype=np.dtype(fmt.dtype))
