"""TF Serving's REST tensor encoding (``/v1`` ``:predict``): JSON <-> numpy.

Row format (``"instances"``): a list with one entry per batch row; with
several inputs each entry is an object keyed by input name. Columnar format
(``"inputs"``): one value for the single input, or an object keyed by input
name. ``{"b64": "..."}`` stands for raw bytes; for an image input (uint8
``[N, H, W, 3]``) those bytes are an encoded JPEG/PNG, decoded and resized
server-side. Responses mirror the request: ``predictions`` for row requests,
``outputs`` for columnar ones, the output name left out when there is one.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kva.tfserving.errors import InvalidArgument

#: Decodes an encoded image into RGB uint8 ``[height, width, 3]``: (data, height, width).
ImageDecoder = Callable[[bytes, int, int], np.ndarray]


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output as the REST layer sees it."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...] | None  # -1 = any size; None = unknown rank
    image_hw: tuple[int, int] | None = None  # (H, W) when encoded images are accepted
    image_nchw: bool = False  # images go in as [N, 3, H, W] (else [N, H, W, 3])


#: Input dtypes an encoded image is decoded into (RGB 0..255, as OVMS feeds them).
IMAGE_DTYPES = frozenset(np.dtype(t) for t in ("uint8", "float32", "float16", "int32"))


#: Python's JSON error -> the wording of rapidjson, TF Serving's parser, which its tests
#: and clients match (``...Invalid value``); the others keep Python's wording.
_RAPIDJSON_WORDING = {
    "Expecting value": "Invalid value.",
    "Extra data": "The document root must not be followed by other values.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
}


def parse_json(body: bytes) -> Any:
    """Parse a request body (``NaN``/``Infinity`` allowed) with TF Serving's error wording."""
    if not body.strip():
        raise InvalidArgument("JSON Parse error: The document is empty")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise InvalidArgument("JSON Parse error: Invalid encoding in string.") from None
    except json.JSONDecodeError as exc:
        message = _RAPIDJSON_WORDING.get(exc.msg, exc.msg)
        raise InvalidArgument(f"JSON Parse error: {message} at offset {exc.pos}") from None
    except RecursionError:
        raise InvalidArgument("JSON Parse error: the document is nested too deeply") from None


def decode_b64(value: object) -> bytes:
    """The bytes of a ``{"b64": "..."}`` object (standard or URL-safe alphabet)."""
    if not isinstance(value, dict) or set(value) != {"b64"} or not isinstance(value["b64"], str):
        raise InvalidArgument('expected an object {"b64": "<base64 string>"}')
    text = value["b64"].replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("Unable to base64 decode the 'b64' value") from None


def is_b64(value: object) -> bool:
    """True for a ``{"b64": ...}`` object."""
    return isinstance(value, dict) and set(value) == {"b64"}


def decode_predict_request(
    request: Any, inputs: dict[str, TensorInfo], decode_image: ImageDecoder
) -> tuple[dict[str, np.ndarray], bool]:
    """Turn a ``:predict`` body into input tensors.

    Returns:
        The tensors by input name, and True for row format (``instances``).
    """
    if not isinstance(request, dict):
        raise InvalidArgument("Request body must be a JSON object")
    if "instances" in request and "inputs" in request:
        raise InvalidArgument(
            "Not formatted correctly: expecting only one of 'inputs' or 'instances' keys to exist"
        )
    if "instances" in request:
        return _rows(request["instances"], inputs, decode_image), True
    if "inputs" in request:
        return _columns(request["inputs"], inputs, decode_image), False
    raise InvalidArgument("Missing 'inputs' or 'instances' key")


def _rows(
    instances: Any, inputs: dict[str, TensorInfo], decode_image: ImageDecoder
) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise InvalidArgument("Expecting 'instances' to be a list/array")
    if not instances:
        raise InvalidArgument("'instances' is an empty list")
    named = [isinstance(row, dict) and not is_b64(row) for row in instances]
    if any(named) and not all(named):
        raise InvalidArgument(
            "Expecting all 'instances' to be objects keyed by input name, or none"
        )
    if not all(named):
        info = _single_input(inputs, "instances")
        return {info.name: to_tensor(instances, info, decode_image)}
    keys = set(instances[0])
    for row in instances:
        if set(row) != keys:
            raise InvalidArgument(
                f"Expecting all 'instances' to have the same keys: {sorted(keys)} != {sorted(row)}"
            )
    _check_names(keys, inputs)
    return {
        name: to_tensor([row[name] for row in instances], inputs[name], decode_image)
        for name in keys
    }


