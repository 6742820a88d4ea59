"""``kva serve`` serves the models users bring: SavedModel, ONNX, TFLite, as laid out for TF Serving.

Each model is made here, by its own tools: TensorFlow builds a SavedModel with a
TF-Serving-style signature (``image_bytes`` in; ``classes`` and ``probabilities``
out), the ``onnx`` package's helpers build an ONNX graph, and the face detector's
``.tflite`` is the file its package ships. Answers are compared with TensorFlow
(and TF Lite) running the same model on the same pixels, and with numpy for ONNX.
"""

from __future__ import annotations

import base64
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kva.model_files import compile_config
from kva.tfserving.images import decode_image
from kva.tfserving.modelbuild.sources import BLAZEFACE_FULL_RANGE
from tests.models.expectations import photo_jpeg
from tests.support import tf_models
from tests.support.process import starts_processes
from tests.support.serve import ServeProcess

pytestmark = pytest.mark.subprocess

PIXELS = 40_000_000
WEIGHTS = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def onnx_linear(path: Path, bias: tuple[float, float, float] = (0.5, -0.5, 1.0)) -> None:
    """``probs = softmax(x @ W + b)`` and ``logits``: input ``x`` float32 [N, 4]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
        ],
        initializer=[
            numpy_helper.from_array(WEIGHTS, "W"),
            numpy_helper.from_array(np.array(bias, dtype=np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def linear(x: np.ndarray, bias: tuple[float, float, float] = (0.5, -0.5, 1.0)) -> np.ndarray:
    logits = x @ WEIGHTS + np.array(bias, dtype=np.float32)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """classifier (SavedModel), linear (ONNX), face (TFLite), broken (not a model)."""
    base = tmp_path_factory.mktemp("user-models")
    tf_models.call("saved-model", base / "classifier" / "1")
    onnx_linear(base / "linear" / "1" / "model.onnx")
    (base / "face" / "1").mkdir(parents=True)
    shutil.copy(BLAZEFACE_FULL_RANGE.locate(), base / "face" / "1")
    (base / "broken" / "1").mkdir(parents=True)
    (base / "broken" / "1" / "model.onnx").write_bytes(b"this is not an ONNX model")
    (base / "models.config").write_text(
        "model_config_list {\n"
        + "".join(
            f'  config {{ name: "{name}" base_path: "{base / name}" }}\n'
            for name in ("classifier", "linear", "face", "broken")
        )
        + "}\n"
    )
    return base


@pytest.fixture(scope="module")
@starts_processes
def server(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("user-models-serve")
    args = ["--model_config_file", str(repo / "models.config"), "--cache_dir", str(folder / "c")]
    serve = ServeProcess(args, folder / "serve.log", grpc=True).start(wait="live")
    for name in ("classifier", "linear", "face"):
        serve.process.wait_http(f"{serve.url}/v2/models/{name}/ready", 120)  # type: ignore[union-attr]
    yield serve
    serve.close()


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def signature(server: ServeProcess, model: str) -> dict[str, Any]:
    reply = server.session.get(f"{server.url}/v1/models/{model}/metadata", timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()["metadata"]["signature_def"]["signature_def"]["serving_default"]


def tensor(info: dict[str, Any]) -> tuple[str, list[int]]:
    return info["dtype"], [int(d["size"]) for d in info["tensor_shape"]["dim"]]


def test_saved_model_signature_is_the_models_own(server: ServeProcess) -> None:
    serving = signature(server, "classifier")
    assert {k: tensor(v) for k, v in serving["inputs"].items()} == {
        "image_bytes": ("DT_FLOAT", [-1, 32, 32, 3])
    }
    assert {k: tensor(v) for k, v in serving["outputs"].items()} == {
        "classes": ("DT_INT64", [-1]),
        "probabilities": ("DT_FLOAT", [-1, tf_models.CLASSES]),
    }


def test_saved_model_answers_a_tf_serving_client_as_tensorflow_does(
    server: ServeProcess, repo: Path, tmp_path: Path
) -> None:
    """The request the original design's client sends: ``{"image_bytes": {"b64": JPEG}}``."""
    jpegs = [photo_jpeg("chelsea"), photo_jpeg("coffee"), photo_jpeg("astronaut")]
    body = {"instances": [{"image_bytes": b64(jpeg)} for jpeg in jpegs]}
    reply = server.session.post(f"{server.url}/v1/models/classifier:predict", json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    predictions = reply.json()["predictions"]

    size = tf_models.IMAGE_SIZE
    pixels = np.stack([decode_image(j, size, size, PIXELS) for j in jpegs]).astype(np.float32)
    np.save(tmp_path / "in.npy", pixels)
    tf_models.call(
        "run-saved-model", repo / "classifier" / "1", tmp_path / "in.npy", tmp_path / "out.npz"
    )
    expected = np.load(tmp_path / "out.npz")
    assert [p["classes"] for p in predictions] == expected["classes"].tolist()
    got = np.array([p["probabilities"] for p in predictions])
    np.testing.assert_allclose(got, expected["probabilities"], atol=1e-4)
    assert len(set(np.round(got[:, 0], 4))) == 3  # three photos, three different answers


def test_saved_model_over_tf_serving_grpc_with_encoded_images(server: ServeProcess) -> None:
    from kva import grpc_api

    if not grpc_api.available():  # pragma: no cover - the test set-up installs [grpc]
        pytest.skip("the [grpc] extra is not installed")
    api = grpc_api.load()
    request = api.predict_pb2.PredictRequest()
    request.model_spec.name = "classifier"
    jpeg = photo_jpeg("chelsea")
    request.inputs["image_bytes"].CopyFrom(
        grpc_api.make_tensor_proto(api, np.array([jpeg], dtype=object))
    )
    with api.grpc.insecure_channel(server.grpc_target) as channel:
        stub = api.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        reply = stub.Predict(request, timeout=30)
    probabilities = grpc_api.make_ndarray(api, reply.outputs["probabilities"])
    rest = server.session.post(
        f"{server.url}/v1/models/classifier:predict",
        json={"instances": [{"image_bytes": b64(jpeg)}]},
        timeout=30,
    ).json()["predictions"][0]
    np.testing.assert_allclose(probabilities[0], rest["probabilities"], atol=1e-6)
    assert grpc_api.make_ndarray(api, reply.outputs["classes"]).tolist() == [rest["classes"]]


def test_onnx_model_over_v1_and_v2(server: ServeProcess) -> None:
    serving = signature(server, "linear")
    assert {k: tensor(v) for k, v in serving["inputs"].items()} == {"x": ("DT_FLOAT", [-1, 4])}
    assert sorted(serving["outputs"]) == ["logits", "probs"]
    x = np.array([[1, 2, 3, 4], [0, 0, 0, 0], [-1, 0.5, 2, 0]], dtype=np.float32)
    reply = server.session.post(
        f"{server.url}/v1/models/linear:predict", json={"instances": x.tolist()}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    got = np.array([p["probs"] for p in reply.json()["predictions"]])
    np.testing.assert_allclose(got, linear(x), atol=1e-5)

    v2 = server.session.post(
        f"{server.url}/v2/models/linear/infer",
        json={"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP32",
                          "data": x.ravel().tolist()}],
              "outputs": [{"name": "probs"}]},
        timeout=10,
    )  # fmt: skip
    assert v2.status_code == 200, v2.text
    (output,) = v2.json()["outputs"]
    np.testing.assert_allclose(np.reshape(output["data"], (3, 3)), linear(x), atol=1e-5)


