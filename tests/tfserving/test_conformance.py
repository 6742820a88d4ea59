"""TF Serving REST conformance: every case of the examples file against ``kva serve``.

``data/tfserving-rest-examples.json`` holds request/response pairs taken from
TensorFlow Serving's own tests and docs (half_plus_two / half_plus_three).
HTTP-level cases run over real HTTP; tensor-codec cases exercise the JSON
codec directly (their signatures need string inputs no OpenVINO model here
has), and the codec error cases are also sent over HTTP.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kva.tfserving.errors import InvalidArgument
from kva.tfserving.tensors import (
    TensorInfo,
    decode_predict_request,
    encode_predict_response,
    to_json,
)
from tests.support.serve import ServeProcess

EXAMPLES = json.loads((Path(__file__).parent / "data" / "tfserving-rest-examples.json").read_text())
CASES = {case["id"]: case for case in EXAMPLES["examples"]}
HTTP_CASES = [c["id"] for c in EXAMPLES["examples"] if c["level"] == "http"]
#: codec cases whose error happens before any dtype matters: also run over HTTP
CODEC_OVER_HTTP = ["codec-both-instances-and-inputs", "codec-missing-instances-inputs"]
MODEL = "saved_model_half_plus_two_2_versions"


def _is_subset(subset: Any, whole: Any) -> bool:
    if isinstance(subset, dict):
        return isinstance(whole, dict) and all(
            k in whole and _is_subset(v, whole[k]) for k, v in subset.items()
        )
    return bool(subset == whole)


def _send(server: ServeProcess, case: dict[str, Any], path: str) -> Any:
    kwargs: dict[str, Any] = {}
    if "request_body_raw" in case:
        kwargs["data"] = case["request_body_raw"].encode()
    elif case.get("request_body") is not None:
        kwargs["data"] = json.dumps(case["request_body"]).encode()
    return server.session.request(case["method"], server.url + path, timeout=30, **kwargs)


def _check(reply: Any, case: dict[str, Any]) -> None:
    assert reply.status_code == case["expected_status"], reply.text
    if case.get("expected_status") == 404 and case.get("expected_error_substring", "") is None:
        return  # outside /v1: any 404 body
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json()
    if "expected_response" in case:
        assert body == case["expected_response"]
    if "expected_response_subset" in case:
        assert _is_subset(case["expected_response_subset"], body), body
    if case.get("expected_error_substring"):
        assert set(body) == {"error"}
        assert case["expected_error_substring"] in body["error"]
    if case["expected_status"] >= 400:
        assert set(body) == {"error"} and isinstance(body["error"], str)


def test_every_case_is_covered() -> None:
    levels = {c["level"] for c in EXAMPLES["examples"]}
    assert levels == {"http", "tensor-codec"}
    assert len(HTTP_CASES) >= 15
    codec = {c["id"] for c in EXAMPLES["examples"] if c["level"] == "tensor-codec"}
    assert codec == {
        "codec-both-instances-and-inputs",
        "codec-missing-instances-inputs",
        "codec-columnar-named-b64",
        "codec-output-bytes-suffix",
        "codec-error-body",
    }


@pytest.mark.parametrize("case_id", HTTP_CASES)
def test_http_case(server: ServeProcess, case_id: str) -> None:
    case = CASES[case_id]
    _check(_send(server, case, case["path"]), case)


def test_metadata_matches_tf_serving_testdata(server: ServeProcess) -> None:
    """The full serving_default signature as TF Serving's testdata file prints it."""
    body = server.get(f"/v1/models/{MODEL}/metadata").json()
    dims = {"dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}], "unknown_rank": False}
    assert body["metadata"]["signature_def"]["signature_def"]["serving_default"] == {
        "inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": dims, "name": "x:0"}},
        "outputs": {"y": {"dtype": "DT_FLOAT", "tensor_shape": dims, "name": "y:0"}},
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }


@pytest.mark.parametrize("case_id", CODEC_OVER_HTTP)
def test_codec_error_over_http(server: ServeProcess, case_id: str) -> None:
    case = CASES[case_id]
    _check(_send(server, case, f"/v1/models/{MODEL}:predict"), case)


def _codec_inputs(signature: dict[str, str]) -> dict[str, TensorInfo]:
    dtypes = {"DT_INT32": np.dtype(np.int32), "DT_STRING": np.dtype(object)}
    return {name: TensorInfo(name, dtypes[dt], None) for name, dt in signature.items()}


def _no_images(data: bytes, height: int, width: int) -> np.ndarray:
    raise AssertionError("no image expected")


@pytest.mark.parametrize("case_id", CODEC_OVER_HTTP)
def test_codec_errors(case_id: str) -> None:
    case = CASES[case_id]
    with pytest.raises(InvalidArgument, match=case["expected_error_substring"]):
        decode_predict_request(case["request_body"], _codec_inputs(case["signature"]), _no_images)


def test_codec_columnar_named_b64() -> None:
    case = CASES["codec-columnar-named-b64"]
    tensors, rows = decode_predict_request(
        case["request_body"], _codec_inputs(case["signature"]), _no_images
    )
    assert rows is False
    shapes = {name: list(t.shape) for name, t in tensors.items()}
    assert shapes == case["expected_decoded_tensor_shapes"]
    assert tensors["bin_tensor"].item() == b"hello"
    assert tensors["str_tensor"].tolist() == [b"foo", b"bar"]
    assert tensors["int_tensor"].dtype == np.int32


def test_codec_output_bytes_suffix() -> None:
    case = CASES["codec-output-bytes-suffix"]
    ((name, spec),) = case["output_tensors"].items()
    values = np.array([v.encode() for v in spec["values_utf8"]], dtype=object).reshape(
        spec["shape"]
    )
    assert encode_predict_response({name: values}, row_format=True) == case["expected_response"]
    assert to_json(values, "plain")[0] == ["hello", "world"]
    assert base64.b64decode(to_json(values, name)[1][1]["b64"]) == b"serving"


def test_codec_error_body() -> None:
    from kva.tfserving.app import error_response

    case = CASES["codec-error-body"]
    reply = error_response(case["expected_response"]["error"], 400)
    assert reply.mimetype == "application/json"
    assert json.loads(reply.get_data()) == case["expected_response"]
    assert b'\\"key\\"' in reply.get_data()
