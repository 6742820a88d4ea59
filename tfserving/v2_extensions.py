"""The Triton extensions of ``/v2`` that tritonclient calls (answers built by
:mod:`kva.tfserving.triton_info`, shared with KServe v2 gRPC).

- ``GET /v2/models/<m>[/versions/<v>]/config``: Triton's model configuration
  (``get_model_config``).
- ``POST /v2/repository/index`` (``get_model_repository_index``);
  ``{"ready": true}`` keeps the ready versions.
- ``GET /v2/models/stats``, ``/v2/models/<m>[/versions/<v>]/stats``
  (``get_inference_statistics``): see :mod:`kva.tfserving.stats`.
"""

from __future__ import annotations

from flask import Blueprint, Response

from kva.tfserving import triton_info
from kva.tfserving.errors import InvalidArgument
from kva.tfserving.rest import json_response, request_body, runtime, set_model
from kva.tfserving.tensors import parse_json
from kva.tfserving.v2 import resolve_model

blueprint = Blueprint("v2_extensions", __name__, url_prefix="/v2")


@blueprint.get("/models/<name>/config")
@blueprint.get("/models/<name>/versions/<version>/config")
def model_config(name: str, version: str | None = None) -> Response:
    servable = resolve_model(name, version)
    return json_response(triton_info.model_config(runtime(), servable))


@blueprint.post("/repository/index")
def repository_index() -> Response:
    set_model("", "v2")
    body = request_body()
    options = parse_json(body) if body.strip() else {}
    if not isinstance(options, dict) or not isinstance(options.get("ready", False), bool):
        raise InvalidArgument('Request body must be a JSON object, with "ready" a boolean')
    return json_response(triton_info.repository_index(runtime(), options.get("ready", False)))


@blueprint.get("/models/stats")
def all_stats() -> Response:
    set_model("", "v2")
    return json_response(triton_info.all_stats(runtime()))


@blueprint.get("/models/<name>/stats")
@blueprint.get("/models/<name>/versions/<version>/stats")
def model_stats(name: str, version: str | None = None) -> Response:
    servable = resolve_model(name, version)
    return json_response(triton_info.model_stats(runtime(), servable, bool(version)))
