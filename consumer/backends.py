"""REST inference backends: TF Serving ``/v1`` and KServe ``/v2``; and the choice of backend.

A REST backend talks to **one replica** (one URL) through its own pooled
``requests.Session`` with explicit connect/read timeouts and a cap on the
response size. Failures raise :class:`~kva.consumer.errors.InferenceError` with a
``retriable`` flag. :func:`backend_for_url` picks the protocol from the URL
(REST here, TF Serving gRPC from :mod:`~kva.consumer.grpc_backend`, KServe v2 gRPC
from :mod:`~kva.consumer.kserve_grpc_backend`).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import requests
from requests.adapters import HTTPAdapter

from kva import dtypes
from kva.consumer.backend_api import Backend, ModelInfo, Outputs, Payload, model_info
from kva.consumer.config import check_replica_url
from kva.consumer.errors import InferenceError, MetadataError, shorten
from kva.consumer.v2_tensors import V2Input, V2Tensor, decode_outputs

#: Largest answer read from a model server (a classifier answer is < 1 kB).
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
#: Largest labels document.
MAX_LABELS_BYTES = 4 * 1024 * 1024


class RestBackend(Backend):
    """One replica of one model, over HTTP."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 2.0,
        pool_size: int = 4,
    ) -> None:
        check_replica_url(url)
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        segments = [s for s in parts.path.split("/") if s]
        self.model_name = segments[2]
        self.server = f"{parts.scheme}://{parts.netloc}"
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "kva-consume"

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def labels(self) -> list[str] | None:
        """The kva labels extension ``GET .../models/<m>/labels``; None when there are none."""
        url = f"{self.server}/{self.protocol}/models/{self.model_name}/labels"
        status, body, _headers = self._request("GET", url, limit=MAX_LABELS_BYTES, ok=(200, 404))
        if status == 404:
            return None
        document = _json(body, url)
        if not isinstance(document, list) or not all(isinstance(x, str) for x in document):
            raise InferenceError(
                "bad_response", f"{url}: labels are not a JSON list of strings", retriable=False
            )
        return document

    def _request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        limit: int = MAX_RESPONSE_BYTES,
        ok: tuple[int, ...] = (200,),
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """One HTTP exchange with timeouts and a size cap; returns (status, body, headers)."""
        try:
            with self.session.request(
                method, url, data=body, headers=headers, timeout=self.timeout, stream=True
            ) as response:
                content = _read_limited(response, limit, url, deadline=self._deadline())
                status = response.status_code
                response_headers = response.headers
        except requests.exceptions.ConnectTimeout as exc:
            raise InferenceError("timeout", f"{url}: connect timed out", retriable=True) from exc
        except requests.exceptions.Timeout as exc:
            raise InferenceError("timeout", f"{url}: read timed out", retriable=True) from exc
        except requests.exceptions.RequestException as exc:
            reason = "timeout" if "timed out" in str(exc) else "connect"
            raise InferenceError(reason, f"{url}: {shorten(exc)}", retriable=True) from exc
        if status not in ok:
            detail = _error_text(content)
            if status >= 500 or status == 429:
                raise InferenceError("http_5xx", f"{url}: HTTP {status} {detail}", retriable=True)
            raise InferenceError("http_4xx", f"{url}: HTTP {status} {detail}", retriable=False)
        return status, content, response_headers

    def _deadline(self) -> float:
        return time.monotonic() + self.timeout[0] + self.timeout[1]


