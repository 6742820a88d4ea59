"""KServe v2 tensors, shared by REST ``/v2`` and KServe v2 gRPC: checks and raw bytes.

A v2 tensor is a name, a datatype (``FP32``, ``BYTES``, ...), a shape and its
values. *Raw* values are the tensor's bytes in row-major order; for ``BYTES``
each element is prefixed by its 4-byte little-endian length (the binary tensor
extension of REST and ``raw_input_contents``/``raw_output_contents`` of gRPC).
For an image model a ``BYTES`` input of shape ``[N]`` (or ``[N, 1]``) holds N
encoded JPEG/PNG images, decoded server-side within the request's pixel budget.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from kva.dtypes import from_v2, v2_name
from kva.tfserving.errors import InvalidArgument
from kva.tfserving.tensors import ImageDecoder, TensorInfo, stack_images


def tensor_meta(info: TensorInfo) -> dict[str, Any]:
    """The metadata of one model input or output: name, datatype, shape (-1 = any)."""
    shape = list(info.shape) if info.shape is not None else [-1]
    return {"name": info.name, "datatype": v2_name(info.dtype), "shape": shape}


def check_shape(name: str, shape: Any) -> list[int]:
    """``shape`` as a list of non-negative integers (``InvalidArgument`` otherwise)."""
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in shape
    ):
        raise InvalidArgument(f"input '{name}': 'shape' must be a list of non-negative integers")
    return shape


def takes_images(datatype: object, info: TensorInfo) -> bool:
    """True when ``datatype`` is ``BYTES`` sent to an image input (encoded images)."""
    return datatype == "BYTES" and info.image_hw is not None


def decode_images(
    name: str, shape: list[int], elements: list[bytes], info: TensorInfo, decode: ImageDecoder
) -> np.ndarray:
    """N encoded images for the image input ``info``, as it takes them (see ``stack_images``)."""
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise InvalidArgument(f"input '{name}': encoded images need shape [N] (or [N, 1])")
    if not elements:
        raise InvalidArgument(f"input '{name}': no images (shape {shape})")
    return stack_images(elements, info, decode)


def model_dtype(name: str, datatype: object, info: TensorInfo) -> np.dtype:
    """The numpy dtype of ``datatype``, which must be the input's own."""
    dtype = from_v2(datatype) if isinstance(datatype, str) else None
    if dtype is None or dtype != info.dtype:
        raise InvalidArgument(
            f"input '{name}': datatype {datatype!r} does not match the model "
            f"({v2_name(info.dtype)})" + (" or BYTES with encoded images" if info.image_hw else "")
        )
    return dtype


def from_raw(name: str, chunk: bytes, shape: list[int], dtype: np.dtype) -> np.ndarray:
    """A tensor from its raw bytes: little-endian numbers, or length-prefixed ``BYTES``."""
    count = math.prod(shape)
    if dtype == np.dtype(object):
        return strings_array(raw_elements(name, chunk, count), shape)
    if len(chunk) != count * dtype.itemsize:
        raise InvalidArgument(
            f"input '{name}': {len(chunk)} bytes for shape {shape} of {v2_name(dtype)} "
            f"(expected {count * dtype.itemsize})"
        )
    return np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def strings_array(elements: list[bytes], shape: list[int]) -> np.ndarray:
    """An object array of ``bytes`` (kva's string tensor) of ``shape``."""
    strings = np.empty(len(elements), dtype=object)
    strings[:] = elements
    return strings.reshape(shape)


def raw_elements(name: str, chunk: bytes, count: int) -> list[bytes]:
    """The ``count`` length-prefixed ``BYTES`` elements of ``chunk``.

    One element sent without its length prefix is accepted too (one image as is).
    """
    elements = unpack_bytes(chunk)
    if elements is None and count == 1:
        elements = [chunk]
    if elements is None or len(elements) != count:
        raise InvalidArgument(f"input '{name}': expected {count} BYTES elements")
    return elements


def unpack_bytes(chunk: bytes) -> list[bytes] | None:
    """Length-prefixed elements, None when ``chunk`` is not a whole sequence of them."""
    elements, pos = [], 0
    while pos < len(chunk):
        if pos + 4 > len(chunk):
            return None
        (size,) = struct.unpack_from("<I", chunk, pos)
        if pos + 4 + size > len(chunk):
            return None
        elements.append(chunk[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return elements


def to_raw(array: np.ndarray) -> bytes:
    """A tensor's raw bytes: little-endian numbers, or length-prefixed ``BYTES`` elements."""
    if array.dtype == np.dtype(object):
        parts = []
        for item in array.flat:
            data = item if isinstance(item, bytes) else str(item).encode("utf-8")
            parts += [struct.pack("<I", len(data)), data]
        return b"".join(parts)
    return np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
