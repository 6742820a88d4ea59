"""``tritonclient.http`` (KServe v2 REST, Triton's own client) against ``kva serve``.

The calls of the client's README, and those the issue found missing: Triton's
model configuration, repository index and statistics, and gzip/deflate bodies
(``request_compression_algorithm``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.models.expectations import CLASSIFICATION_CASES, photo_jpeg
from tests.support.serve import ServeProcess

httpclient = pytest.importorskip("tritonclient.http")  # scripts/setup.sh installs it
from tritonclient.utils import InferenceServerException  # noqa: E402 - after the skip

HALF = "half_plus_two"


@pytest.fixture
def client(kva_serve_models: ServeProcess) -> Any:
    return httpclient.InferenceServerClient(url=kva_serve_models.url.removeprefix("http://"))


def test_health_metadata_and_binary_jpeg(client: Any, kva_serve_models: ServeProcess) -> None:
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(HALF)
    assert client.get_model_metadata(HALF)["inputs"] == [
        {"name": "x", "datatype": "FP32", "shape": [-1, 1]}
    ]
    labels = kva_serve_models.get("/v2/models/mobilenet_v2/labels").json()
    image = httpclient.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([photo_jpeg("coffee", 300, 200)], dtype=object))
    result = client.infer("mobilenet_v2", [image])
    assert labels[result.as_numpy("classes")[0, 0]] in CLASSIFICATION_CASES["coffee"]


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(client: Any, algorithm: str) -> None:
    x = np.array([[1.0], [3.0]], np.float32)
    tensor = httpclient.InferInput("x", [2, 1], "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    result = client.infer(HALF, [tensor], request_compression_algorithm=algorithm,
                          response_compression_algorithm=algorithm)  # fmt: skip
    np.testing.assert_allclose(result.as_numpy("y"), x / 2 + 2)


def test_triton_extensions(client: Any) -> None:
    config = client.get_model_config(HALF)
    assert config["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [-1, 1]}]
    assert {"name": HALF, "version": "123", "state": "READY"} in (
        client.get_model_repository_index()
    )
    before = client.get_inference_statistics(HALF)["model_stats"][0]["inference_count"]
    tensor = httpclient.InferInput("x", [3, 1], "FP32")
    tensor.set_data_from_numpy(np.zeros((3, 1), np.float32))
    client.infer(HALF, [tensor])
    after = client.get_inference_statistics(HALF, "123")["model_stats"][0]["inference_count"]
    assert after == before + 3


def test_unknown_model(client: Any) -> None:
    with pytest.raises(InferenceServerException) as caught:
        client.get_model_config("nope")
    assert caught.value.status() == "404"
    assert "Servable not found for request: Latest(nope)" in caught.value.message()
