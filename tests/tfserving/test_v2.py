"""KServe v2 REST: health, metadata, JSON and binary-extension inference, errors."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from tests.support.serve import ServeProcess

MODEL = "saved_model_half_plus_three"
HEADER = "Inference-Header-Content-Length"


def _binary_request(header: dict[str, object], *blobs: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    return head + b"".join(blobs), {HEADER: str(len(head))}


def _split_response(reply: object) -> tuple[dict[str, object], bytes]:
    body: bytes = reply.content  # type: ignore[attr-defined]
    size = int(reply.headers[HEADER])  # type: ignore[attr-defined]
    return json.loads(body[:size]), body[size:]


def test_health_and_server_metadata(server: ServeProcess) -> None:
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get("/v2/health/ready").json() == {"ready": True}
    meta = server.get("/v2").json()
    assert meta["name"] == "kva" and "binary_tensor_data" in meta["extensions"]


def test_model_metadata_and_ready(server: ServeProcess) -> None:
    assert server.get(f"/v2/models/{MODEL}").json() == {
        "name": MODEL,
        "versions": ["123"],
        "platform": "openvino",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 1]}],
    }
    assert server.get(f"/v2/models/{MODEL}/versions/123").status_code == 200
    ready = server.get(f"/v2/models/{MODEL}/ready")
    assert ready.status_code == 200 and ready.json() == {"name": MODEL, "ready": True}
    assert server.get(f"/v2/models/{MODEL}/versions/123/ready").status_code == 200


def test_infer_json(server: ServeProcess) -> None:
    request = {
        "id": "req-1",
        "inputs": [{"name": "x", "shape": [3, 1], "datatype": "FP32", "data": [1.0, 2.0, 5.0]}],
    }
    reply = server.post(f"/v2/models/{MODEL}/infer", json=request)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "model_name": MODEL,
        "model_version": "123",
        "id": "req-1",
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [3, 1], "data": [3.5, 4.0, 5.5]}],
    }


def test_infer_json_nested_data_and_version(server: ServeProcess) -> None:
    request = {"inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP32", "data": [[0], [2]]}]}
    reply = server.post(f"/v2/models/{MODEL}/versions/123/infer", json=request)
    assert reply.json()["outputs"][0]["data"] == [3.0, 4.0]


def test_infer_binary_in_and_out(server: ServeProcess) -> None:
    values = np.array([[1.0], [2.0], [-4.0], [0.5]], np.float32)
    body, headers = _binary_request(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [4, 1],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": values.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        },
        values.tobytes(),
    )
    reply = server.post(f"/v2/models/{MODEL}/infer", data=body, headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "application/octet-stream"
    head, blob = _split_response(reply)
    (output,) = head["outputs"]  # type: ignore[misc]
    assert output == {
        "name": "y",
        "datatype": "FP32",
        "shape": [4, 1],
        "parameters": {"binary_data_size": 16},
    }
    np.testing.assert_allclose(np.frombuffer(blob, np.float32), values[:, 0] * 0.5 + 3)


def test_infer_binary_in_json_out_per_output_flag(server: ServeProcess) -> None:
    values = np.array([[10.0]], np.float32)
    header = {
        "inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32",
                    "parameters": {"binary_data_size": 4}}],
        "outputs": [{"name": "y", "parameters": {"binary_data": False}}],
        "parameters": {"binary_data_output": True},
    }  # fmt: skip
    body, headers = _binary_request(header, values.tobytes())
    reply = server.post(f"/v2/models/{MODEL}/infer", data=body, headers=headers)
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json()["outputs"][0]["data"] == [8.0]


def _x(**overrides: object) -> dict[str, object]:
    tensor: dict[str, object] = {"name": "x", "shape": [2, 1], "datatype": "FP32", "data": [1, 2]}
    tensor.update(overrides)
    return {"inputs": [tensor]}


@pytest.mark.parametrize(
    ("request_body", "status", "message"),
    [
        (_x(datatype="FP64"), 400, "datatype 'FP64' does not match the model (FP32)"),
        (_x(datatype="INT8"), 400, "does not match the model"),
        (_x(shape=[3, 1]), 400, "2 values for shape [3, 1]"),
        (_x(shape=[2, -1]), 400, "'shape' must be a list of non-negative integers"),
        (_x(name="z"), 400, "unknown input 'z'"),
        (_x(data=["a", "b"]), 400, "is not of expected type"),
        (_x(data=None), 400, "no 'data' and no binary_data_size"),
        ({"inputs": []}, 400, "'inputs' must be a non-empty list"),
        ({"inputs": [{"shape": [1]}]}, 400, "each input must be an object with a 'name'"),
        ({**_x(), "outputs": [{"name": "nope"}]}, 400, "unknown output 'nope'"),
        ([1, 2], 400, "must be a JSON object"),
    ],
)
def test_infer_errors(
    server: ServeProcess, request_body: object, status: int, message: str
) -> None:
    reply = server.post(f"/v2/models/{MODEL}/infer", json=request_body)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]


def test_binary_errors(server: ServeProcess) -> None:
    url = f"/v2/models/{MODEL}/infer"
    tensor = {"name": "x", "shape": [2, 1], "datatype": "FP32",
              "parameters": {"binary_data_size": 8}}  # fmt: skip
    body, headers = _binary_request({"inputs": [tensor]}, b"\0" * 4)
    reply = server.post(url, data=body, headers=headers)
    assert reply.status_code == 400 and "binary_data_size does not fit" in reply.json()["error"]
    body, headers = _binary_request({"inputs": [tensor]}, b"\0" * 12)
    reply = server.post(url, data=body, headers=headers)
    assert reply.status_code == 400 and "4 bytes after the last binary input" in reply.text
    tensor["parameters"] = {"binary_data_size": 4}
    body, headers = _binary_request({"inputs": [tensor]}, b"\0" * 4)
    reply = server.post(url, data=body, headers=headers)
    assert reply.status_code == 400 and "4 bytes for shape [2, 1]" in reply.json()["error"]
    reply = server.post(url, data=b"{}", headers={HEADER: "99"})
    assert reply.status_code == 400 and HEADER in reply.json()["error"]
    for bad in ("abc", "-1", "\u00b2"):  # superscript two: a digit to str.isdigit, not to int()
        reply = server.post(url, data=b"{}", headers={HEADER: bad})
        assert reply.status_code == 400 and HEADER in reply.json()["error"]


def test_bytes_on_a_non_image_model_is_refused(server: ServeProcess) -> None:
    blob = struct.pack("<I", 3) + b"abc"
    tensor = {"name": "x", "shape": [1], "datatype": "BYTES",
              "parameters": {"binary_data_size": len(blob)}}  # fmt: skip
    body, headers = _binary_request({"inputs": [tensor]}, blob)
    reply = server.post(f"/v2/models/{MODEL}/infer", data=body, headers=headers)
    assert reply.status_code == 400 and "does not match the model (FP32)" in reply.json()["error"]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v2/models/nope", 404, "Servable not found for request: Latest(nope)"),
        ("/v2/models/nope/ready", 404, "Servable not found"),
        (f"/v2/models/{MODEL}/versions/7", 404, f"Specific({MODEL}, 7)"),
        (f"/v2/models/{MODEL}/versions/x1", 400, "version must be a positive integer"),
        (f"/v2/models/{MODEL}/labels", 404, "has no class labels"),
    ],
)
def test_lookup_errors(server: ServeProcess, path: str, status: int, message: str) -> None:
    reply = server.get(path)
    assert reply.status_code == status
    assert message in reply.json()["error"]


def test_unknown_model_infer_is_404(server: ServeProcess) -> None:
    reply = server.post("/v2/models/nope/infer", json=_x())
    assert reply.status_code == 404
    assert reply.json() == {"error": "Servable not found for request: Latest(nope)"}
