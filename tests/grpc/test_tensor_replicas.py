"""Tensor inputs: the consumer sends a model the tensor it wants, to any server.

MLServer, a real third-party KServe v2 server that decodes no images, serves
mobilenet_v2 (its IR through an OpenVINO runtime) over REST and gRPC, in one pool
with ``kva serve`` over ``/v1``, ``/v2``, KServe gRPC and TF Serving gRPC: with
``--model-input mobilenet_v2:send=tensor`` every replica gets the frame as a
uint8 tensor, every replica gets work, and they agree. And ``kva serve`` serving a
SavedModel that takes a float NCHW tensor (TensorFlow built it) gets, over ``/v1``,
the tensor the consumer's ``--model-input`` describes (BGR, scaled, shifted):
the answer is TensorFlow's on that same tensor.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kva.consumer.model_input import InputFormat, to_tensor
from kva.consumer.work import decode_jpeg, resize_for_model
from kva.frame import Frame
from tests.consumer.conftest import consumer_settings, metadata_docs, running_consumer
from tests.models.expectations import CLASSIFICATION_CASES, photo, photo_jpeg
from tests.support import tf_models
from tests.support.kafka import send_frames
from tests.support.mlserver import MLServerProcess, mlserver_path
from tests.support.process import starts_processes
from tests.support.serve import ServeProcess
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.subprocess]

MODEL = "mobilenet_v2"


@pytest.fixture(scope="module")
@starts_processes
def mlserver(
    built_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MLServerProcess]:
    if mlserver_path() is None:  # pragma: no cover - scripts/setup.sh test installs it
        pytest.fail("MLServer is not installed: run scripts/setup.sh test")
    server = MLServerProcess(
        MODEL,
        built_models / MODEL / "1",
        tmp_path_factory.mktemp("mlserver"),
        inputs=[{"name": "image", "datatype": "UINT8", "shape": [1, 224, 224, 3]}],
        outputs=[
            {"name": "scores", "datatype": "FP32", "shape": [1, 5]},
            {"name": "classes", "datatype": "INT32", "shape": [1, 5]},
        ],
    )
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
@starts_processes
def kva_serve(
    built_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("tensor-kva-serve")
    args = ["--model_name", MODEL, "--model_base_path", str(built_models / MODEL)]
    serve = ServeProcess(args, folder / "serve.log", grpc=True).start()
    yield serve
    serve.stop()


def test_mlserver_and_kva_serve_in_one_pool_agree(
    mlserver: MLServerProcess, kva_serve: ServeProcess, kafka_settings, topics, unique_name, reader
) -> None:
    urls = [
        mlserver.grpc_url(),  # MLServer first: it has no labels, kva serve has
        mlserver.rest_url(),
        kva_serve.model_url(MODEL, "v1"),
        kva_serve.model_url(MODEL, "v2"),
        kva_serve.kserve_grpc_url(MODEL),
        kva_serve.grpc_url(MODEL),
    ]
    settings = consumer_settings(
        kafka_settings, topics, unique_name,
        consume_models=[f"{MODEL}={','.join(urls)}"],
        consume_model_inputs=[f"{MODEL}:send=tensor"],
    )  # fmt: skip
    meta = reader(topics.metadata)
    seq = 0
    by_image: dict[str, list[dict[str, Any]]] = {}
    with running_consumer(settings):
        for name in ("chelsea", "coffee"):
            image, data = photo(name), photo_jpeg(name)
            served: set[str] = set()
            for _ in range(24):
                frame = Frame(f"{name}-{seq}", seq, time.time_ns(), image.shape[1],
                              image.shape[0], data)  # fmt: skip
                send_frames(kafka_settings, topics.input, frame)
                seq += 1
                wait_for(lambda n=seq: meta.count() >= n, 30, f"frame {seq} processed")
                (result,) = metadata_docs(meta.snapshot())[-1]["models"]
                by_image.setdefault(name, []).append(result)
                served.add(result["replica"])
                if served == set(urls):
                    break
            assert served == set(urls), f"{name}: replicas that got work: {sorted(served)}"
    for name, results in by_image.items():
        assert all(r["status"] == "ok" for r in results), results
        tops = {(r["classes"][0]["id"], r["classes"][0]["label"]) for r in results}
        assert len(tops) == 1, f"{name}: replicas disagree: {tops}"
        (_id, label), *_ = tops
        assert label in CLASSIFICATION_CASES[name], label
        scores = [r["classes"][0]["score"] for r in results]
        assert max(scores) - min(scores) <= 1e-3, scores


def test_a_float_nchw_saved_model_gets_the_described_tensor_over_v1(
    tmp_path: Path, kafka_settings, topics, unique_name, reader
) -> None:
    base = tmp_path / "models"
    tf_models.call("nchw-classifier", base / "nchw" / "1")
    serve = ServeProcess(
        ["--model_name", "nchw", "--model_base_path", str(base / "nchw"),
         "--cache_dir", str(tmp_path / "cache")],
        tmp_path / "serve.log",
    ).start()  # fmt: skip
    fmt = InputFormat(True, 64, 48, "float32", "NCHW", "BGR", 1 / 127.5, (127.5, 127.5, 127.5))
    settings = consumer_settings(
        kafka_settings, topics, unique_name,
        consume_models=[f"nchw={serve.model_url('nchw', 'v1')}"],
        consume_model_inputs=["nchw:order=BGR,scale=0.00784313725490196,mean=127.5/127.5/127.5"],
        consume_top_k=5,
    )  # fmt: skip
    meta = reader(topics.metadata)
    try:
        with running_consumer(settings):
            image, data = photo("coffee"), photo_jpeg("coffee")
            send_frames(kafka_settings, topics.input,
                        Frame("cup", 0, time.time_ns(), image.shape[1], image.shape[0], data))  # fmt: skip
            wait_for(lambda: meta.count() >= 1, 30, "the frame processed")
    finally:
        serve.stop()
    (result,) = metadata_docs(meta.snapshot())[-1]["models"]
    assert result["status"] == "ok", result
    got = {c["id"]: c["score"] for c in result["classes"]}

    decoded = decode_jpeg(data)
    assert decoded is not None
    tensor = to_tensor(resize_for_model(decoded, (64, 48)), fmt)
    np.save(tmp_path / "in.npy", tensor)
    tf_models.call(
        "run-saved-model", base / "nchw" / "1", tmp_path / "in.npy", tmp_path / "out.npz"
    )
    expected = np.load(tmp_path / "out.npz")
    want = dict(zip(expected["classes"][0].tolist(), expected["scores"][0].tolist(), strict=True))
    assert got.keys() == want.keys()
    for class_id, score in want.items():
        assert abs(got[class_id] - score) < 1e-4, (got, want)
