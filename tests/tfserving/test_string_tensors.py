"""String tensors (``DT_STRING`` / ``BYTES``) of an OpenVINO model, over every API of ``kva serve``.

The model is built here with OpenVINO's own operations: it takes TF Serving's
codec case (``int_tensor`` int32, ``str_tensor`` and ``bin_tensor`` strings) and
returns the strings (``str_echo``, and ``bin_bytes``, which TF Serving's REST
prints as ``{"b64"}`` because of its name) and the doubled integers.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kva import grpc_api
from tests.support.process import starts_processes
from tests.support.serve import ServeProcess

pytestmark = pytest.mark.subprocess

BINARY = b"\xff\xd8\x00binary\xfe"  # not UTF-8, a NUL inside


def build_string_models(folder: Path) -> None:
    """``strings`` (the codec case) and ``echo`` (one string input, returned as ``text_bytes``)."""
    import openvino as ov
    from openvino import opset13 as ops

    def named(node: object, name: str) -> object:
        node.output(0).get_tensor().set_names({name})  # type: ignore[attr-defined]
        return node

    ints = ops.parameter([-1, 3, 2], ov.Type.i32, name="int_tensor")
    texts = ops.parameter([-1], ov.Type.string, name="str_tensor")
    binary = ops.parameter([], ov.Type.string, name="bin_tensor")
    one_column = ops.constant(np.array([-1, 1], np.int64))
    outputs = [
        named(ops.reshape(texts, one_column, special_zero=False), "str_echo"),
        named(ops.reshape(binary, ops.constant(np.array([1], np.int64)), False), "bin_bytes"),
        named(ops.multiply(ints, ops.constant(np.int32(2))), "doubled"),
    ]
    model = ov.Model([ops.result(o) for o in outputs], [ints, texts, binary], "strings")
    (folder / "strings" / "1").mkdir(parents=True)
    ov.save_model(model, str(folder / "strings" / "1" / "model.xml"))

    text = ops.parameter([-1], ov.Type.string, name="text")
    echo = named(ops.reshape(text, ops.constant(np.array([-1], np.int64)), False), "text_bytes")
    (folder / "echo" / "1").mkdir(parents=True)
    ov.save_model(
        ov.Model([ops.result(echo)], [text], "echo"), str(folder / "echo" / "1" / "model.xml")
    )


@pytest.fixture(scope="module")
@starts_processes
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    base = tmp_path_factory.mktemp("strings")
    build_string_models(base)
    (base / "models.config").write_text(
        'model_config_list { config { name: "strings" base_path: "strings" } '
        'config { name: "echo" base_path: "echo" } }'
    )
    args = ["--model_config_file", str(base / "models.config")]
    serve = ServeProcess(args, base / "serve.log", grpc=grpc_api.available()).start()
    yield serve
    serve.close()


def test_metadata_says_dt_string(server: ServeProcess) -> None:
    body = server.get("/v1/models/strings/metadata").json()
    serving = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    dtypes = {k: v["dtype"] for k, v in {**serving["inputs"], **serving["outputs"]}.items()}
    assert dtypes == {"int_tensor": "DT_INT32", "str_tensor": "DT_STRING",
                      "bin_tensor": "DT_STRING", "str_echo": "DT_STRING",
                      "bin_bytes": "DT_STRING", "doubled": "DT_INT32"}  # fmt: skip
    v2 = server.get("/v2/models/strings").json()
    assert {t["name"]: t["datatype"] for t in v2["inputs"]}["str_tensor"] == "BYTES"


def test_tf_serving_columnar_request_with_strings_and_b64(server: ServeProcess) -> None:
    """TF Serving's own codec case (json_tensor_test.cc, MultipleNamedTensorColumnarFormat)."""
    body = {
        "inputs": {
            "int_tensor": [[[1, 2], [3, 4], [5, 6]]],
            "str_tensor": ["foo", "bar"],
            "bin_tensor": {"b64": base64.b64encode(BINARY).decode()},
        }
    }
    reply = server.post("/v1/models/strings:predict", json=body)
    assert reply.status_code == 200, reply.text
    outputs = reply.json()["outputs"]
    assert outputs["str_echo"] == [["foo"], ["bar"]]
    assert [base64.b64decode(v["b64"]) for v in outputs["bin_bytes"]] == [BINARY]
    assert outputs["doubled"] == [[[2, 4], [6, 8], [10, 12]]]


