"""TensorProto <-> numpy, ``grpc://`` URLs, and the clear error without the [grpc] extra."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kva.consumer.config import parse_model_spec
from kva.grpc_api import TensorError, load, make_ndarray, make_tensor_proto, parse_grpc_url
from tests.support.process import ROOT

API = load()
DTYPES = ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "uint16",
          "uint32", "uint64", "bool"]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_through_tensor_content(dtype: str) -> None:
    array = (np.arange(12).reshape(3, 4) % 7).astype(dtype)
    proto = API.tensor_pb2.TensorProto.FromString(make_tensor_proto(API, array).SerializeToString())
    back = make_ndarray(API, proto)
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 4)
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize(
    ("field", "dtype", "values", "expected"),
    [
        ("float_val", "DT_FLOAT", [1.5, 2.5], np.array([1.5, 2.5], np.float32)),
        ("int_val", "DT_UINT8", [0, 255], np.array([0, 255], np.uint8)),
        ("int64_val", "DT_INT64", [-(2**40), 3], np.array([-(2**40), 3], np.int64)),
        ("bool_val", "DT_BOOL", [True, False], np.array([True, False])),
        ("half_val", "DT_HALF", [15360, 16384], np.array([1.0, 2.0], np.float16)),
        ("string_val", "DT_STRING", [b"a", b"\xff"], np.array([b"a", b"\xff"], dtype=object)),
    ],
)
def test_typed_value_fields(field, dtype, values, expected) -> None:
    proto = API.tensor_pb2.TensorProto(dtype=API.types_pb2.DataType.Value(dtype))
    proto.tensor_shape.dim.add(size=2)
    getattr(proto, field).extend(values)
    back = make_ndarray(API, proto)
    assert back.dtype == expected.dtype
    assert back.tolist() == expected.tolist()


def test_scalar_and_fill() -> None:
    scalar = API.tensor_pb2.TensorProto(dtype=API.types_pb2.DT_INT32, int_val=[7])
    assert make_ndarray(API, scalar).shape == ()
    scalar.tensor_shape.dim.add(size=2)
    scalar.tensor_shape.dim.add(size=3)
    assert make_ndarray(API, scalar).tolist() == [[7] * 3] * 2


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda p: p.tensor_shape.dim.add(size=-1), "negative dimension"),
        (lambda p: setattr(p.tensor_shape, "unknown_rank", True), "unknown rank"),
        (lambda p: setattr(p, "dtype", API.types_pb2.DT_COMPLEX64), "unsupported dtype DT_COMPLEX64"),
        (lambda p: (p.tensor_shape.dim.add(size=3), p.float_val.extend([1, 2])), "holds 2 values"),
        (lambda p: (p.tensor_shape.dim.add(size=1), setattr(p, "tensor_content", b"abc")), "holds 3 bytes"),
        (lambda p: p.tensor_shape.dim.add(size=1 << 40), "too large"),
    ],
    ids=["negative", "unknown-rank", "dtype", "count", "content", "huge"],
)  # fmt: skip
def test_bad_tensors(build, message) -> None:
    proto = API.tensor_pb2.TensorProto(dtype=API.types_pb2.DT_FLOAT)
    build(proto)
    with pytest.raises(TensorError, match=message):
        make_ndarray(API, proto)


@pytest.mark.parametrize(
    ("url", "target", "model", "version"),
    [
        ("grpc://localhost:8500/mobilenet_v2", "localhost:8500", "mobilenet_v2", None),
        ("grpc://10.0.0.7:9000/m/versions/3", "10.0.0.7:9000", "m", 3),
        ("grpc://[::1]:8500/m/", "[::1]:8500", "m", None),
    ],
)
def test_grpc_urls(url, target, model, version) -> None:
    parsed = parse_grpc_url(url)
    assert (parsed.target, parsed.model, parsed.version) == (target, model, version)
    assert parse_model_spec(f"m={url},http://h:8501/v1/models/m").urls[0] == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("grpc://host/m", "give the gRPC port"),
        ("grpc://host:8500", "grpc://host:port/<model>"),
        ("grpc://host:8500/a/b", "grpc://host:port/<model>"),
        ("grpc://host:8500/m/versions/0", "versions/<positive integer>"),
        ("grpc://host:99999/m", "bad port"),
        ("grpc:///m", "grpc://host:port/<model>"),
    ],
)
def test_bad_grpc_urls(url, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_model_spec(f"m={url}")


@pytest.mark.subprocess
def test_grpc_url_without_the_extra_fails_clearly() -> None:
    code = (
        "import sys; sys.modules['grpc'] = None\n"
        "from kva.consumer.config import ConsumerSettings\n"
        "try:\n"
        "    ConsumerSettings(consume_models=['m=grpc://127.0.0.1:8500/m'])\n"
        "except Exception as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "gRPC replicas need the [grpc] extra" in done.stdout, done.stdout + done.stderr
    assert "install kafka-video-analytics[grpc]" in done.stdout
