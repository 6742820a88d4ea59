"""The Triton extensions of ``/v2`` that tritonclient calls: model configuration,
repository index and statistics, answered from what ``kva serve`` actually serves.

- ``GET /v2/models/<m>[/versions/<v>]/config``: Triton's model configuration
  (``get_model_config``). ``max_batch_size`` is 0: the dims are the model's
  whole shapes, batch dimension included (-1 where dynamic).
- ``POST /v2/repository/index`` (``get_model_repository_index``): every
  configured model, one entry per loaded version (``READY``), or one
  ``UNAVAILABLE`` entry while none is loaded; ``{"ready": true}`` keeps the ready ones.
- ``GET /v2/models/stats``, ``/v2/models/<m>[/versions/<v>]/stats``
  (``get_inference_statistics``): see :mod:`kva.tfserving.stats`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from kva.dtypes import v2_name
from kva.tfserving.errors import InvalidArgument
from kva.tfserving.model_config import VersionPolicy
from kva.tfserving.rest import json_response, request_body, runtime, set_model
from kva.tfserving.tensors import TensorInfo, parse_json
from kva.tfserving.v2 import resolve_model

blueprint = Blueprint("v2_extensions", __name__, url_prefix="/v2")


@blueprint.get("/models/<name>/config")
@blueprint.get("/models/<name>/versions/<version>/config")
def model_config(name: str, version: str | None = None) -> Response:
    servable = resolve_model(name, version)
    config = runtime().manager.state(name).config
    return json_response(
        {
            "name": name,
            "platform": "openvino",
            "backend": "openvino",
            "max_batch_size": 0,
            "input": [_tensor_config(info) for info in servable.inputs.values()],
            "output": [_tensor_config(info) for info in servable.outputs.values()],
            "version_policy": _policy(config.policy),
        }
    )


@blueprint.post("/repository/index")
def repository_index() -> Response:
    set_model("", "v2")
    body = request_body()
    options = parse_json(body) if body.strip() else {}
    if not isinstance(options, dict) or not isinstance(options.get("ready", False), bool):
        raise InvalidArgument('Request body must be a JSON object, with "ready" a boolean')
    only_ready = options.get("ready", False)
    index: list[dict[str, str]] = []
    for name, state in sorted(runtime().manager.models.items()):
        if state.versions:
            index += [{"name": name, "version": str(v), "state": "READY"} for v in state.versions]
        elif not only_ready:
            index.append(
                {"name": name, "version": "", "state": "UNAVAILABLE", "reason": "no version loaded"}
            )
    return json_response(index)


@blueprint.get("/models/stats")
def all_stats() -> Response:
    set_model("", "v2")
    rt = runtime()
    entries = [
        rt.stats.snapshot(name, version)
        for name, state in sorted(rt.manager.models.items())
        for version in sorted(state.versions)
    ]
    return json_response({"model_stats": entries})


@blueprint.get("/models/<name>/stats")
@blueprint.get("/models/<name>/versions/<version>/stats")
def model_stats(name: str, version: str | None = None) -> Response:
    servable = resolve_model(name, version)
    rt = runtime()
    versions = [servable.version] if version else sorted(rt.manager.state(name).versions)
    return json_response({"model_stats": [rt.stats.snapshot(name, v) for v in versions]})


def _tensor_config(info: TensorInfo) -> dict[str, Any]:
    datatype = v2_name(info.dtype)
    dims = list(info.shape) if info.shape is not None else [-1]
    return {"name": info.name, "data_type": f"TYPE_{_TRITON_TYPES.get(datatype, datatype)}",
            "dims": dims}  # fmt: skip


#: KServe v2 datatype -> the suffix of Triton's ``TYPE_*`` where the two differ.
_TRITON_TYPES = {"BYTES": "STRING"}


def _policy(policy: VersionPolicy) -> dict[str, Any]:
    if policy.kind == "all":
        return {"all": {}}
    if policy.kind == "specific":
        return {"specific": {"versions": [str(v) for v in policy.versions]}}
    return {"latest": {"num_versions": policy.num_versions}}
