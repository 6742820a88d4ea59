"""Element types: numpy <-> TF ``DT_*`` names <-> KServe v2 datatypes."""

from __future__ import annotations

import numpy as np

#: numpy dtype name -> (TF DataType name, KServe v2 datatype)
_TABLE = {
    "float32": ("DT_FLOAT", "FP32"),
    "float64": ("DT_DOUBLE", "FP64"),
    "float16": ("DT_HALF", "FP16"),
    "int8": ("DT_INT8", "INT8"),
    "int16": ("DT_INT16", "INT16"),
    "int32": ("DT_INT32", "INT32"),
    "int64": ("DT_INT64", "INT64"),
    "uint8": ("DT_UINT8", "UINT8"),
    "uint16": ("DT_UINT16", "UINT16"),
    "uint32": ("DT_UINT32", "UINT32"),
    "uint64": ("DT_UINT64", "UINT64"),
    "bool": ("DT_BOOL", "BOOL"),
    "object": ("DT_STRING", "BYTES"),
}
_FROM_V2 = {v2: np.dtype(name) for name, (_, v2) in _TABLE.items()}


def tf_name(dtype: np.dtype) -> str:
    """``DT_FLOAT`` for float32 and so on (``DT_INVALID`` when unknown)."""
    return _TABLE.get(np.dtype(dtype).name, ("DT_INVALID", ""))[0]


def v2_name(dtype: np.dtype) -> str:
    """``FP32`` for float32 and so on (``BYTES`` for strings)."""
    return _TABLE.get(np.dtype(dtype).name, ("", "BYTES"))[1]


def from_v2(datatype: str) -> np.dtype | None:
    """The numpy dtype of a v2 datatype name, None when unknown."""
    return _FROM_V2.get(datatype)
