"""KServe v2 tensors as the consumer sends and reads them, over REST ``/v2`` and gRPC.

The one place where both KServe backends (:class:`~kva.consumer.backends.KServeBackend`
and :class:`~kva.consumer.kserve_grpc_backend.KServeGrpcBackend`) meet: the frame goes
out as one ``BYTES`` element (the encoded JPEG behind its 4-byte little-endian length,
which is what the binary extension and ``raw_input_contents`` both carry), or a tensor
as its raw little-endian values (:class:`V2Input`); an answer's
outputs, each a :class:`V2Tensor` with its values raw (little-endian bytes) or listed,
become the batch-1 :data:`~kva.consumer.backend_api.Outputs` of the model.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kva import dtypes
from kva.consumer.backend_api import ModelInfo, Outputs, Payload
from kva.consumer.errors import InferenceError, shorten


@dataclass(frozen=True, slots=True)
class V2Tensor:
    """One output of a v2 infer answer: name, datatype, shape and its values.

    Attributes:
        raw: the values as little-endian bytes (binary extension, ``raw_output_contents``).
        values: the values as a list (JSON ``data``, typed ``contents``), when not raw.
    """

    name: str
    datatype: str
    shape: Sequence[Any]
    raw: bytes | None = None
    values: Sequence[Any] | None = None


def bytes_element(data: bytes) -> bytes:
    """One ``BYTES`` element: ``data`` behind its 4-byte little-endian length."""
    return struct.pack("<I", len(data)) + data


@dataclass(frozen=True, slots=True)
class V2Input:
    """The frame as a v2 input: its datatype, shape and raw bytes (binary extension,
    ``raw_input_contents``)."""

    datatype: str
    shape: list[int]
    raw: bytes

    @classmethod
    def of(cls, payload: Payload) -> V2Input:
        """A JPEG as one ``BYTES`` element of shape ``[1]``; a tensor as its raw values."""
        if isinstance(payload, bytes):
            return cls("BYTES", [1], bytes_element(payload))
        little = payload.astype(payload.dtype.newbyteorder("<"), copy=False)
        return cls(dtypes.v2_name(payload.dtype), list(payload.shape), little.tobytes())


def decode_outputs(tensors: Iterable[V2Tensor], info: ModelInfo, where: str) -> Outputs:
    """The outputs ``info`` names, batch dimension removed.

    Raises:
        InferenceError: an output is missing, of a datatype that is not a number, or its
            values do not fill its shape (``bad_response``, retriable: another replica
            may answer well).
    """
    found = {tensor.name: tensor for tensor in tensors}
    missing = [name for name in info.outputs if name not in found]
    if missing:
        raise InferenceError(
            "bad_response", f"{where}: infer answer lacks outputs {missing}", retriable=True
        )
    try:
        return {name: _array(found[name]) for name in info.outputs}
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise InferenceError(
            "bad_response", f"{where}: unexpected infer answer ({shorten(exc)})", retriable=True
        ) from exc


def _array(tensor: V2Tensor) -> np.ndarray:
    shape = [int(d) for d in tensor.shape]
    dtype = numeric_dtype(tensor.datatype)
    if tensor.raw is not None:
        array = np.frombuffer(tensor.raw, dtype=dtype.newbyteorder("<")).astype(dtype)
    elif tensor.values is not None:
        array = np.asarray(tensor.values, dtype=dtype)
    else:
        raise ValueError(f"output {tensor.name!r} has no values")
    return array.reshape(shape)[0]


def numeric_dtype(datatype: str) -> np.dtype:
    """The numpy dtype of a numeric v2 output (model outputs here are never strings).

    Raises:
        KeyError: a string or unknown datatype.
    """
    dtype = dtypes.from_v2(datatype)
    if dtype is None or dtype == np.dtype(object):
        raise KeyError(f"unsupported output datatype {datatype}")
    return dtype