class TfServingBackend(RestBackend):
    """TF Serving REST ``/v1``: status, metadata, ``:predict`` with ``{"b64"}`` images."""

    protocol = "v1"

    def ready(self) -> bool:
        try:
            _status, body, _headers = self._request("GET", self.url, limit=64 * 1024)
            states = _json(body, self.url).get("model_version_status", [])
            return any(s.get("state") == "AVAILABLE" for s in states if isinstance(s, dict))
        except (InferenceError, AttributeError):
            return False

    def metadata(self) -> ModelInfo:
        url = f"{self.url}/metadata"
        _status, body, _headers = self._request("GET", url)
        document = _json(body, url)
        try:
            signatures = document["metadata"]["signature_def"]["signature_def"]
            signature = signatures.get("serving_default") or next(iter(signatures.values()))
            inputs, outputs = signature["inputs"], signature["outputs"]
        except (KeyError, TypeError, AttributeError, StopIteration) as exc:
            raise MetadataError(f"{url}: no signature_def with inputs and outputs") from exc
        try:
            shapes = [
                (
                    name,
                    [int(d.get("size", -1)) for d in t.get("tensor_shape", {}).get("dim", [])],
                    _tf_dtype(t.get("dtype")),
                )
                for name, t in inputs.items()
            ]
        except (TypeError, AttributeError, ValueError) as exc:
            raise MetadataError(f"{url}: input shapes are not TF Serving's") from exc
        return model_info(self.model_name, url, shapes, outputs)

    def infer(self, info: ModelInfo, payload: Payload) -> Outputs:
        url = f"{self.url}:predict"
        if isinstance(payload, bytes):
            request: Any = {"instances": [{"b64": base64.b64encode(payload).decode("ascii")}]}
        else:  # TF Serving's REST has only JSON for a tensor: the columnar form
            request = {"inputs": {info.input_name: payload.tolist()}}
        _status, body, _headers = self._request(
            "POST",
            url,
            body=json.dumps(request).encode(),
            headers={"Content-Type": "application/json"},
        )
        document = _json(body, url)
        return _v1_outputs(document, info, url)


def _v1_outputs(document: Any, info: ModelInfo, url: str) -> Outputs:
    """Parse a row (``predictions``) or columnar (``outputs``) predict answer for batch 1."""
    try:
        if "predictions" in document:
            row = document["predictions"][0]
            if not isinstance(row, dict):
                raise TypeError("prediction is not an object of named outputs")
            return {name: np.asarray(row[name]) for name in info.outputs}
        outputs = document["outputs"]
        return {name: np.asarray(outputs[name])[0] for name in info.outputs}
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise InferenceError(
            "bad_response", f"{url}: unexpected predict answer ({shorten(exc)})", retriable=True
        ) from exc


