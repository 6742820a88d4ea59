"""``tritonclient.grpc`` (KServe v2 gRPC, Triton's own client) against ``kva serve --port``.

The calls are those of the client's README and examples: an
``InferenceServerClient`` on the gRPC port, health, metadata, ``InferInput``
with ``set_data_from_numpy`` (sent as ``raw_input_contents``), ``infer`` and
``as_numpy`` (read from ``raw_output_contents``), plus Triton's extensions.
Typed ``contents`` go through the client's own generated stub, which is how a
client that does not use raw contents sends them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kva import kserve_grpc_api
from tests.models.expectations import CLASSIFICATION_CASES, check_top5, photo_jpeg
from tests.support.serve import ServeProcess
from tests.support.wait import wait_for
from tests.tfserving.slow_model import build_slow_model

grpcclient = pytest.importorskip("tritonclient.grpc")  # scripts/setup.sh installs it
from tritonclient.grpc import service_pb2, service_pb2_grpc  # noqa: E402 - after the skip
from tritonclient.utils import InferenceServerException  # noqa: E402

HALF = "half_plus_two"


@pytest.fixture
def client(kva_serve_models: ServeProcess) -> Any:
    return grpcclient.InferenceServerClient(url=kva_serve_models.grpc_target)


@pytest.fixture(scope="module")
def labels(kva_serve_models: ServeProcess) -> list[str]:
    names: list[str] = kva_serve_models.get("/v2/models/mobilenet_v2/labels").json()
    return names


def _fp32(name: str, array: np.ndarray) -> Any:
    tensor = grpcclient.InferInput(name, list(array.shape), "FP32")
    tensor.set_data_from_numpy(array)
    return tensor


def _error(call: Any) -> tuple[str, str]:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return str(caught.value.status()), str(caught.value.message())


def test_the_messages_match_the_clients_protos() -> None:
    """Every field kva declares has the number, type, label and oneof of tritonclient's."""
    api = kserve_grpc_api.load()
    theirs = service_pb2.DESCRIPTOR.pool

    def same(ours: Any, other: Any, path: str) -> None:
        for field in ours.fields:
            found = other.fields_by_name.get(field.name)
            assert found is not None, f"{path}.{field.name}"
            mine = (field.number, field.type, field.is_repeated, _oneof(field))
            assert mine == (found.number, found.type, found.is_repeated, _oneof(found)), path
            if field.message_type is not None:
                same(field.message_type, found.message_type, f"{path}.{field.name}")

    for name, cls in api.messages.items():
        same(cls.DESCRIPTOR, theirs.FindMessageTypeByName(f"inference.{name}"), name)
    service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for method, (request, response) in kserve_grpc_api.METHODS.items():
        found = service.methods_by_name[method]
        assert (found.input_type.name, found.output_type.name) == (request, response)


def _oneof(field: Any) -> str | None:
    return field.containing_oneof.name if field.containing_oneof else None


def test_health_and_metadata(client: Any) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(HALF) and client.is_model_ready(HALF, "0")
    assert client.is_model_ready(HALF, "123") and not client.is_model_ready(HALF, "7")
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "kva" and "statistics" in server["extensions"]
    assert client.get_model_metadata(HALF, as_json=True) == {
        "name": HALF,
        "versions": ["123"],
        "platform": "openvino",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": ["-1", "1"]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": ["-1", "1"]}],
    }
    meta = client.get_model_metadata("mobilenet_v2", "1")
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("image", "UINT8", [-1, 224, 224, 3])
    ]


@pytest.mark.parametrize("version", ["", "0", "123"])
def test_infer_fp32(client: Any, version: str) -> None:
    x = np.array([[1.0], [2.0], [5.0]], np.float32)
    outputs = [grpcclient.InferRequestedOutput("y")]
    result = client.infer(HALF, [_fp32("x", x)], model_version=version, outputs=outputs,
                          request_id="r1")  # fmt: skip
    np.testing.assert_allclose(result.as_numpy("y"), x / 2 + 2)
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == (HALF, "123", "r1")


@pytest.mark.parametrize("name", sorted(CLASSIFICATION_CASES))
def test_infer_bytes_jpeg_on_mobilenet(client: Any, labels: list[str], name: str) -> None:
    image = grpcclient.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([photo_jpeg(name, 320, 240)], dtype=object))
    result = client.infer("mobilenet_v2", [image])
    scores, classes = result.as_numpy("scores"), result.as_numpy("classes")
    assert scores.shape == (1, 5) and classes.dtype == np.int32
    check_top5(scores[0], classes[0])
    assert labels[classes[0, 0]] in CLASSIFICATION_CASES[name]


