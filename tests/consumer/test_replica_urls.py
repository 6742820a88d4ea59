"""Replica URLs (one scheme per protocol, documented) and the KServe v2 output decoding
that REST ``/v2`` and KServe gRPC share; no server, no broker."""

from __future__ import annotations

import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from kva.consumer.backend_api import ModelInfo, model_info
from kva.consumer.config import REPLICA_PROTOCOLS, parse_model_spec
from kva.consumer.errors import InferenceError, MetadataError
from kva.consumer.v2_tensors import V2Tensor, bytes_element, decode_outputs
from kva.grpc_api import parse_grpc_url
from tests.support.process import ROOT

README = ROOT / "README.md"
INFO = ModelInfo("m", "classifier", "image", 224, 224, ("classes", "scores"))


def test_the_readme_documents_every_replica_url_form() -> None:
    """The consumer section's table has one row per :data:`REPLICA_PROTOCOLS` entry."""
    text = README.read_text()
    start = text.index("## Consumer (`kva consume`)")
    section = text[start : text.index("\n## ", start + 1)]  # up to the next section
    rows = [line.strip() for line in section.splitlines() if line.strip().startswith("| `")]
    documented = [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]  # type: ignore[union-attr]
    assert documented == [p.form for p in REPLICA_PROTOCOLS]
    for row, protocol in zip(rows, REPLICA_PROTOCOLS, strict=True):
        assert protocol.protocol in row and protocol.servers in row, row


@pytest.mark.parametrize(
    ("url", "target", "model", "version"),
    [
        ("kserve+grpc://localhost:8500/mobilenet_v2", "localhost:8500", "mobilenet_v2", None),
        ("kserve+grpc://127.0.0.1:8001/m/versions/3", "127.0.0.1:8001", "m", 3),
        ("kserve+grpc://[::1]:9000/m/", "[::1]:9000", "m", None),
    ],
)
def test_kserve_grpc_urls(url, target, model, version) -> None:
    parsed = parse_grpc_url(url, scheme="kserve+grpc")
    assert (parsed.target, parsed.model, parsed.version) == (target, model, version)
    spec = parse_model_spec(f"m={url},grpc://h:8500/m,http://h:8501/v1/models/m")
    assert spec.urls[0] == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("kserve+grpc://host/m", "give the gRPC port"),
        ("kserve+grpc://host:8001", "kserve+grpc://host:port/<model>"),
        ("kserve+grpc://host:8001/v2/models/m", "kserve+grpc://host:port/<model>"),
        ("kserve+grpc://host:8001/m/versions/0", "versions/<positive integer>"),
        ("kserve+grpc://host:8001/m?x=1", "kserve+grpc://host:port/<model>"),
        ("grpc+kserve://host:8001/m", "http(s)://, grpc://, kserve+grpc://"),
        ("kserve://host:8001/m", "must start with http(s)://, grpc://, kserve+grpc://"),
    ],
)
def test_bad_kserve_grpc_urls_are_clear(url, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_model_spec(f"m={url}")


def test_metadata_of_every_protocol_ends_in_one_model_info() -> None:
    uint8 = np.dtype(np.uint8)
    info = model_info("m", "u", [("image", [-1, 224, 224, 3], uint8)], ["scores", "classes"])
    assert info == INFO
    with pytest.raises(MetadataError, match=r"u: expected one image input, got \['a', 'b'\]"):
        model_info("m", "u", [("b", [1, 2, 2, 3], uint8), ("a", [1], uint8)], ["scores", "classes"])
    nchw = model_info("m", "u", [("x", [1, 3, 96, 128], np.dtype("float32"))], ["boxes", "scores"])
    assert (nchw.layout, nchw.height, nchw.width, nchw.input_dtype) == ("NCHW", 96, 128, "float32")
    with pytest.raises(MetadataError, match="is not \\[N, H, W, 3\\] or \\[N, 3, H, W\\]"):
        model_info("m", "u", [("image", [1, 224, 224, 4], uint8)], ["scores", "classes"])


def test_bytes_element_is_length_prefixed() -> None:
    assert bytes_element(b"jpeg") == struct.pack("<I", 4) + b"jpeg"
    assert bytes_element(b"") == b"\0\0\0\0"


def test_raw_and_listed_outputs_decode_alike() -> None:
    scores = np.array([[0.5, 0.25, 0.125]], np.float32)
    classes = np.array([[7, 3, 1]], np.int64)
    raw = [
        V2Tensor("scores", "FP32", [1, 3], raw=scores.astype("<f4").tobytes()),
        V2Tensor("classes", "INT64", [1, 3], raw=classes.astype("<i8").tobytes()),
        V2Tensor("other", "BYTES", [1], raw=b"ignored: not asked for"),
    ]
    listed = [
        V2Tensor("classes", "INT64", [1, 3], values=[7, 3, 1]),
        V2Tensor("scores", "FP32", [1, 3], values=[[0.5, 0.25, 0.125]]),
    ]
    for tensors in (raw, listed):
        outputs = decode_outputs(tensors, INFO, "u")
        assert sorted(outputs) == ["classes", "scores"]
        np.testing.assert_array_equal(outputs["scores"], scores[0])
        np.testing.assert_array_equal(outputs["classes"], classes[0])
        assert outputs["scores"].dtype == np.float32 and outputs["classes"].dtype == np.int64


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ([V2Tensor("scores", "FP32", [1, 1], values=[1.0])], r"lacks outputs \['classes'\]"),
        (
            [
                V2Tensor("scores", "FP32", [1, 2], raw=b"\0" * 7),
                V2Tensor("classes", "INT64", [1], values=[1]),
            ],
            "unexpected infer answer .*multiple of element size",
        ),
        (
            [
                V2Tensor("scores", "FP32", [1, 3], values=[1.0]),
                V2Tensor("classes", "INT64", [1], values=[1]),
            ],
            "unexpected infer answer .*cannot reshape",
        ),
        (
            [
                V2Tensor("scores", "BYTES", [1], values=[b"x"]),
                V2Tensor("classes", "INT64", [1], values=[1]),
            ],
            "unsupported output datatype BYTES",
        ),
        (
            [V2Tensor("scores", "FP32", [1]), V2Tensor("classes", "INT64", [1], values=[1])],
            "has no values",
        ),
    ],
    ids=["missing", "raw-size", "count", "string", "no-values"],
)
def test_bad_outputs_are_retriable_bad_responses(tensors, message) -> None:
    with pytest.raises(InferenceError, match=message) as caught:
        decode_outputs(tensors, INFO, "u")
    assert (caught.value.reason, caught.value.retriable) == ("bad_response", True)


@pytest.mark.subprocess
def test_kserve_grpc_url_without_grpcio_fails_clearly() -> None:
    code = (
        "import sys; sys.modules['grpc'] = None\n"
        "from kva.consumer.config import ConsumerSettings\n"
        "try:\n"
        "    ConsumerSettings(consume_models=['m=kserve+grpc://127.0.0.1:8500/m'])\n"
        "except Exception as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "KServe gRPC replicas need grpcio and protobuf" in done.stdout, done.stdout + done.stderr
    assert "install kafka-video-analytics[grpc]" in done.stdout
