"""Element types, the one table: numpy <-> TF ``DT_*`` names <-> KServe v2 datatypes.

Used by the model server (TF Serving and KServe metadata, v2 tensors), by the
TF Serving gRPC codec (which ``TensorProto`` field holds the values) and by the
consumer (v2 answers). Strings are numpy ``object`` arrays of ``bytes``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ElementType(NamedTuple):
    """One element type under its three names, and the ``TensorProto`` field of its values."""

    numpy: np.dtype
    tf: str
    v2: str
    proto_field: str


_TYPES = (
    ElementType(np.dtype("float32"), "DT_FLOAT", "FP32", "float_val"),
    ElementType(np.dtype("float64"), "DT_DOUBLE", "FP64", "double_val"),
    ElementType(np.dtype("float16"), "DT_HALF", "FP16", "half_val"),
    ElementType(np.dtype("int8"), "DT_INT8", "INT8", "int_val"),
    ElementType(np.dtype("int16"), "DT_INT16", "INT16", "int_val"),
    ElementType(np.dtype("int32"), "DT_INT32", "INT32", "int_val"),
    ElementType(np.dtype("int64"), "DT_INT64", "INT64", "int64_val"),
    ElementType(np.dtype("uint8"), "DT_UINT8", "UINT8", "int_val"),
    ElementType(np.dtype("uint16"), "DT_UINT16", "UINT16", "int_val"),
    ElementType(np.dtype("uint32"), "DT_UINT32", "UINT32", "uint32_val"),
    ElementType(np.dtype("uint64"), "DT_UINT64", "UINT64", "uint64_val"),
    ElementType(np.dtype("bool"), "DT_BOOL", "BOOL", "bool_val"),
    ElementType(np.dtype("object"), "DT_STRING", "BYTES", "string_val"),
)
_BY_NUMPY = {t.numpy.name: t for t in _TYPES}
_BY_TF = {t.tf: t for t in _TYPES}
_BY_V2 = {t.v2: t for t in _TYPES}


def of_numpy(dtype: np.dtype | type) -> ElementType | None:
    """The element type of a numpy dtype, None when kva has no name for it."""
    return _BY_NUMPY.get(np.dtype(dtype).name)


def of_tf(name: str) -> ElementType | None:
    """The element type of a TF ``DT_*`` name, None when unknown."""
    return _BY_TF.get(name)


def of_v2(datatype: str) -> ElementType | None:
    """The element type of a KServe v2 datatype name, None when unknown."""
    return _BY_V2.get(datatype)


def tf_name(dtype: np.dtype | type) -> str:
    """``DT_FLOAT`` for float32 and so on (``DT_INVALID`` when unknown)."""
    found = of_numpy(dtype)
    return found.tf if found else "DT_INVALID"


def v2_name(dtype: np.dtype | type) -> str:
    """``FP32`` for float32 and so on (``BYTES`` for strings and anything unknown)."""
    found = of_numpy(dtype)
    return found.v2 if found else "BYTES"


def from_v2(datatype: str) -> np.dtype | None:
    """The numpy dtype of a v2 datatype name, None when unknown."""
    found = of_v2(datatype)
    return found.numpy if found else None