def test_infer_uint8_tensor_agrees_with_bytes(client: Any) -> None:
    """The decoded image as a UINT8 tensor gives the same top class as the JPEG."""
    import cv2

    data = photo_jpeg("coffee", 224, 224)
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), 1), cv2.COLOR_BGR2RGB)
    tensor = grpcclient.InferInput("image", [1, 224, 224, 3], "UINT8")
    tensor.set_data_from_numpy(rgb[None])
    encoded = grpcclient.InferInput("image", [1], "BYTES")
    encoded.set_data_from_numpy(np.array([data], dtype=object))
    top = [client.infer("mobilenet_v2", [t]).as_numpy("classes")[0, 0] for t in (tensor, encoded)]
    assert top[0] == top[1]


def test_typed_contents_through_the_clients_stub(kva_serve_models: ServeProcess) -> None:
    """``contents.fp32_contents`` and ``bytes_contents`` instead of raw contents."""
    import grpc

    with grpc.insecure_channel(kva_serve_models.grpc_target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = service_pb2.ModelInferRequest(model_name=HALF, model_version="0")
        x = request.inputs.add(name="x", datatype="FP32", shape=[2, 1])
        x.contents.fp32_contents.extend([4.0, 6.0])
        reply = stub.ModelInfer(request, timeout=30)
        assert np.frombuffer(reply.raw_output_contents[0], "<f4").tolist() == [4.0, 5.0]
        request = service_pb2.ModelInferRequest(model_name="mobilenet_v2")
        image = request.inputs.add(name="image", datatype="BYTES", shape=[1])
        image.contents.bytes_contents.append(photo_jpeg("coffee", 200, 200))
        request.outputs.add(name="classes")
        reply = stub.ModelInfer(request, timeout=30)
        assert [o.name for o in reply.outputs] == ["classes"] and len(
            reply.raw_output_contents
        ) == 1
        request = service_pb2.ModelInferRequest(model_name=HALF)
        x = request.inputs.add(name="x", datatype="FP32", shape=[2, 1])
        x.contents.fp32_contents.extend([4.0])
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request, timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details() == "input 'x': 1 values for shape [2, 1]"


def _request(model: str = HALF, raw: int = 0, names: tuple[str, ...] = ("x",)) -> Any:
    """A ModelInferRequest of the client's own protos: FP32 [1, 1] inputs, ``raw`` raw blobs."""
    request = service_pb2.ModelInferRequest(model_name=model)
    for name in names:
        request.inputs.add(name=name, datatype="FP32", shape=[1, 1])
    request.raw_input_contents.extend([np.float32(1).tobytes()] * raw)
    return request


def _with_contents() -> Any:
    request = _request(raw=1)
    request.inputs[0].contents.fp32_contents.append(1.0)
    return request


RAW_ERRORS = [
    (_request(model=""), "Missing model name in request."),
    (_request(raw=2), "expected 1 raw_input_contents (one per input), got 2"),
    (_with_contents(), "input 'x': give contents or raw_input_contents, not both"),
    (_request(raw=2, names=("x", "x")), "input 'x' given twice"),
    (_request(names=()), "missing inputs: x"),
]


@pytest.mark.parametrize(("request_", "message"), RAW_ERRORS)
def test_malformed_requests_are_invalid_argument(
    kva_serve_models: ServeProcess, request_: Any, message: str
) -> None:
    """What tritonclient never sends but a hand-made client can: REST /v2's 400s."""
    import grpc

    with grpc.insecure_channel(kva_serve_models.grpc_target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request_, timeout=30)
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
    )


ERRORS = [
    # (model, version, input name, dtype, array) -> code, message
    ("nope", "", "x", "FP32", np.zeros((1, 1), np.float32),
     "StatusCode.NOT_FOUND", "Servable not found for request: Latest(nope)"),
    (HALF, "7", "x", "FP32", np.zeros((1, 1), np.float32),
     "StatusCode.NOT_FOUND", f"Servable not found for request: Specific({HALF}, 7)"),
    (HALF, "latest", "x", "FP32", np.zeros((1, 1), np.float32),
     "StatusCode.INVALID_ARGUMENT", "version must be a positive integer, got 'latest'"),
    (HALF, "", "x", "INT32", np.zeros((1, 1), np.int32),
     "StatusCode.INVALID_ARGUMENT", "input 'x': datatype 'INT32' does not match the model (FP32)"),
    (HALF, "", "z", "FP32", np.zeros((1, 1), np.float32),
     "StatusCode.INVALID_ARGUMENT", "unknown input 'z' (the model has: x)"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "version", "name", "dtype", "array", "code", "message"), ERRORS)