def _columns(
    value: Any, inputs: dict[str, TensorInfo], decode_image: ImageDecoder
) -> dict[str, np.ndarray]:
    if isinstance(value, dict) and not is_b64(value):
        _check_names(set(value), inputs)
        return {name: to_tensor(item, inputs[name], decode_image) for name, item in value.items()}
    info = _single_input(inputs, "inputs")
    return {info.name: to_tensor(value, info, decode_image)}


def _single_input(inputs: dict[str, TensorInfo], key: str) -> TensorInfo:
    if len(inputs) != 1:
        raise InvalidArgument(
            f"The model has {len(inputs)} inputs ({', '.join(sorted(inputs))}): "
            f"'{key}' must name them (objects keyed by input name)"
        )
    return next(iter(inputs.values()))


def _check_names(sent: set[str], inputs: dict[str, TensorInfo]) -> None:
    if sent != set(inputs):
        extra = ", ".join(sorted(sent - set(inputs)))
        missing = ", ".join(sorted(set(inputs) - sent))
        raise InvalidArgument(
            f"input size does not match signature: {len(sent)}!={len(inputs)} "
            f"len({{{', '.join(sorted(sent))}}}) != len({{{', '.join(sorted(inputs))}}}). "
            f"Sent extra: {{{extra}}}. Missing but required: {{{missing}}}."
        )


#: Most decoded pixels one request may ask for (N images x H x W): about 50 MB of RGB.
MAX_BATCH_PIXELS = 16 * 1024 * 1024


def check_image_batch(count: int, height: int, width: int) -> None:
    """Refuse a request whose N decoded images would take more than :data:`MAX_BATCH_PIXELS`."""
    if count * height * width > MAX_BATCH_PIXELS:
        raise InvalidArgument(
            f"too many images in one request: {count} x {height}x{width} pixels exceeds "
            f"{MAX_BATCH_PIXELS}"
        )


def stack_images(images: Sequence[bytes], info: TensorInfo, decode: ImageDecoder) -> np.ndarray:
    """N encoded images as the image input ``info`` takes them: its size, layout and dtype.

    Raises:
        InvalidArgument: no images, or more pixels than one request may decode.
        ImageError: an image that cannot be decoded (from ``decode``).
    """
    if info.image_hw is None:
        raise InvalidArgument(f"input '{info.name}' does not take encoded images")
    if not images:  # np.stack of nothing raises ValueError (an internal error)
        raise InvalidArgument(f"input '{info.name}': no images")
    height, width = info.image_hw
    check_image_batch(len(images), height, width)
    batch = np.stack([decode(data, height, width) for data in images])
    if info.image_nchw:
        batch = batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=info.dtype)


def to_tensor(value: Any, info: TensorInfo, decode_image: ImageDecoder) -> np.ndarray:
    """Convert one JSON value (nested lists, numbers, strings, b64) to the input's dtype."""
    if info.image_hw is not None:
        images = _encoded_images(value)
        if images is not None:
            return stack_images(images, info, decode_image)
    if info.dtype == np.dtype(object):
        return _strings(value, info.name)
    return _numbers(value, info)


def _encoded_images(value: Any) -> list[bytes] | None:
    if is_b64(value):
        return [decode_b64(value)]
    if isinstance(value, list) and value and all(is_b64(item) for item in value):
        return [decode_b64(item) for item in value]
    return None


