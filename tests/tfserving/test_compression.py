"""Compressed request bodies over real HTTP: ``Content-Encoding`` on ``/v1`` and ``/v2``.

TF Serving inflates gzip bodies; tritonclient's ``request_compression_algorithm``
sends gzip or deflate with ``Inference-Header-Content-Length`` counting the
JSON header of the *decompressed* body (Triton's definition).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable

import numpy as np
import pytest

from tests.support.serve import ServeProcess

TWO = "saved_model_half_plus_two_2_versions"
THREE = "saved_model_half_plus_three"
HEADER = "Inference-Header-Content-Length"
CODECS: dict[str, Callable[[bytes], bytes]] = {"gzip": gzip.compress, "deflate": zlib.compress}


@pytest.mark.parametrize("coding", CODECS)
def test_v1_predict(server: ServeProcess, coding: str) -> None:
    body = CODECS[coding](json.dumps({"instances": [[1.0], [6.0]]}).encode())
    reply = server.post(
        f"/v1/models/{TWO}:predict", data=body, headers={"Content-Encoding": coding}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"predictions": [[2.5], [5.0]]}


@pytest.mark.parametrize("coding", CODECS)
def test_v2_binary_infer_header_length_is_of_the_decompressed_body(
    server: ServeProcess, coding: str
) -> None:
    values = np.tile(np.array([[1.0], [2.0], [-4.0]], np.float32), (100, 1))
    x = {"name": "x", "shape": [300, 1], "datatype": "FP32",
         "parameters": {"binary_data_size": values.nbytes}}  # fmt: skip
    head = json.dumps({"id": "r" * 500, "inputs": [x]}).encode()
    body = CODECS[coding](head + values.tobytes())
    assert len(body) < len(head)  # the header length is larger than what is sent
    reply = server.post(
        f"/v2/models/{THREE}/infer",
        data=body,
        headers={"Content-Encoding": coding, HEADER: str(len(head))},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][0]["data"] == [3.5, 4.0, 1.0] * 100


def test_v2_json_infer_gzip(server: ServeProcess) -> None:
    request = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [2.0]}]}
    body = gzip.compress(json.dumps(request).encode())
    reply = server.post(
        f"/v2/models/{THREE}/infer", data=body, headers={"Content-Encoding": "gzip"}
    )
    assert reply.json()["outputs"][0]["data"] == [4.0]


@pytest.mark.parametrize(
    ("path", "body", "coding", "status", "message"),
    [
        # 1 MiB is the session server's --max_request_bytes; 4 MB of JSON spaces inflate past it
        (f"/v1/models/{TWO}:predict", gzip.compress(b" " * 4_000_000 + b"{}"), "gzip", 413,
         "decompressed request body exceeds 1048576 bytes"),
        (f"/v2/models/{THREE}/infer", zlib.compress(b" " * 4_000_000 + b"{}"), "deflate", 413,
         "decompressed request body exceeds 1048576 bytes"),
        (f"/v1/models/{TWO}:predict", b'{"instances": [[1.0]]}', "gzip", 400,
         "Content-Encoding gzip: the body is not gzip data"),
        (f"/v2/models/{THREE}/infer", b'{"inputs": []}', "br", 400,
         "Unsupported Content-Encoding: br"),
    ],
    ids=["v1-bomb", "v2-bomb", "not-gzip", "brotli"],
)  # fmt: skip
def test_errors(
    server: ServeProcess, path: str, body: bytes, coding: str, status: int, message: str
) -> None:
    reply = server.post(path, data=body, headers={"Content-Encoding": coding})
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]
    assert server.post(f"/v1/models/{TWO}:predict", json={"instances": [[0.0]]}).ok