def test_infer_errors(client: Any, model, version, name, dtype, array, code, message) -> None:
    tensor = grpcclient.InferInput(name, list(array.shape), dtype)
    tensor.set_data_from_numpy(array)
    assert _error(lambda: client.infer(model, [tensor], model_version=version)) == (code, message)


def test_bad_shape_is_invalid_argument(client: Any) -> None:
    tensor = grpcclient.InferInput("image", [1, 10, 10, 3], "UINT8")
    tensor.set_data_from_numpy(np.zeros((1, 10, 10, 3), np.uint8))
    assert _error(lambda: client.infer("mobilenet_v2", [tensor])) == (
        "StatusCode.INVALID_ARGUMENT",
        "Input 'image' has shape [1, 10, 10, 3] but the model expects [-1, 224, 224, 3] "
        "(-1 = any size)",
    )


def test_metadata_errors(client: Any) -> None:
    missing = ("StatusCode.NOT_FOUND", "Servable not found for request: Latest(nope)")
    assert _error(lambda: client.get_model_metadata("nope")) == missing
    assert _error(lambda: client.is_model_ready("nope")) == missing
    assert _error(lambda: client.get_model_config("nope")) == missing
    image = grpcclient.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([b"not an image"], dtype=object))
    code, message = _error(lambda: client.infer("mobilenet_v2", [image]))
    assert code == "StatusCode.INVALID_ARGUMENT" and "image" in message
    code, _ = _error(lambda: client.get_system_shared_memory_status())
    assert code == "StatusCode.UNIMPLEMENTED"


def test_triton_extensions(client: Any) -> None:
    config = client.get_model_config(HALF, as_json=True)["config"]
    assert config["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": ["-1", "1"]}]
    assert config["version_policy"] == {"latest": {"num_versions": 1}}
    index = client.get_model_repository_index(as_json=True)["models"]
    assert {"name": HALF, "version": "123", "state": "READY"} in index
    before = client.get_inference_statistics(HALF, as_json=True)["model_stats"][0]
    client.infer(HALF, [_fp32("x", np.zeros((4, 1), np.float32))])
    after = client.get_inference_statistics(HALF, "123", as_json=True)["model_stats"][0]
    assert int(after["inference_count"]) == int(before.get("inference_count", 0)) + 4
    every = client.get_inference_statistics(as_json=True)["model_stats"]
    assert {entry["name"] for entry in every} == {"blazeface", HALF, "mobilenet_v2"}


def test_metrics_count_kserve_grpc(client: Any, kva_serve_models: ServeProcess) -> None:
    client.get_model_metadata(HALF)
    _error(lambda: client.get_model_metadata("nope"))
    metrics = kva_serve_models.get("/metrics").text
    assert (
        f'kva_serve_requests_total{{code="200",model="{HALF}",protocol="kserve_grpc"}}' in metrics
    )
    assert 'kva_serve_requests_total{code="404",model="",protocol="kserve_grpc"}' in metrics


@pytest.mark.slow
@pytest.mark.subprocess
def test_saturated_model_is_unavailable(tmp_path: Path) -> None:
    """--max_inflight 1: a second ModelInfer while one runs is UNAVAILABLE, as REST's 503."""
    build_slow_model(tmp_path)
    serve = ServeProcess(
        ["--model_name", "slow", "--model_base_path", str(tmp_path / "slow"),
         "--max_inflight", "1"], tmp_path / "serve.log", grpc=True,
    ).start()  # fmt: skip
    try:
        client = grpcclient.InferenceServerClient(url=serve.grpc_target)
        x = [_fp32("x", np.ones((1, 1), np.float32))]
        first: list[Any] = []
        thread = threading.Thread(target=lambda: first.append(client.infer("slow", x)))
        thread.start()
        wait_for(lambda: not client.is_model_ready("slow"), 10, "slow model busy")
        code, message = _error(lambda: client.infer("slow", x))
        thread.join(30)
        assert code == "StatusCode.UNAVAILABLE" and "limit of 1 requests in flight" in message
        assert len(first) == 1 and first[0].as_numpy("y").shape == (1, 1)
        metrics = serve.get("/metrics").text
        assert 'kva_serve_requests_total{code="503",model="slow",protocol="kserve_grpc"}' in metrics
    finally:
        serve.close()
