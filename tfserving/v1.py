"""TensorFlow Serving's REST API (``/v1``): status, metadata, predict, classify, regress.

Routing follows TF Serving's own regular expressions (case-insensitive): a
path under ``/v1/`` that matches neither the POST nor the GET pattern is a
400 "Malformed request"; a path outside ``/v1/`` is a 404.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from flask import Response, request

from kva.tfserving.errors import InvalidArgument, NotFound
from kva.tfserving.examples import classify, regress
from kva.tfserving.rest import json_response, request_body, runtime, set_model
from kva.tfserving.servable import Servable
from kva.tfserving.signatures import DEFAULT_SIGNATURE, json_names, signature_defs
from kva.tfserving.tensors import decode_predict_request, encode_predict_response, parse_json

_VERSION_OR_LABEL = r"(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
POST_RE = re.compile(
    rf"/v1/models/([^/:]+){_VERSION_OR_LABEL}:(classify|regress|predict)", re.I | re.A
)
GET_RE = re.compile(rf"/v1/models(?:/([^/:]+))?{_VERSION_OR_LABEL}(?:/(metadata))?", re.I | re.A)
LABELS_RE = re.compile(r"/v1/models/([^/:]+)/labels", re.I)
V1_RE = re.compile(r"/v1/.*", re.I | re.S)
_INT64_MAX = 2**63 - 1


def dispatch(path: str = "") -> Response:
    """Route any request not taken by another rule (registered as the app's fallback)."""
    path = request.path
    if V1_RE.fullmatch(path) is None:
        raise NotFound(f"Not found: {path}")
    set_model("", "v1")
    if request.method == "GET" and (match := LABELS_RE.fullmatch(path)):
        return _labels(match.group(1))
    if request.method == "POST" and (match := POST_RE.fullmatch(path)):
        name, version, label, method = match.groups()
        set_model(name, "v1")
        return _post(name, _version(version), label, method.lower())
    if request.method == "GET" and (match := GET_RE.fullmatch(path)):
        name, version, label, sub = match.groups()
        set_model(name or "", "v1")
        if not name:
            raise InvalidArgument("Missing model name in request.")
        if sub:
            return _metadata(name, _version(version), label)
        return _status(name, _version(version), label)
    raise InvalidArgument(f"Malformed request: {request.method} {path}")


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    if int(text) > _INT64_MAX:
        raise InvalidArgument(f"Failed to convert version: {text} to numeric.")
    return int(text)


def _labels(name: str) -> Response:
    set_model(name, "v1")
    servable = runtime().manager.resolve(name)
    if servable.labels is None:
        raise NotFound(f"model {name} has no class labels")
    return json_response(servable.labels)


def _status(name: str, version: int | None, label: str | None) -> Response:
    versions = runtime().manager.status_versions(name, version, label)
    ok = {"error_code": "OK", "error_message": ""}
    return json_response(
        {
            "model_version_status": [
                {"version": str(v), "state": "AVAILABLE", "status": ok} for v in versions
            ]
        }  # fmt: skip
    )


def _metadata(name: str, version: int | None, label: str | None) -> Response:
    servable = runtime().manager.resolve(name, version, label)
    defs = signature_defs(servable)
    # TF Serving's spelling for its clients, and OVMS's (protobuf's JSON names) next to it
    # for ovmsclient's HTTP client: each reads its own keys and ignores the others.
    return json_response(
        {
            "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "modelSpec": {"name": name, "signatureName": "", "version": str(servable.version)},
            "metadata": {
                "signature_def": {
                    "signature_def": defs,
                    "signatureDef": json_names(defs),
                }
            },
        }
    )


def _post(name: str, version: int | None, label: str | None, method: str) -> Response:
    rt = runtime()
    body = parse_json(request_body())
    servable = rt.manager.resolve(name, version, label)
    if not isinstance(body, dict):
        raise InvalidArgument("Request body must be a JSON object")
    signature = body.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature, str):
        raise InvalidArgument("'signature_name' key must be a string value.")
    signature = signature or DEFAULT_SIGNATURE
    if method == "predict":
        if signature != DEFAULT_SIGNATURE:
            raise InvalidArgument(
                f'Serving signature name: "{signature}" not found in signature def'
            )

        def build() -> dict[str, np.ndarray]:
            feeds, _rows = decode_predict_request(body, servable.inputs, rt.image_decoder())
            return feeds

        outputs = rt.execute(servable, build)
        return json_response(encode_predict_response(outputs, row_format="instances" in body))
    return _classify_regress(servable, body, signature, method)


def _classify_regress(
    servable: Servable, body: dict[str, Any], signature: str, method: str
) -> Response:
    if method == "regress":
        return json_response({"results": regress(runtime(), servable, signature, body)})
    results = classify(runtime(), servable, signature, body)
    return json_response({"results": [[list(pair) for pair in row] for row in results]})