class KServeBackend(RestBackend):
    """KServe v2 REST: ``/v2/health/ready``, model metadata, ``/infer`` with binary BYTES."""

    protocol = "v2"

    def ready(self) -> bool:
        try:
            self._request("GET", f"{self.server}/v2/health/ready", limit=64 * 1024)
            return True
        except InferenceError:
            return False

    #: Whether the server takes the binary tensor extension (None: not asked yet).
    binary: bool | None = None

    def metadata(self) -> ModelInfo:
        self.binary = self._takes_binary()
        _status, body, _headers = self._request("GET", self.url)
        document = _json(body, self.url)
        try:
            inputs = [
                (str(i["name"]), [int(d) for d in i["shape"]], dtypes.from_v2(str(i["datatype"])))
                for i in document["inputs"]
            ]
            names = [str(o["name"]) for o in document["outputs"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise MetadataError(f"{self.url}: metadata lacks inputs/outputs") from exc
        return model_info(self.model_name, self.url, inputs, names)

    def _takes_binary(self) -> bool:
        """False when the server's metadata lists its extensions without
        ``binary_tensor_data`` (MLServer); True otherwise (kva serve, Triton, OVMS)."""
        try:
            _status, body, _headers = self._request("GET", f"{self.server}/v2", limit=64 * 1024)
            extensions = _json(body, self.server).get("extensions")
        except (InferenceError, AttributeError):
            return True
        return not isinstance(extensions, list) or "binary_tensor_data" in extensions

    def infer(self, info: ModelInfo, payload: Payload) -> Outputs:
        if self.binary is None:  # a replica that was down when the model's metadata was read
            self.binary = self._takes_binary()
        if self.binary is False:
            return self._infer_json(info, payload)
        url = f"{self.url}/infer"
        tensor = V2Input.of(payload)
        header = {
            "inputs": [
                {
                    "name": info.input_name,
                    "shape": tensor.shape,
                    "datatype": tensor.datatype,
                    "parameters": {"binary_data_size": len(tensor.raw)},
                }
            ],
            "outputs": [{"name": n, "parameters": {"binary_data": False}} for n in info.outputs],
        }
        head = json.dumps(header).encode()
        _status, body, headers = self._request(
            "POST",
            url,
            body=head + tensor.raw,
            headers={
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(head)),
            },
        )
        json_length = headers.get("Inference-Header-Content-Length")
        return _v2_outputs(body, json_length, info, url)

    def _infer_json(self, info: ModelInfo, payload: Payload) -> Outputs:
        """The request without the binary extension: values as JSON ``data`` (a JPEG as
        one base64 string)."""
        url = f"{self.url}/infer"
        if isinstance(payload, bytes):
            data: list[Any] = [base64.b64encode(payload).decode("ascii")]
            described: dict[str, Any] = {"shape": [1], "datatype": "BYTES", "data": data}
        else:
            described = {
                "shape": list(payload.shape),
                "datatype": dtypes.v2_name(payload.dtype),
                "data": payload.ravel().tolist(),
            }
        request = {
            "inputs": [{"name": info.input_name, **described}],
            "outputs": [{"name": n} for n in info.outputs],
        }
        _status, body, _headers = self._request(
            "POST", url, body=json.dumps(request).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        return _v2_outputs(body, None, info, url)


def _v2_outputs(body: bytes, json_length: str | None, info: ModelInfo, url: str) -> Outputs:
    """Parse a v2 infer answer (JSON, or JSON header + binary tensors) for batch 1."""
    try:
        split = int(json_length) if json_length else len(body)
        document = _json(body[:split], url)
        binary = body[split:]
        tensors: list[V2Tensor] = []
        for output in document["outputs"]:
            name, datatype, shape = str(output["name"]), str(output["datatype"]), output["shape"]
            size = (output.get("parameters") or {}).get("binary_data_size")
            if size is None:
                tensors.append(V2Tensor(name, datatype, shape, values=output["data"]))
                continue
            tensors.append(V2Tensor(name, datatype, shape, raw=binary[: int(size)]))
            binary = binary[int(size) :]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise InferenceError(
            "bad_response", f"{url}: unexpected infer answer ({shorten(exc)})", retriable=True
        ) from exc
    return decode_outputs(tensors, info, url)


def _tf_dtype(name: object) -> np.dtype | None:
    found = dtypes.of_tf(name) if isinstance(name, str) else None
    return None if found is None else found.numpy


def backend_for_url(url: str, **kwargs: Any) -> Backend:
    """The backend speaking the protocol of ``url``: the table
    :data:`~kva.consumer.config.REPLICA_PROTOCOLS` (``/v1/...``, ``/v2/...``, ``grpc://``,
    ``kserve+grpc://``, ``openvino:``).

    Raises:
        ValueError: ``url`` is none of them (:func:`~kva.consumer.config.check_replica_url`).
    """
    check_replica_url(url)
    scheme = urlsplit(url).scheme
    if scheme == "openvino":
        from kva.consumer.openvino_backend import OpenVinoBackend  # openvino, [serve]

        return OpenVinoBackend(url, **kwargs)
    if scheme == "grpc":
        from kva.consumer.grpc_backend import GrpcBackend  # needs the optional [grpc] extra

        return GrpcBackend(url, **kwargs)
    if scheme == "kserve+grpc":
        from kva.consumer.kserve_grpc_backend import KServeGrpcBackend  # grpcio, protobuf

        return KServeGrpcBackend(url, **kwargs)
    segments = [s for s in urlsplit(url).path.split("/") if s]
    return TfServingBackend(url, **kwargs) if segments[0] == "v1" else KServeBackend(url, **kwargs)


def _read_limited(response: requests.Response, limit: int, url: str, deadline: float) -> bytes:
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise InferenceError(
            "bad_response", f"{url}: answer of {length} bytes > {limit}", retriable=True
        )
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_content(64 * 1024):
        total += len(chunk)
        if total > limit:
            raise InferenceError("bad_response", f"{url}: answer > {limit} bytes", retriable=True)
        if time.monotonic() > deadline:
            raise InferenceError("timeout", f"{url}: answer too slow", retriable=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes, url: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InferenceError(
            "bad_response", f"{url}: answer is not JSON ({shorten(exc)})", retriable=True
        ) from exc


def _error_text(body: bytes) -> str:
    try:
        message = json.loads(body).get("error", "")
    except (ValueError, UnicodeDecodeError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    return str(message)[:200]
