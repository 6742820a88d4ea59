"""Triton's extensions, answered from what ``kva serve`` serves: model configuration,
repository index and statistics, as JSON objects in Triton's own shape.

REST ``/v2`` sends them as they are (:mod:`kva.tfserving.v2_extensions`); KServe
v2 gRPC parses the same objects into its messages (:mod:`kva.tfserving.kserve_grpc`),
so the two protocols cannot drift apart.

- model configuration: ``max_batch_size`` is 0: the dims are the model's whole
  shapes, batch dimension included (-1 where dynamic);
- repository index: every configured model, one entry per loaded version
  (``READY``), or one ``UNAVAILABLE`` entry while none is loaded; ``only_ready``
  keeps the ready ones;
- statistics: see :mod:`kva.tfserving.stats`.
"""

from __future__ import annotations

from typing import Any

from kva.dtypes import v2_name
from kva.tfserving.model_config import VersionPolicy
from kva.tfserving.runtime import Runtime
from kva.tfserving.servable import Servable
from kva.tfserving.tensors import TensorInfo

#: KServe v2 datatype -> the suffix of Triton's ``TYPE_*`` where the two differ.
_TRITON_TYPES = {"BYTES": "STRING"}


def model_config(rt: Runtime, servable: Servable) -> dict[str, Any]:
    """Triton's model configuration of ``servable``'s model."""
    config = rt.manager.state(servable.name).config
    return {
        "name": servable.name,
        "platform": "openvino",
        "backend": "openvino",
        "max_batch_size": 0,
        "input": [_tensor_config(info) for info in servable.inputs.values()],
        "output": [_tensor_config(info) for info in servable.outputs.values()],
        "version_policy": _policy(config.policy),
    }


def repository_index(rt: Runtime, only_ready: bool) -> list[dict[str, str]]:
    """Every configured model with the state of its versions."""
    index: list[dict[str, str]] = []
    for name, state in sorted(rt.manager.models.items()):
        if state.versions:
            index += [{"name": name, "version": str(v), "state": "READY"} for v in state.versions]
        elif not only_ready:
            index.append(
                {"name": name, "version": "", "state": "UNAVAILABLE", "reason": "no version loaded"}
            )
    return index


def all_stats(rt: Runtime) -> dict[str, Any]:
    """The statistics of every loaded version of every model."""
    entries = [
        rt.stats.snapshot(name, version)
        for name, state in sorted(rt.manager.models.items())
        for version in sorted(state.versions)
    ]
    return {"model_stats": entries}


def model_stats(rt: Runtime, servable: Servable, one_version: bool) -> dict[str, Any]:
    """The statistics of ``servable`` alone, or of every loaded version of its model."""
    name = servable.name
    versions = [servable.version] if one_version else sorted(rt.manager.state(name).versions)
    return {"model_stats": [rt.stats.snapshot(name, v) for v in versions]}


def _tensor_config(info: TensorInfo) -> dict[str, Any]:
    datatype = v2_name(info.dtype)
    dims = list(info.shape) if info.shape is not None else [-1]
    return {"name": info.name, "data_type": f"TYPE_{_TRITON_TYPES.get(datatype, datatype)}",
            "dims": dims}  # fmt: skip


def _policy(policy: VersionPolicy) -> dict[str, Any]:
    if policy.kind == "all":
        return {"all": {}}
    if policy.kind == "specific":
        return {"specific": {"versions": [str(v) for v in policy.versions]}}
    return {"latest": {"num_versions": policy.num_versions}}
