"""The consumer's ``grpc://`` replicas against real ``kva serve --port`` processes.

Backend calls, REST/gRPC agreement, deadlines, ejection and the
GetModelStatus probe, and end to end: Kafka -> kva consume with one gRPC
and one REST replica of mobilenet_v2 -> both used, labels right.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from kva.consumer.backends import backend_for_url
from kva.consumer.balancer import ReplicaPool
from kva.consumer.errors import InferenceError
from kva.consumer.grpc_backend import GrpcBackend
from kva.consumer.metrics import ConsumerMetrics
from kva.consumer.models import ModelRuntime
from kva.frame import Frame
from kva.grpc_api import make_ndarray, make_tensor_proto
from tests.consumer.conftest import consumer_settings, metadata_docs, running_consumer
from tests.models.expectations import CLASSIFICATION_CASES, photo, photo_jpeg
from tests.support.kafka import send_frames
from tests.support.process import starts_processes
from tests.support.serve import ServeProcess
from tests.support.wait import wait_for
from tests.tfserving.slow_model import build_slow_model

MODEL = "mobilenet_v2"


def _config(models: Path, folder: Path) -> list[str]:
    path = folder / "models.config"
    path.write_text(
        f'model_config_list {{ config {{ name: "{MODEL}" base_path: "{models}/{MODEL}" }} }}\n'
    )
    return ["--model_config_file", str(path)]


@pytest.fixture(scope="module")
@starts_processes
def mobilenet_replicas(
    built_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServeProcess]]:
    folder = tmp_path_factory.mktemp("grpc-consumer")
    args = _config(built_models, folder)
    started = [ServeProcess(args, folder / f"serve-{i}.log", grpc=True).start() for i in range(2)]
    yield started
    for replica in started:
        replica.stop()


@pytest.mark.slow
def test_grpc_backend_agrees_with_rest(mobilenet_replicas) -> None:
    replica = mobilenet_replicas[0]
    grpc_backend = backend_for_url(replica.grpc_url(MODEL), read_timeout=10)
    rest_backend = backend_for_url(replica.model_url(MODEL), read_timeout=10)
    try:
        assert isinstance(grpc_backend, GrpcBackend) and grpc_backend.ready()
        info = grpc_backend.metadata()
        assert info == rest_backend.metadata()
        assert (info.kind, info.input_name, info.height, info.width) == (
            "classifier",
            "image",
            224,
            224,
        )
        labels = grpc_backend.labels()
        assert labels is not None and len(labels) == 1000 and labels == rest_backend.labels()
        for name, expected in CLASSIFICATION_CASES.items():
            outputs = grpc_backend.infer(info, photo_jpeg(name))
            assert outputs["scores"].shape == (5,) and outputs["classes"].shape == (5,)
            assert labels[int(outputs["classes"][0])] in expected
            rest = rest_backend.infer(info, photo_jpeg(name))
            np.testing.assert_array_equal(outputs["classes"], rest["classes"])
            np.testing.assert_allclose(outputs["scores"], rest["scores"], rtol=1e-5)
    finally:
        grpc_backend.close()
        rest_backend.close()


@pytest.mark.slow
def test_errors_are_typed(mobilenet_replicas) -> None:
    replica = mobilenet_replicas[0]
    missing = backend_for_url(replica.grpc_url("nope"))
    with pytest.raises(InferenceError) as error:
        missing.metadata()
    assert (error.value.reason, error.value.retriable) == ("http_4xx", False)
    assert "NOT_FOUND" in str(error.value) and not missing.ready()
    backend = backend_for_url(replica.grpc_url(MODEL), read_timeout=10)
    info = backend.metadata()
    with pytest.raises(InferenceError) as error:
        backend.infer(info, b"not an image")
    assert (error.value.reason, error.value.retriable) == ("http_4xx", False)
    assert "INVALID_ARGUMENT" in str(error.value) and "JPEG and PNG" in str(error.value)
    nobody = backend_for_url("grpc://127.0.0.1:1/m", connect_timeout=0.5, read_timeout=0.5)
    with pytest.raises(InferenceError) as error:
        nobody.metadata()
    assert error.value.reason in ("connect", "timeout") and error.value.retriable
    for b in (missing, backend, nobody):
        b.close()


@pytest.mark.slow
def test_deadline_is_the_read_timeout(start_grpc, tmp_path) -> None:
    """A Predict slower than connect + read timeout ends as a retriable ``timeout``."""
    build_slow_model(tmp_path)
    s = start_grpc("--model_name", "slow", "--model_base_path", str(tmp_path / "slow"))
    backend = GrpcBackend(f"grpc://{s.target}/slow", connect_timeout=0.1, read_timeout=0.2)
    request = s.api.predict_pb2.PredictRequest()
    request.model_spec.name = "slow"
    request.inputs["x"].CopyFrom(make_tensor_proto(s.api, np.ones((1, 1), np.float32)))
    started = time.monotonic()
    with pytest.raises(InferenceError) as error:
        backend._call(backend.predictions.Predict, request, "Predict")
    assert time.monotonic() - started < 0.9
    assert (error.value.reason, error.value.retriable) == ("timeout", True)
    backend.close()


@pytest.mark.slow
def test_grpc_replica_is_ejected_and_probed_back(built_models, tmp_path) -> None:
    """Stop the gRPC replica: requests go to the REST one, the replica is ejected; restart
    it on the same port: the GetModelStatus probe puts it back."""
    args = _config(built_models, tmp_path)
    grpc_replica = ServeProcess(args, tmp_path / "grpc.log", grpc=True).start()
    rest_replica = ServeProcess(args, tmp_path / "rest.log").start()
    try:
        backends = [
            backend_for_url(grpc_replica.grpc_url(MODEL), read_timeout=10),
            backend_for_url(rest_replica.model_url(MODEL, "v2"), read_timeout=10),
        ]
        pool = ReplicaPool(
            MODEL, backends, max_inflight=1, eject_after=1, probe_interval=0.1,
            metrics=ConsumerMetrics(),
        )  # fmt: skip
        runtime = ModelRuntime(backends[0].metadata(), None, pool, 1, 1.0, 3, 0.0)
        image = photo_jpeg("coffee")
        used = {runtime.run(image).replica for _ in range(4)}
        assert used == {b.url for b in backends}
        assert grpc_replica.stop() == 0
        results = [runtime.run(image) for _ in range(3)]
        assert all(r.status == "ok" and r.replica == backends[1].url for r in results)
        assert [r.up for r in pool.replicas] == [False, True]
        grpc = pool.replicas[0]
        assert not pool.probe(grpc)
        grpc_replica.start()
        wait_for(lambda: pool.probe(grpc), 20, "the probe to bring the gRPC replica back")
        used = {runtime.run(image).replica for _ in range(4)}
        assert used == {b.url for b in backends}
        pool.close()
    finally:
        grpc_replica.stop()
        rest_replica.stop()


@pytest.mark.integration
@pytest.mark.slow
def test_consumer_with_one_grpc_and_one_rest_replica(
    mobilenet_replicas, kafka_settings, topics, unique_name, reader
) -> None:
    grpc_url = mobilenet_replicas[0].grpc_url(MODEL)
    rest_url = mobilenet_replicas[1].model_url(MODEL)
    settings = consumer_settings(
        kafka_settings, topics, unique_name, consume_models=[f"{MODEL}={grpc_url},{rest_url}"]
    )
    meta = reader(topics.metadata)
    names = ["chelsea", "coffee"] * 3
    with running_consumer(settings):
        for seq, name in enumerate(names):
            image = photo(name)
            frame = Frame(f"{name}-{seq}", seq, time.time_ns(), image.shape[1], image.shape[0],
                          photo_jpeg(name))  # fmt: skip
            send_frames(kafka_settings, topics.input, frame)
            wait_for(lambda n=seq + 1: meta.count() >= n, 30, f"frame {seq} processed")
    docs = metadata_docs(meta.snapshot())
    assert len(docs) == len(names)
    replicas = set()
    for doc in docs:
        (result,) = doc["models"]
        assert result["model"] == MODEL and result["status"] == "ok", result
        expected = CLASSIFICATION_CASES[doc["stream"].split("-")[0]]
        assert result["classes"][0]["label"] in expected, result
        replicas.add(result["replica"])
    assert replicas == {grpc_url, rest_url}


@pytest.mark.slow
def test_image_input_forms(mobilenet_replicas) -> None:
    """DT_STRING [N] / [N, 1] encoded images and raw uint8 [1, 224, 224, 3] tensors."""
    replica = mobilenet_replicas[0]
    backend = backend_for_url(replica.grpc_url(MODEL), read_timeout=10)
    assert isinstance(backend, GrpcBackend)
    api = backend.api

    def predict(tensor: np.ndarray) -> dict[str, np.ndarray]:
        request = api.predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["image"].CopyFrom(make_tensor_proto(api, tensor))
        response = backend._call(backend.predictions.Predict, request, "Predict")
        return {k: make_ndarray(api, v) for k, v in response.outputs.items()}

    cat, cup = photo_jpeg("chelsea"), photo_jpeg("coffee")
    two = predict(np.array([cat, cup], dtype=object))
    assert two["classes"].shape == (2, 5) and two["scores"].dtype == np.float32
    column = predict(np.array([[cat], [cup]], dtype=object))
    np.testing.assert_array_equal(two["classes"], column["classes"])
    raw = cv2.resize(photo("coffee"), (224, 224), interpolation=cv2.INTER_LINEAR)
    labels = backend.labels()
    assert labels is not None
    top = predict(raw[np.newaxis])["classes"][0][0]
    assert labels[int(top)] in CLASSIFICATION_CASES["coffee"]
    with pytest.raises(InferenceError, match=r"encoded images need shape \[N\]"):
        predict(np.array([[cat, cup]], dtype=object))
    with pytest.raises(InferenceError, match="expects DT_UINT8 or DT_STRING"):
        predict(raw[np.newaxis].astype(np.float32))
    backend.close()
