"""``kva serve --port``: TF Serving's gRPC API against a real server subprocess.

The Predict/status/metadata cases are the REST conformance suite's
(``tests/tfserving/data``), translated to TensorProto; then every error code.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from google.protobuf import json_format

from kva.grpc_api import make_ndarray, make_tensor_proto
from tests.grpc.conftest import GrpcServe
from tests.models.expectations import photo_jpeg
from tests.support.net import listening_on
from tests.support.process import ROOT, run_kva
from tests.support.wait import wait_for
from tests.tfserving.slow_model import build_slow_model

TWO = "saved_model_half_plus_two_2_versions"
THREE = "saved_model_half_plus_three"


def _predict(
    s: GrpcServe,
    model: str,
    inputs: dict[str, Any],
    version: int | None = None,
    label: str = "",
    signature: str = "",
    output_filter: tuple[str, ...] = (),
) -> Any:
    request = s.api.predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    if label:  # version and version_label are a oneof: setting one clears the other
        request.model_spec.version_label = label
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        proto = value if not isinstance(value, np.ndarray) else make_tensor_proto(s.api, value)
        request.inputs[name].CopyFrom(proto)
    request.output_filter.extend(output_filter)
    return s.predictions.Predict(request, timeout=30)


def _y(s: GrpcServe, response: Any) -> list[Any]:
    assert set(response.outputs) == {"y"}
    return make_ndarray(s.api, response.outputs["y"]).tolist()


def _status(s: GrpcServe, model: str, version: int | None = None, label: str = "") -> Any:
    request = s.api.get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    if label:
        request.model_spec.version_label = label
    return s.models.GetModelStatus(request, timeout=30)


def _metadata(
    s: GrpcServe,
    model: str,
    fields: tuple[str, ...] = ("signature_def",),
    version: int | None = None,
) -> Any:
    request = s.api.get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=list(fields))
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    return s.predictions.GetModelMetadata(request, timeout=30)


def _error(s: GrpcServe, call: Any) -> tuple[str, str]:
    with pytest.raises(s.api.grpc.RpcError) as caught:
        call()
    return caught.value.code().name, caught.value.details()


# -- the conformance cases -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "version", "label"),
    [
        (TWO, None, ""),
        (TWO, 123, ""),
        (THREE, None, ""),
        (TWO, None, "Version_Label"),
        (TWO, 0, ""),
    ],
    ids=[
        "status-all-versions",
        "status-specific-version",
        "status-doc-example",
        "status-label",
        "status-version-0-all",
    ],
)
def test_status(grpc_server: GrpcServe, model: str, version: int | None, label: str) -> None:
    response = _status(grpc_server, model, version, label)
    assert json_format.MessageToDict(response) == {
        "model_version_status": [{"version": "123", "state": "AVAILABLE", "status": {}}]
    }
    assert response.model_version_status[0].HasField("status")
    assert response.model_version_status[0].status.error_code == 0


def test_metadata_is_the_rest_signature_as_protobuf(grpc_server: GrpcServe) -> None:
    """metadata-latest: the same SignatureDefMap REST prints, version 123."""
    s = grpc_server
    response = _metadata(s, TWO)
    assert response.model_spec.name == TWO and response.model_spec.version.value == 123
    signatures = s.api.get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    default = signatures.signature_def["serving_default"]
    assert default.method_name == "tensorflow/serving/predict"
    assert default.inputs["x"].dtype == s.api.types_pb2.DT_FLOAT
    assert [d.size for d in default.inputs["x"].tensor_shape.dim] == [-1, 1]
    assert default.outputs["y"].name == "y:0"
    rest = s.rest.get(f"/v1/models/{TWO}/metadata").json()["metadata"]["signature_def"]
    assert signatures == json_format.ParseDict(rest, s.api.get_model_metadata_pb2.SignatureDefMap())
    assert "kva_labels" not in _metadata(s, TWO, ("signature_def", "kva_labels")).metadata
    assert _metadata(s, TWO, version=0).model_spec.version.value == 123  # 0: latest, as in OVMS


@pytest.mark.parametrize(
    ("model", "version", "signature", "x", "y"),
    [
        (TWO, None, "", [[1.0, 2.0], [3.0, 4.0]], [[2.5, 3.0], [3.5, 4.0]]),  # predict-row-latest
        (TWO, 123, "", [1.0, 2.0], [2.5, 3.0]),  # predict-row-version
        (TWO, 123, "serving_default", [3.0, 4.0], [3.5, 4.0]),  # predict-columnar
        (THREE, None, "", [1.0, 2.0, 5.0], [3.5, 4.0, 5.5]),  # predict-doc-example
        (TWO, None, "", [[1.0], [-3.0]], [[2.5], [0.5]]),  # the model's own shape [-1, 1]
        (TWO, 0, "", [1.0], [2.5]),  # version 0 is "latest", as ovmsclient sends it
    ],
    ids=["row-latest", "row-version", "columnar", "doc-example", "batch-column", "version-0"],
)
def test_predict(grpc_server: GrpcServe, model, version, signature, x, y) -> None:
    response = _predict(
        grpc_server, model, {"x": np.array(x, np.float32)}, version, signature=signature
    )
    assert _y(grpc_server, response) == y
    assert response.model_spec.name == model and response.model_spec.version.value == 123
    assert response.model_spec.signature_name == "serving_default"
    assert grpc_server.api.types_pb2.DataType.Name(response.outputs["y"].dtype) == "DT_FLOAT"


def test_predict_with_typed_values_and_label(grpc_server: GrpcServe) -> None:
    """float_val instead of tensor_content; one value fills the shape, as in TensorFlow."""
    s = grpc_server
    proto = s.api.tensor_pb2.TensorProto(dtype=s.api.types_pb2.DT_FLOAT, float_val=[8.0])
    proto.tensor_shape.dim.add(size=3)
    proto.tensor_shape.dim.add(size=1)
    assert _y(s, _predict(s, TWO, {"x": proto}, label="Version_Label")) == [[6.0]] * 3


# -- errors ----------------------------------------------------------------------------------
X = {"x": np.array([[1.0]], np.float32)}


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        ({"model": "half"}, "NOT_FOUND", "Servable not found for request: Latest(half)"),
        ({"model": "foo", "version": 50}, "NOT_FOUND", "Servable not found for request"),
        ({"model": TWO, "version": 7}, "NOT_FOUND", f"Specific({TWO}, 7)"),
        ({"model": TWO, "label": "Version_Nonexistent"}, "INVALID_ARGUMENT", "Unrecognized servable version label"),
        ({"model": ""}, "INVALID_ARGUMENT", "Missing model name"),
        ({"model": TWO, "signature": "nope"}, "INVALID_ARGUMENT", 'signature name: "nope" not found'),
        ({"model": TWO, "output_filter": ("z",)}, "INVALID_ARGUMENT", "output tensor alias not found"),
        ({"model": TWO, "inputs": {"w": X["x"]}}, "INVALID_ARGUMENT", "Sent extra: {w}. Missing but required: {x}"),
        ({"model": TWO, "inputs": {"x": np.array([[1.0]])}}, "INVALID_ARGUMENT", "expects DT_FLOAT but got DT_DOUBLE"),
        ({"model": TWO, "inputs": {"x": np.zeros((0, 1), np.float32)}}, "INVALID_ARGUMENT", "is empty"),
        ({"model": TWO, "inputs": {"x": np.array(["a"], dtype=object)}}, "INVALID_ARGUMENT", "got DT_STRING"),
    ],
    ids=["unknown-model", "unknown-model-version", "unknown-version", "unknown-label",
         "no-name", "signature", "output-filter", "input-name", "dtype",
         "empty", "string"],
)  # fmt: skip
def test_predict_errors(grpc_server: GrpcServe, kwargs: dict[str, Any], code, message) -> None:
    model = kwargs.pop("model")
    inputs = kwargs.pop("inputs", X)
    got, details = _error(grpc_server, lambda: _predict(grpc_server, model, inputs, **kwargs))
    assert (got, message in details) == (code, True), details


def test_malformed_tensor_proto_is_invalid_argument(grpc_server: GrpcServe) -> None:
    s = grpc_server
    short = s.api.tensor_pb2.TensorProto(dtype=s.api.types_pb2.DT_FLOAT, tensor_content=b"\0" * 6)
    short.tensor_shape.dim.add(size=2)
    code, details = _error(s, lambda: _predict(s, TWO, {"x": short}))
    assert code == "INVALID_ARGUMENT" and "holds 6 bytes" in details
    few = s.api.tensor_pb2.TensorProto(dtype=s.api.types_pb2.DT_FLOAT, float_val=[1.0, 2.0])
    few.tensor_shape.dim.add(size=3)
    code, details = _error(s, lambda: _predict(s, TWO, {"x": few}))
    assert code == "INVALID_ARGUMENT" and "float_val holds 2 values" in details


def test_metadata_and_status_errors(grpc_server: GrpcServe) -> None:
    s = grpc_server
    assert _error(s, lambda: _metadata(s, "nope")) == (
        "NOT_FOUND",
        "Servable not found for request: Latest(nope)",
    )
    assert _error(s, lambda: _metadata(s, TWO, ()))[0] == "INVALID_ARGUMENT"
    code, details = _error(s, lambda: _metadata(s, TWO, ("graph",)))
    assert (code, details) == ("INVALID_ARGUMENT", "Metadata field graph is not supported")
    assert _error(s, lambda: _status(s, "nope")) == (
        "NOT_FOUND",
        "Could not find any versions of model nope",
    )
    assert _error(s, lambda: _status(s, TWO, 5)) == (
        "NOT_FOUND",
        f"Could not find version 5 of model {TWO}",
    )


def test_oversized_message_is_refused(grpc_server: GrpcServe) -> None:
    """--max_request_bytes (1 MiB here) caps gRPC messages too."""
    big = {"x": np.zeros((300_000, 1), np.float32)}
    code, details = _error(grpc_server, lambda: _predict(grpc_server, TWO, big))
    assert code == "RESOURCE_EXHAUSTED", details
    assert _y(grpc_server, _predict(grpc_server, TWO, X)) == [[2.5]]


def test_metrics_count_grpc_requests(grpc_server: GrpcServe) -> None:
    _predict(grpc_server, TWO, X)
    _error(grpc_server, lambda: _predict(grpc_server, "half", X))
    metrics = grpc_server.rest.get("/metrics").text
    assert f'kva_serve_requests_total{{code="200",model="{TWO}",protocol="grpc"}}' in metrics
    assert 'kva_serve_requests_total{code="404",model="",protocol="grpc"}' in metrics


@pytest.mark.slow
def test_saturated_model_is_unavailable(start_grpc, tmp_path) -> None:
    """--max_inflight 1: a second Predict while one runs is UNAVAILABLE at once, then OK."""
    build_slow_model(tmp_path)
    s = start_grpc("--model_name", "slow", "--model_base_path", str(tmp_path / "slow"),
                   "--max_inflight", "1")  # fmt: skip
    x = {"x": np.array([[1.0]], np.float32)}
    first: list[Any] = []
    thread = threading.Thread(target=lambda: first.append(_predict(s, "slow", x)))
    thread.start()
    wait_for(lambda: s.rest.get("/v2/health/ready").status_code == 503, 10, "slow model busy")
    code, details = _error(s, lambda: _predict(s, "slow", x))
    thread.join(30)
    assert code == "UNAVAILABLE" and "limit of 1 requests in flight" in details
    assert len(first) == 1 and make_ndarray(s.api, first[0].outputs["y"]).shape == (1, 1)
    metrics = s.rest.get("/metrics").text
    assert 'kva_serve_requests_total{code="503",model="slow",protocol="grpc"} 1.0' in metrics
    assert 'kva_serve_rejected_requests_total{model="slow"} 1.0' in metrics


@pytest.mark.slow
def test_graceful_stop_finishes_running_calls(start_grpc, tmp_path) -> None:
    """SIGTERM during a Predict: the call completes, the process exits 0, the port closes."""
    build_slow_model(tmp_path)
    s = start_grpc("--model_name", "slow", "--model_base_path", str(tmp_path / "slow"),
                   "--max_inflight", "1")  # fmt: skip
    x = {"x": np.array([[2.0]], np.float32)}
    running: list[Any] = []
    thread = threading.Thread(target=lambda: running.append(_predict(s, "slow", x)))
    thread.start()
    wait_for(lambda: s.rest.get("/v2/health/ready").status_code == 503, 10, "slow model busy")
    s.rest.terminate()
    thread.join(30)
    assert len(running) == 1 and make_ndarray(s.api, running[0].outputs["y"]).shape == (1, 1)
    assert s.rest.wait(timeout=30) == 0
    assert "stopping" in s.rest.log()
    assert _error(s, lambda: _status(s, "slow"))[0] == "UNAVAILABLE"


BLOCK_GRPC = "import sys; sys.modules['grpc'] = None; sys.modules['tensorflow_serving'] = None; "


@pytest.mark.subprocess
def test_port_without_the_extra_fails_clearly(conformance_repo) -> None:
    code = BLOCK_GRPC + (
        "from kva.launcher.cli import main; sys.exit(main(['serve', '--port', '0', "
        f"'--model_config_file', {str(conformance_repo / 'models.config')!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "--port: gRPC support is not installed" in done.stderr
    assert "install kafka-video-analytics[grpc]" in done.stderr


@pytest.mark.subprocess
def test_port_in_use_fails_clearly(conformance_repo) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_kva(
            "serve", "--rest_api_port", "0",
            "--port", str(port), "--model_config_file", str(conformance_repo / "models.config"),
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"kva serve: --port {port}: cannot bind gRPC to 127.0.0.1:{port}" in done.stderr


def test_grpc_binds_loopback_by_default(grpc_server: GrpcServe) -> None:
    port = int(grpc_server.target.rsplit(":", 1)[1])
    addresses = listening_on(port)
    assert addresses and addresses <= {"127.0.0.1", "::ffff:127.0.0.1"}, addresses


@pytest.mark.slow
def test_image_limits_are_per_request(start_grpc, built_models: Path, tmp_path: Path) -> None:
    """--max_image_pixels bounds all the images of one Predict together (INVALID_ARGUMENT),
    and so does the decoded batch size, as over REST; one image under the limit is fine."""
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "mobilenet_v2" '
        f'base_path: "{built_models}/mobilenet_v2" }} }}\n'
    )
    s = start_grpc("--model_config_file", str(config), "--max_image_pixels", "3000000")
    big = photo_jpeg("chelsea", 1500, 1500)  # 2.25 M pixels: under the limit, two are over it
    code, details = _error(
        s, lambda: _predict(s, "mobilenet_v2", {"image": np.array([big, big], dtype=object)})
    )
    assert code == "INVALID_ARGUMENT", details
    assert "the request's images together may have at most 3000000 pixels" in details
    one = _predict(s, "mobilenet_v2", {"image": np.array([big], dtype=object)})
    assert make_ndarray(s.api, one.outputs["classes"]).shape == (1, 5)
    ok, tiny = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))
    many = {"image": np.array([tiny.tobytes()] * 400, dtype=object)}
    code, details = _error(s, lambda: _predict(s, "mobilenet_v2", many))
    assert code == "INVALID_ARGUMENT" and "too many images in one request: 400 x 224x224" in details


# -- Classify, Regress, MultiInference: the REST conformance cases over gRPC ----------------------
def _input(s: GrpcServe, *xs: float, context: float | None = None) -> Any:
    """A ``tensorflow.serving.Input`` of examples with the float feature ``x``."""
    proto = s.api.classification_pb2.ClassificationRequest().input
    target = proto.example_list_with_context if context is not None else proto.example_list
    for x in xs:
        target.examples.add().features.feature["x"].float_list.value.append(x)
    if context is not None:
        del target.examples[0].features.feature["x"]
        target.context.features.feature["x"].float_list.value.append(context)
    return proto


def test_regress(grpc_server: GrpcServe) -> None:
    s = grpc_server
    request = s.api.regression_pb2.RegressionRequest(input=_input(s, 80.0, 2.0))
    request.model_spec.name = TWO
    request.model_spec.signature_name = "regress_x_to_y"
    response = s.predictions.Regress(request, timeout=30)
    assert [r.value for r in response.result.regressions] == [42.0, 3.0]
    assert response.model_spec.version.value == 123
    assert response.model_spec.signature_name == "regress_x_to_y"


def test_classify_with_label_and_context(grpc_server: GrpcServe) -> None:
    s = grpc_server
    request = s.api.classification_pb2.ClassificationRequest(input=_input(s, 20.0))
    request.model_spec.name = TWO
    request.model_spec.version_label = "Version_Label"
    request.model_spec.signature_name = "classify_x_to_y"
    response = s.predictions.Classify(request, timeout=30)
    (classes,) = response.result.classifications
    assert [(c.label, c.score) for c in classes.classes] == [("", 12.0)]
    request.input.CopyFrom(_input(s, 0.0, context=10.0))  # the feature from the context
    (classes,) = s.predictions.Classify(request, timeout=30).result.classifications
    assert [c.score for c in classes.classes] == [7.0]


def test_multi_inference(grpc_server: GrpcServe) -> None:
    s = grpc_server
    request = s.api.inference_pb2.MultiInferenceRequest(input=_input(s, 10.0))
    for signature, method in (("classify_x_to_y", "classify"), ("regress_x_to_y", "regress")):
        task = request.tasks.add(method_name=f"tensorflow/serving/{method}")
        task.model_spec.name = TWO
        task.model_spec.signature_name = signature
    classified, regressed = s.predictions.MultiInference(request, timeout=30).results
    assert classified.classification_result.classifications[0].classes[0].score == 7.0
    assert regressed.regression_result.regressions[0].value == 7.0
    assert regressed.model_spec.signature_name == "regress_x_to_y"


@pytest.mark.parametrize(
    ("method", "signature", "code", "message"),
    [
        ("Regress", "classify_x_to_y", "INVALID_ARGUMENT", "Was: tensorflow/serving/classify"),
        ("Classify", "", "INVALID_ARGUMENT", "Was: tensorflow/serving/predict"),
        ("Classify", "nope", "INVALID_ARGUMENT", 'signature name: "nope" not found'),
        ("Regress", "regress_x_to_y/no-input", "INVALID_ARGUMENT", "Input is empty"),
        ("MultiInference", "", "INVALID_ARGUMENT", "Tasks is empty"),
    ],
)
def test_example_errors(grpc_server: GrpcServe, method: str, signature: str, code, message) -> None:
    s = grpc_server
    if method == "MultiInference":
        request: Any = s.api.inference_pb2.MultiInferenceRequest(input=_input(s, 1.0))
    else:
        pb2 = s.api.classification_pb2 if method == "Classify" else s.api.regression_pb2
        request = (pb2.ClassificationRequest if method == "Classify" else pb2.RegressionRequest)()
        if not signature.endswith("/no-input"):
            request.input.CopyFrom(_input(s, 1.0))
        request.model_spec.name = TWO
        request.model_spec.signature_name = signature.removesuffix("/no-input")
    call = getattr(s.predictions, method)
    got, details = _error(s, lambda: call(request, timeout=30))
    assert (got, message in details) == (code, True), details
