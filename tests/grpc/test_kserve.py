"""KServe v2 gRPC on ``kva serve --port`` with kva's own messages (no tritonclient needed).

The conformance suite (``tests/conformance/test_tritonclient_grpc.py``) runs the
real client; these check what needs no client: the limits shared with TF
Serving's gRPC on the same port, and TF Serving's conformance model names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kva import kserve_grpc_api
from tests.grpc.conftest import GrpcServe

TWO = "saved_model_half_plus_two_2_versions"


def _infer(s: GrpcServe, request: Any) -> Any:
    api = kserve_grpc_api.load()
    call = s.channel.unary_unary(
        f"/{kserve_grpc_api.SERVICE}/ModelInfer",
        request_serializer=type(request).SerializeToString,
        response_deserializer=api.message("ModelInferResponse").FromString,
    )
    return call(request, timeout=30)


def _request(x: np.ndarray, version: str = "") -> Any:
    api = kserve_grpc_api.load()
    request = api.message("ModelInferRequest")(model_name=TWO, model_version=version)
    request.inputs.add(name="x", datatype="FP32", shape=list(x.shape))
    request.raw_input_contents.append(x.astype("<f4").tobytes())
    return request


def test_version_label_model_and_version_zero(grpc_server: GrpcServe) -> None:
    """The model with a version policy: "" and "0" are its only version, 123."""
    for version in ("", "0", "123"):
        reply = _infer(grpc_server, _request(np.array([[1.0], [3.0]], np.float32), version))
        assert reply.model_version == "123"
        assert np.frombuffer(reply.raw_output_contents[0], "<f4").tolist() == [2.5, 3.5]


def test_oversized_message_is_resource_exhausted(grpc_server: GrpcServe) -> None:
    """--max_request_bytes (1 MiB here) caps KServe messages as it caps Predict."""
    grpc = grpc_server.api.grpc
    with pytest.raises(grpc.RpcError) as caught:
        _infer(grpc_server, _request(np.zeros((300_000, 1), np.float32)))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    reply = _infer(grpc_server, _request(np.ones((1, 1), np.float32)))
    assert np.frombuffer(reply.raw_output_contents[0], "<f4").tolist() == [2.5]
