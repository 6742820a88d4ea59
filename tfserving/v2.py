"""KServe v2 / Open Inference Protocol REST (``/v2``), with the binary tensor extension.

Binary extension: with header ``Inference-Header-Content-Length: N`` the
first N body bytes are the JSON header and the raw tensor bytes follow, in
input order, for each input whose ``parameters.binary_data_size`` is set.
``BYTES`` elements are each prefixed by their 4-byte little-endian length.
For an image model a ``BYTES`` input of shape ``[N]`` holds N encoded
JPEG/PNG images (in JSON: base64 strings or ``{"b64": ...}``).
Outputs come back in binary when the request sets ``binary_data_output`` or
an output's ``binary_data`` parameter.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from flask import Blueprint, Response, request

from kva import __version__
from kva.dtypes import v2_name
from kva.tfserving.errors import InvalidArgument, NotFound
from kva.tfserving.rest import json_response, request_body, runtime, set_model
from kva.tfserving.servable import Servable
from kva.tfserving.tensors import (
    ImageDecoder,
    TensorInfo,
    decode_b64,
    is_b64,
    parse_json,
    to_json,
    to_tensor,
)
from kva.tfserving.v2_codec import (
    check_shape,
    decode_images,
    from_raw,
    model_dtype,
    raw_elements,
    takes_images,
    tensor_meta,
    to_raw,
)

HEADER = "Inference-Header-Content-Length"
blueprint = Blueprint("v2", __name__, url_prefix="/v2")


@blueprint.get("/health/live")
def live() -> Response:
    set_model("", "v2")
    return json_response({"live": True})


@blueprint.get("/health/ready")
def ready() -> Response:
    set_model("", "v2")
    ok = runtime().manager.ready()
    return json_response({"ready": ok}, 200 if ok else 503)


@blueprint.get("")
def server_metadata() -> Response:
    set_model("", "v2")
    return json_response(
        {"name": "kva", "version": __version__, "extensions": ["binary_tensor_data", "kva_labels"]}
    )


@blueprint.get("/models/<name>")
@blueprint.get("/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None) -> Response:
    servable = resolve_model(name, version)
    state = runtime().manager.state(name)
    return json_response(
        {
            "name": name,
            "versions": [str(v) for v in sorted(state.versions)],
            "platform": "openvino",
            "inputs": [tensor_meta(info) for info in servable.inputs.values()],
            "outputs": [tensor_meta(info) for info in servable.outputs.values()],
        }
    )


@blueprint.get("/models/<name>/ready")
@blueprint.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None) -> Response:
    resolve_model(name, version)
    ok = runtime().manager.model_ready(name)
    return json_response({"name": name, "ready": ok}, 200 if ok else 503)


@blueprint.get("/models/<name>/labels")
def labels(name: str) -> Response:
    servable = resolve_model(name, None)
    if servable.labels is None:
        raise NotFound(f"model {name} has no class labels")
    return json_response(servable.labels)


@blueprint.post("/models/<name>/infer")
@blueprint.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> Response:
    rt = runtime()
    body = request_body()
    header, binary = _split(body, request.headers.get(HEADER))
    servable = resolve_model(name, version)
    if not isinstance(header, dict):
        raise InvalidArgument("Request body must be a JSON object")
    wanted = _requested_outputs(header, servable)
    outputs = rt.execute(servable, lambda: _inputs(header, binary, servable, rt.image_decoder()))
    return _response(header, servable, outputs, wanted)


def resolve_model(name: str, version: str | None) -> Servable:
    """The servable a ``/v2`` URL names (its version as written in the path); labels metrics."""
    set_model(name, "v2")
    number = None
    if version is not None:
        if not (version.isascii() and version.isdigit()) or int(version) > 2**63 - 1:
            raise InvalidArgument(f"version must be a positive integer, got {version!r}")
        number = int(version)
    return runtime().manager.resolve(name, number)


def _split(body: bytes, header_length: str | None) -> tuple[Any, bytes]:
    if header_length is None:
        return parse_json(body), b""
    text = header_length.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > len(body):
        raise InvalidArgument(
            f"{HEADER} must be a number of bytes no larger than the body ({len(body)})"
        )
    size = int(text)
    return parse_json(body[:size]), body[size:]


def _requested_outputs(header: dict[str, Any], servable: Servable) -> dict[str, bool]:
    """Output name -> send as binary."""
    params = _params(header, "request")
    default_binary = bool(params.get("binary_data_output", False))
    requested = header.get("outputs")
    if requested is None:
        return dict.fromkeys(servable.outputs, default_binary)
    if not isinstance(requested, list):
        raise InvalidArgument("'outputs' must be a list of objects with a 'name'")
    wanted: dict[str, bool] = {}
    for item in requested:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidArgument("'outputs' must be a list of objects with a 'name'")
        if item["name"] not in servable.outputs:
            known = ", ".join(servable.outputs)
            raise InvalidArgument(f"unknown output '{item['name']}' (the model has: {known})")
        wanted[item["name"]] = bool(_params(item, "output").get("binary_data", default_binary))
    return wanted


def _params(item: dict[str, Any], where: str) -> dict[str, Any]:
    params = item.get("parameters", {})
    if not isinstance(params, dict):
        raise InvalidArgument(f"{where} 'parameters' must be an object")
    return params


def _inputs(
    header: dict[str, Any], binary: bytes, servable: Servable, decode: ImageDecoder
) -> dict[str, np.ndarray]:
    items = header.get("inputs")
    if not isinstance(items, list) or not items:
        raise InvalidArgument("'inputs' must be a non-empty list of tensors")
    feeds: dict[str, np.ndarray] = {}
    offset = 0
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidArgument("each input must be an object with a 'name'")
        name = item["name"]
        info = servable.inputs.get(name)
        if info is None:
            raise InvalidArgument(
                f"unknown input '{name}' (the model has: {', '.join(servable.inputs)})"
            )
        if name in feeds:
            raise InvalidArgument(f"input '{name}' given twice")
        size = _params(item, f"input '{name}'").get("binary_data_size")
        chunk: bytes | None = None
        if size is not None:
            if (
                not isinstance(size, int)
                or isinstance(size, bool)
                or size < 0
                or offset + size > len(binary)
            ):
                raise InvalidArgument(f"input '{name}': binary_data_size does not fit the body")
            chunk, offset = binary[offset : offset + size], offset + size
        feeds[name] = _tensor(item, info, chunk, decode)
    if offset != len(binary):
        raise InvalidArgument(f"{len(binary) - offset} bytes after the last binary input")
    missing = set(servable.inputs) - set(feeds)
    if missing:
        raise InvalidArgument(f"missing inputs: {', '.join(sorted(missing))}")
    return feeds


def _tensor(
    item: dict[str, Any], info: TensorInfo, chunk: bytes | None, decode: ImageDecoder
) -> np.ndarray:
    name, datatype = info.name, item.get("datatype")
    shape = check_shape(name, item.get("shape"))
    count = math.prod(shape)
    if takes_images(datatype, info):
        if chunk is not None:
            elements = raw_elements(name, chunk, count)
        else:
            elements = _b64_elements(item, count, name)
        return decode_images(name, shape, elements, info, decode)
    dtype = model_dtype(name, datatype, info)
    if chunk is not None:
        return from_raw(name, chunk, shape, dtype)
    data = item.get("data")
    if data is None:
        raise InvalidArgument(f"input '{name}': no 'data' and no binary_data_size")
    array = to_tensor(data, TensorInfo(name, dtype, None), decode)
    if array.size != count:
        raise InvalidArgument(f"input '{name}': {array.size} values for shape {shape}")
    return array.reshape(shape)


def _b64_elements(item: dict[str, Any], count: int, name: str) -> list[bytes]:
    data = item.get("data")
    data = data if isinstance(data, list) else [data]
    elements = []
    for value in _flatten(data):
        if not (is_b64(value) or isinstance(value, str)):
            raise InvalidArgument(f"input '{name}': BYTES data must be base64 strings")
        elements.append(decode_b64(value if is_b64(value) else {"b64": value}))
    if len(elements) != count:
        raise InvalidArgument(f"input '{name}': expected {count} BYTES elements")
    return elements


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for value in data:
        flat.extend(_flatten(value) if isinstance(value, list) else [value])
    return flat


def _response(
    header: dict[str, Any],
    servable: Servable,
    outputs: dict[str, np.ndarray],
    wanted: dict[str, bool],
) -> Response:
    described: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in wanted.items():
        array = outputs[name]
        entry: dict[str, Any] = {
            "name": name,
            "datatype": v2_name(array.dtype),
            "shape": list(array.shape),
        }
        if binary:
            blob = to_raw(array)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = to_json(array.reshape(-1), name, b64_bytes_names=False)
        described.append(entry)
    body: dict[str, Any] = {"model_name": servable.name, "model_version": str(servable.version)}
    if "id" in header:
        body["id"] = header["id"]
    body["outputs"] = described
    if not blobs:
        return json_response(body)
    head = json.dumps(body, separators=(",", ":")).encode()
    response = Response(head + b"".join(blobs), mimetype="application/octet-stream")
    response.headers[HEADER] = str(len(head))
    return response