def test_row_format_with_strings_and_b64(server: ServeProcess) -> None:
    """One string input (``echo``): instances are plain strings or ``{"b64"}`` values."""
    binary = {"b64": base64.b64encode(BINARY).decode()}
    reply = server.post("/v1/models/echo:predict", json={"instances": ["caf\u00e9", binary]})
    assert reply.status_code == 200, reply.text
    first, second = reply.json()["predictions"]
    # the output is named text_bytes: TF Serving prints every element as {"b64"}
    assert base64.b64decode(first["b64"]).decode() == "caf\u00e9"
    assert base64.b64decode(second["b64"]) == BINARY


def test_v2_bytes_in_and_out(server: ServeProcess) -> None:
    body = {
        "inputs": [
            {"name": "int_tensor", "shape": [1, 3, 2], "datatype": "INT32", "data": [1] * 6},
            {"name": "str_tensor", "shape": [2], "datatype": "BYTES", "data": ["x", "y\u00fc"]},
            {"name": "bin_tensor", "shape": [], "datatype": "BYTES", "data": ["z"]},
        ]
    }
    reply = server.post("/v2/models/strings/infer", json=body)
    assert reply.status_code == 200, reply.text
    outputs = {o["name"]: o for o in reply.json()["outputs"]}
    assert outputs["str_echo"]["datatype"] == "BYTES" and outputs["str_echo"]["shape"] == [2, 1]
    assert outputs["str_echo"]["data"] == ["x", "y\u00fc"]
    assert outputs["bin_bytes"]["data"] == ["z"]


def test_grpc_string_val_in_and_out(server: ServeProcess) -> None:
    if not grpc_api.available():  # pragma: no cover - the test set-up installs [grpc]
        pytest.skip("the [grpc] extra is not installed")
    api = grpc_api.load()
    request = api.predict_pb2.PredictRequest()
    request.model_spec.name = "strings"
    feeds = {
        "int_tensor": np.ones((1, 3, 2), np.int32),
        "str_tensor": np.array([b"foo", BINARY], dtype=object),
        "bin_tensor": np.array(b"one", dtype=object),
    }
    for name, array in feeds.items():
        request.inputs[name].CopyFrom(grpc_api.make_tensor_proto(api, array))
    with api.grpc.insecure_channel(server.grpc_target) as channel:
        stub = api.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        reply = stub.Predict(request, timeout=30)
    echo = grpc_api.make_ndarray(api, reply.outputs["str_echo"])
    assert echo.tolist() == [[b"foo"], [BINARY]]
    assert reply.outputs["str_echo"].dtype == api.types_pb2.DT_STRING


def test_tritonclient_http_bytes_exact_with_binary_outputs(server: ServeProcess) -> None:
    """Triton's own client: BYTES in, and out as binary data (every byte kept, non-UTF-8 too)."""
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    inputs = [
        httpclient.InferInput("int_tensor", [1, 3, 2], "INT32"),
        httpclient.InferInput("str_tensor", [2], "BYTES"),
        httpclient.InferInput("bin_tensor", [], "BYTES"),
    ]
    inputs[0].set_data_from_numpy(np.ones((1, 3, 2), np.int32))
    inputs[1].set_data_from_numpy(np.array([b"foo", BINARY], dtype=object))
    inputs[2].set_data_from_numpy(np.array(BINARY, dtype=object), binary_data=True)
    outputs = [
        httpclient.InferRequestedOutput(n, binary_data=True) for n in ("str_echo", "bin_bytes")
    ]
    result = client.infer("strings", inputs, outputs=outputs)
    assert result.as_numpy("str_echo").tolist() == [[b"foo"], [BINARY]]
    assert result.as_numpy("bin_bytes").tolist() == [BINARY]


def test_tritonclient_grpc_bytes_in_and_out(server: ServeProcess) -> None:
    grpcclient = pytest.importorskip("tritonclient.grpc")
    if server.grpc_port is None:  # pragma: no cover - the test set-up installs [grpc]
        pytest.skip("the [grpc] extra is not installed")
    client = grpcclient.InferenceServerClient(url=server.grpc_target)
    inputs = [
        grpcclient.InferInput("int_tensor", [1, 3, 2], "INT32"),
        grpcclient.InferInput("str_tensor", [2], "BYTES"),
        grpcclient.InferInput("bin_tensor", [], "BYTES"),
    ]
    inputs[0].set_data_from_numpy(np.full((1, 3, 2), 5, np.int32))
    inputs[1].set_data_from_numpy(np.array([BINARY, b"bar"], dtype=object))
    inputs[2].set_data_from_numpy(np.array(b"one", dtype=object))
    result = client.infer("strings", inputs)
    assert result.as_numpy("str_echo").tolist() == [[BINARY], [b"bar"]]
    assert result.as_numpy("doubled").tolist() == [[[10, 10]] * 3]
    client.close()