def _numbers(value: Any, info: TensorInfo) -> np.ndarray:
    try:
        array = np.array(value)
    except (ValueError, TypeError, RecursionError):
        raise InvalidArgument(f"Input '{info.name}': {_ragged(value)}") from None
    kind, target = array.dtype.kind, info.dtype
    expected = target.name
    ok = (
        (target.kind == "f" and kind in "iuf")
        or (target.kind in "iu" and kind in "iu")
        or (target.kind == "b" and kind == "b")
    )
    if not ok:
        shown = _first_bad(value)
        raise InvalidArgument(
            f"Input '{info.name}': JSON Value: {shown} is not of expected type: {expected}"
        )
    if target.kind in "iu" and array.size:
        limits = np.iinfo(target)
        if array.min() < limits.min or array.max() > limits.max:
            raise InvalidArgument(f"Input '{info.name}': a value is out of range for {expected}")
    return np.asarray(array, dtype=target, order="C")


def _ragged(value: Any) -> str:
    """TF Serving's wording for the first depth at which a nested list is not rectangular."""
    level = [value]
    for depth in range(1, 64):
        lists = [isinstance(item, list) for item in level]
        if not any(lists):
            break
        if not all(lists):
            return f"Expecting shape: a list and a value side by side at depth {depth}"
        sizes = [len(item) for item in level]
        other = next((n for n in sizes if n != sizes[0]), None)
        if other is not None:
            return (
                f"Expecting tensor size {sizes[0]} but got {other} at depth {depth} "
                "(every row of the same shape)"
            )
        level = [element for item in level for element in item]
    return "expecting a rectangular array (every row of the same shape)"


def _first_bad(value: Any) -> str:
    while isinstance(value, list) and value:
        bad = [
            item for item in value if not isinstance(item, int | float) or isinstance(item, bool)
        ]
        value = bad[0] if bad else value[0]
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _strings(value: Any, name: str) -> np.ndarray:
    def walk(item: Any) -> Any:
        if isinstance(item, list):
            return [walk(element) for element in item]
        if is_b64(item):
            return decode_b64(item)
        if isinstance(item, str):
            return item.encode("utf-8")
        raise InvalidArgument(f"Input '{name}': JSON Value: {_first_bad(item)} is not a string")

    nested = walk(value)
    try:
        flat = np.array(nested, dtype=object)
    except ValueError:
        raise InvalidArgument(f"Input '{name}': {_ragged(nested)}") from None
    if any(isinstance(item, list) for item in flat.flat):
        raise InvalidArgument(f"Input '{name}': {_ragged(nested)}")
    return flat


def encode_predict_response(outputs: dict[str, np.ndarray], row_format: bool) -> dict[str, Any]:
    """The ``:predict`` response body for ``outputs``."""
    if not row_format:
        if len(outputs) == 1:
            ((name, array),) = outputs.items()
            return {"outputs": to_json(array, name)}
        return {"outputs": {name: to_json(array, name) for name, array in outputs.items()}}
    batch: int | None = None
    for name, array in outputs.items():
        if array.ndim == 0:
            raise InvalidArgument(f"Tensor name: {name} has no shape information")
        if batch is None:
            batch = array.shape[0]
        elif array.shape[0] != batch:
            raise InvalidArgument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
    if len(outputs) == 1:
        ((name, array),) = outputs.items()
        return {"predictions": to_json(array, name)}
    columns = {name: to_json(array, name) for name, array in outputs.items()}
    return {
        "predictions": [
            {name: column[i] for name, column in columns.items()} for i in range(batch or 0)
        ]
    }


def to_json(array: np.ndarray, name: str, *, b64_bytes_names: bool = True) -> Any:
    """A tensor as JSON values: floats in their shortest form, strings as text.

    With ``b64_bytes_names`` (TF Serving's rule), the strings of an output named
    ``*_bytes`` are ``{"b64": ...}``; KServe v2 JSON has no such rule (its clients ask
    for binary data instead).
    """
    if array.dtype == np.dtype(object):
        return _strings_json(array, b64_bytes_names and name.endswith("_bytes"))
    if array.dtype in (np.float32, np.float16):
        return array.astype(str).astype(np.float64).tolist()
    return array.tolist()


def _strings_json(array: np.ndarray, as_b64: bool) -> Any:
    def one(item: Any) -> Any:
        data = item if isinstance(item, bytes) else str(item).encode("utf-8")
        if as_b64:
            return {"b64": base64.b64encode(data).decode("ascii")}
        return data.decode("utf-8", errors="replace")

    return np.vectorize(one, otypes=[object])(array).tolist() if array.size else array.tolist()
