"""A servable's signatures as TF Serving prints its ``SignatureDefMap``.

Shared by REST ``/v1/models/<m>/metadata`` (as JSON) and gRPC
``GetModelMetadata`` (the same document parsed into protobuf). TF Serving's REST
prints the proto field names (``tensor_shape``); OVMS prints protobuf's JSON names
(``tensorShape``), which is what ``ovmsclient``'s HTTP client reads:
:func:`json_names` gives that spelling.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kva.dtypes import tf_name
from kva.tfserving.servable import Servable
from kva.tfserving.tensors import TensorInfo

DEFAULT_SIGNATURE = "serving_default"
#: TF Serving's method name of each API.
METHODS = {"predict": "tensorflow/serving/predict", "classify": "tensorflow/serving/classify",
           "regress": "tensorflow/serving/regress"}  # fmt: skip


def signature_defs(servable: Servable) -> dict[str, Any]:
    """The servable's signatures as TF Serving prints a SignatureDefMap."""
    defs = {
        DEFAULT_SIGNATURE: _signature(servable.inputs, servable.outputs, METHODS["predict"]),
    }
    if len(servable.inputs) == 1 and len(servable.outputs) == 1:
        (output,) = servable.outputs.values()
        example = TensorInfo("tf_example", np.dtype(object), None)
        for signature, method in servable.example_signatures.items():
            key = "scores" if method == "classify" else "outputs"
            defs[signature] = _signature({"inputs": example}, {key: output}, METHODS[method])
    return defs


def _signature(inputs: dict[str, TensorInfo], outputs: dict[str, TensorInfo], method: str) -> Any:
    return {
        "inputs": {key: _tensor_info(info) for key, info in inputs.items()},
        "outputs": {key: _tensor_info(info) for key, info in outputs.items()},
        "method_name": method,
        "defaults": {},
    }


def _tensor_info(info: TensorInfo) -> dict[str, Any]:
    if info.shape is None:
        shape: dict[str, Any] = {"dim": [], "unknown_rank": True}
    else:
        dims = [{"size": str(size), "name": ""} for size in info.shape]
        shape = {"dim": dims, "unknown_rank": False}
    return {"dtype": tf_name(info.dtype), "tensor_shape": shape, "name": f"{info.name}:0"}


def json_names(defs: dict[str, Any]) -> dict[str, Any]:
    """``defs`` (from :func:`signature_defs`) with protobuf's JSON field names, as OVMS prints
    them: ``tensorShape``, ``unknownRank``, ``methodName``. Signature and tensor names stay."""

    def tensor(info: dict[str, Any]) -> dict[str, Any]:
        shape = info["tensor_shape"]
        return {
            "dtype": info["dtype"],
            "tensorShape": {"dim": shape["dim"], "unknownRank": shape["unknown_rank"]},
            "name": info["name"],
        }

    return {
        name: {
            "inputs": {key: tensor(info) for key, info in signature["inputs"].items()},
            "outputs": {key: tensor(info) for key, info in signature["outputs"].items()},
            "methodName": signature["method_name"],
            "defaults": signature["defaults"],
        }
        for name, signature in defs.items()
    }