def test_tflite_face_detector_matches_tensorflow_lite(server: ServeProcess, tmp_path: Path) -> None:
    serving = signature(server, "face")
    assert {k: tensor(v) for k, v in serving["inputs"].items()} == {
        "input": ("DT_FLOAT", [1, 192, 192, 3])
    }
    jpeg = photo_jpeg("astronaut")
    reply = server.session.post(
        f"{server.url}/v1/models/face:predict",
        json={"instances": [{"input": b64(jpeg)}]},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    (prediction,) = reply.json()["predictions"]

    pixels = decode_image(jpeg, 192, 192, PIXELS).astype(np.float32)[None]
    np.save(tmp_path / "in.npy", pixels)
    tf_models.call(
        "run-tflite", BLAZEFACE_FULL_RANGE.locate(), tmp_path / "in.npy", tmp_path / "out.npz"
    )
    expected = np.load(tmp_path / "out.npz")
    assert sorted(prediction) == sorted(expected.files)
    for name in expected.files:
        got = np.array(prediction[name], dtype=np.float32)
        want = expected[name][0]
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-2 * float(np.abs(want).max()))


def test_a_model_openvino_cannot_read_fails_with_the_frontends_words(
    server: ServeProcess,
) -> None:
    reply = server.session.get(f"{server.url}/v1/models/broken", timeout=10)
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert "version 1 failed to load" in error and "ONNX" in error, error
    assert "OpenVINO cannot read this ONNX model" in server.log()
    # ...and the server serves the others all along
    ok = server.session.post(
        f"{server.url}/v1/models/linear:predict", json={"instances": [[0, 0, 0, 0]]}, timeout=10
    )
    assert ok.status_code == 200


def test_converted_models_are_cached_and_invalidated_when_the_source_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import openvino as ov

    from kva.tfserving.servable import Servable

    core = ov.Core()
    folder, cache = tmp_path / "linear" / "1", tmp_path / "cache"
    onnx_linear(folder / "model.onnx")
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)

    def load_and_run() -> np.ndarray:
        servable = Servable(core, "linear", 1, folder, "CPU", compile_config("LATENCY"), cache)
        return servable.infer({"x": x}, timeout=10)["probs"]

    caplog.set_level(logging.INFO, logger="kva.model_files")
    first = load_and_run()
    (entry,) = cache.iterdir()
    assert (entry / "model.xml").is_file() and (entry / "model.bin").is_file()
    caplog.clear()
    np.testing.assert_allclose(load_and_run(), first)
    assert "read the converted ONNX" in caplog.text

    onnx_linear(folder / "model.onnx", bias=(3.0, 0.0, 0.0))  # the user replaces the model
    caplog.clear()
    changed = load_and_run()
    assert "read the converted" not in caplog.text
    np.testing.assert_allclose(changed, linear(x, (3.0, 0.0, 0.0)), atol=1e-5)
    (new_entry,) = cache.iterdir()  # the old source's entry is gone
    assert new_entry != entry


def test_the_cache_being_unwritable_costs_only_the_conversion(tmp_path: Path) -> None:
    import openvino as ov

    from kva.tfserving.servable import Servable

    folder = tmp_path / "linear" / "1"
    onnx_linear(folder / "model.onnx")
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    servable = Servable(
        ov.Core(), "linear", 1, folder, "CPU", compile_config("LATENCY"), blocked / "cache"
    )
    x = np.zeros((1, 4), dtype=np.float32)
    np.testing.assert_allclose(servable.infer({"x": x}, timeout=10)["probs"], linear(x), atol=1e-5)


def test_two_models_of_one_format_in_a_version_folder_are_refused(tmp_path: Path) -> None:
    from kva.model_files import ModelLoadError, find_model

    onnx_linear(tmp_path / "a.onnx")
    onnx_linear(tmp_path / "b.onnx")
    with pytest.raises(ModelLoadError, match=r"more than one ONNX model \(a.onnx, b.onnx\)"):
        find_model(tmp_path)
    (tmp_path / "a.onnx").unlink()
    (tmp_path / "b.onnx").unlink()
    with pytest.raises(ModelLoadError, match="no model file"):
        find_model(tmp_path)


def test_models_compute_in_f32_unless_told_otherwise(tmp_path: Path) -> None:
    """OpenVINO's own default is bf16 on CPUs with AVX512_BF16 or AMX, where answers then
    differ from TensorFlow's by ~1e-3 (the ONNX and SavedModel tests failed on such a
    machine). kva serve asks for f32 unless ``--inference_precision`` says otherwise."""
    import openvino as ov

    from kva.tfserving.servable import Servable

    folder = tmp_path / "linear" / "1"
    onnx_linear(folder / "model.onnx")
    servable = Servable(ov.Core(), "linear", 1, folder, "CPU", compile_config("LATENCY"), None)
    compiled = servable._base.compiled
    assert str(compiled.get_property("INFERENCE_PRECISION_HINT")) in {"<Type: 'float32'>", "f32"}
    assert compile_config("THROUGHPUT", "auto") == {"PERFORMANCE_HINT": "THROUGHPUT"}
    assert compile_config("LATENCY", "bf16")["INFERENCE_PRECISION_HINT"] == "bf16"
    with pytest.raises(ValueError, match="not one of"):
        compile_config("LATENCY", "f64")
