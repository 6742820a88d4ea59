"""The consumer's ``kserve+grpc://`` replicas against real ``kva serve --port`` processes.

The backend alone (agreement with REST ``/v2``, typed errors, the deadline), then
end to end through Kafka: one model on a pool mixing every protocol the consumer
speaks (KServe gRPC, TF Serving REST ``/v1``, KServe REST ``/v2``, TF Serving
gRPC), each replica its own ``kva serve`` process: every replica gets work and
they agree; and the KServe gRPC replica's server SIGKILLed mid-run: the frames go
on through the others, the dead replica is ejected and counted, and the
``ModelReady`` probe brings it back once it is started again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kva import kserve_grpc_api
from kva.consumer.backend_api import ModelInfo
from kva.consumer.backends import KServeBackend, backend_for_url
from kva.consumer.errors import InferenceError
from kva.consumer.grpc_backend import GrpcBackend
from kva.consumer.kserve_grpc_backend import KServeGrpcBackend, response_tensors
from kva.consumer.v2_tensors import decode_outputs
from kva.frame import Frame
from tests.consumer.conftest import consumer_settings, metadata_docs, metric, running_consumer
from tests.models.expectations import CLASSIFICATION_CASES, photo, photo_jpeg
from tests.support.kafka import Feeder, Reader, send_frames
from tests.support.process import starts_processes
from tests.support.serve import ServeProcess
from tests.support.wait import wait_for
from tests.tfserving.slow_model import build_slow_model

MODEL = "mobilenet_v2"
#: Failure reasons a dead gRPC replica can be counted under.
DEAD_REASONS = ("connect", "http_5xx", "timeout")


@pytest.fixture(scope="module")
@starts_processes
def replicas(
    built_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServeProcess]]:
    """Four ``kva serve --port`` processes of mobilenet_v2 (one per protocol in the pool)."""
    folder = tmp_path_factory.mktemp("kserve-consumer")
    config = folder / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "{MODEL}" base_path: "{built_models}/{MODEL}" }} }}\n'
    )
    args = ["--model_config_file", str(config)]
    started: list[ServeProcess] = []
    try:
        for i in range(4):
            started.append(ServeProcess(args, folder / f"serve-{i}.log", grpc=True).start())
        yield started
    finally:
        for replica in started:
            replica.stop()


def _pool_urls(replicas: list[ServeProcess]) -> list[str]:
    """KServe gRPC first (it has no labels: they must come from another replica), then
    ``/v1``, ``/v2`` and TF Serving gRPC, each on its own server."""
    return [
        replicas[0].kserve_grpc_url(MODEL),
        replicas[1].model_url(MODEL, "v1"),
        replicas[2].model_url(MODEL, "v2"),
        replicas[3].grpc_url(MODEL),
    ]


def test_infer_answers_raw_or_typed_decode_alike() -> None:
    """Triton and kva answer in ``raw_output_contents``; a server may use typed contents."""
    api = kserve_grpc_api.load()
    info = ModelInfo(MODEL, "classifier", "image", 224, 224, ("classes", "scores"))
    scores, classes = np.array([[0.75, 0.25]], np.float32), np.array([[3, 1]], np.int64)
    raw = api.message("ModelInferResponse")(model_name=MODEL)
    raw.outputs.add(name="scores", datatype="FP32", shape=[1, 2])
    raw.outputs.add(name="classes", datatype="INT64", shape=[1, 2])
    raw.raw_output_contents.extend(
        [scores.astype("<f4").tobytes(), classes.astype("<i8").tobytes()]
    )
    typed = api.message("ModelInferResponse")(model_name=MODEL)
    out = typed.outputs.add(name="classes", datatype="INT64", shape=[1, 2])
    out.contents.int64_contents.extend([3, 1])
    out = typed.outputs.add(name="scores", datatype="FP32", shape=[1, 2])
    out.contents.fp32_contents.extend([0.75, 0.25])
    for response in (raw, typed):
        outputs = decode_outputs(response_tensors(response), info, "u")
        np.testing.assert_array_equal(outputs["scores"], scores[0])
        np.testing.assert_array_equal(outputs["classes"], classes[0])
    del raw.raw_output_contents[1]  # one raw entry short
    with pytest.raises(InferenceError, match="unexpected infer answer") as caught:
        decode_outputs(response_tensors(raw), info, "u")
    assert (caught.value.reason, caught.value.retriable) == ("bad_response", True)


@pytest.mark.slow
def test_kserve_grpc_backend_agrees_with_rest_v2(replicas) -> None:
    replica = replicas[0]
    kserve = backend_for_url(replica.kserve_grpc_url(MODEL), read_timeout=10)
    rest = backend_for_url(replica.model_url(MODEL, "v2"), read_timeout=10)
    tf_grpc = backend_for_url(replica.grpc_url(MODEL), read_timeout=10)
    try:
        assert isinstance(kserve, KServeGrpcBackend) and isinstance(rest, KServeBackend)
        assert isinstance(tf_grpc, GrpcBackend)
        assert kserve.ready() and kserve.protocol == "kserve_grpc"
        info = kserve.metadata()
        assert info == rest.metadata() == tf_grpc.metadata()
        assert (info.kind, info.input_name, info.height, info.width) == (
            "classifier",
            "image",
            224,
            224,
        )
        assert kserve.labels() is None
        labels = rest.labels()
        assert labels is not None and len(labels) == 1000
        for name, expected in CLASSIFICATION_CASES.items():
            image = photo_jpeg(name)
            outputs = kserve.infer(info, image)
            assert outputs["scores"].shape == (5,) and outputs["classes"].shape == (5,)
            assert labels[int(outputs["classes"][0])] in expected
            over_rest = rest.infer(info, image)
            np.testing.assert_array_equal(outputs["classes"], over_rest["classes"])
            np.testing.assert_array_equal(outputs["scores"], over_rest["scores"])
            assert outputs["scores"].dtype == over_rest["scores"].dtype
    finally:
        for backend in (kserve, rest, tf_grpc):
            backend.close()


@pytest.mark.slow
def test_kserve_grpc_errors_are_typed(replicas) -> None:
    replica = replicas[0]
    missing = backend_for_url(replica.kserve_grpc_url("nope"))
    with pytest.raises(InferenceError) as error:
        missing.metadata()
    assert (error.value.reason, error.value.retriable) == ("http_4xx", False)
    assert "NOT_FOUND" in str(error.value) and "ModelMetadata" in str(error.value)
    assert not missing.ready()
    absent = backend_for_url(f"kserve+grpc://{replica.grpc_target}/{MODEL}/versions/7")
    with pytest.raises(InferenceError) as error:
        absent.metadata()
    assert (error.value.reason, error.value.retriable) == ("http_4xx", False)
    assert not absent.ready()
    backend = backend_for_url(replica.kserve_grpc_url(MODEL), read_timeout=10)
    info = backend.metadata()
    with pytest.raises(InferenceError) as error:
        backend.infer(info, b"not an image")
    assert (error.value.reason, error.value.retriable) == ("http_4xx", False)
    assert "INVALID_ARGUMENT" in str(error.value) and "ModelInfer" in str(error.value)
    nobody = backend_for_url("kserve+grpc://127.0.0.1:1/m", connect_timeout=0.5, read_timeout=0.5)
    with pytest.raises(InferenceError) as error:
        nobody.metadata()
    assert error.value.reason in ("connect", "timeout") and error.value.retriable
    assert not nobody.ready()
    for b in (missing, absent, backend, nobody):
        b.close()


@pytest.mark.slow
def test_kserve_grpc_deadline_is_the_read_timeout(start_grpc, tmp_path) -> None:
    """A ModelInfer slower than connect + read timeout ends as a retriable ``timeout``."""
    build_slow_model(tmp_path)
    s = start_grpc("--model_name", "slow", "--model_base_path", str(tmp_path / "slow"))
    backend = KServeGrpcBackend(
        f"kserve+grpc://{s.target}/slow", connect_timeout=0.1, read_timeout=0.2
    )
    api = kserve_grpc_api.load()
    request: Any = api.message("ModelInferRequest")(model_name="slow")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 1])
    request.raw_input_contents.append(np.ones((1, 1), "<f4").tobytes())
    started = time.monotonic()
    with pytest.raises(InferenceError) as error:
        backend._rpc("ModelInfer", request)
    assert time.monotonic() - started < 0.9
    assert (error.value.reason, error.value.retriable) == ("timeout", True)
    backend.close()


@pytest.mark.integration
@pytest.mark.slow
def test_one_model_on_a_pool_of_every_protocol(
    replicas, kafka_settings, topics, unique_name, reader
) -> None:
    """Each image is sent until every replica has classified it: all agree, all get work."""
    urls = _pool_urls(replicas)
    settings = consumer_settings(
        kafka_settings, topics, unique_name, consume_models=[f"{MODEL}={','.join(urls)}"]
    )
    meta = reader(topics.metadata)
    seq = 0
    by_image: dict[str, list[dict[str, Any]]] = {}
    with running_consumer(settings):
        for name in ("chelsea", "coffee"):
            image, data = photo(name), photo_jpeg(name)
            served: set[str] = set()
            for _ in range(12):  # round robin over 4 replicas: 4 frames are enough
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
        assert all(r["model"] == MODEL and r["status"] == "ok" for r in results), results
        tops = {(r["classes"][0]["id"], r["classes"][0]["label"]) for r in results}
        assert len(tops) == 1, f"{name}: replicas disagree: {tops}"
        (_id, label), *_ = tops
        assert label in CLASSIFICATION_CASES[name], label  # labels from a replica that has them
        scores = [r["classes"][0]["score"] for r in results]
        assert max(scores) - min(scores) <= 1e-4, scores


def _replica_up(service: Any, url: str) -> float:
    return metric(service, "kva_consume_replica_up", {"model": MODEL, "replica": url})


def _served_since(meta: Reader, start: int) -> list[dict[str, Any]]:
    return [doc["models"][0] for doc in metadata_docs(meta.snapshot()[start:])]


@pytest.mark.integration
@pytest.mark.slow
def test_kserve_grpc_replica_killed_mid_run_is_routed_around(
    replicas, kafka_settings, topics, unique_name, reader
) -> None:
    urls = _pool_urls(replicas)
    kserve_url, others = urls[0], set(urls[1:])
    dead = replicas[0]
    settings = consumer_settings(
        kafka_settings, topics, unique_name, consume_models=[f"{MODEL}={','.join(urls)}"]
    )
    meta = reader(topics.metadata)
    coffee = photo_jpeg("coffee")
    feeder = Feeder(
        kafka_settings, topics.input, fps=5, streams=("cam0", "cam1"), make_data=lambda _s: coffee
    )
    try:
        with running_consumer(settings) as service:
            feeder.start()
            wait_for(
                lambda: set(urls) <= {r["replica"] for r in _served_since(meta, 0)},
                60,
                "every replica to serve a frame before the kill",
            )
            dead.kill()
            killed, killed_at = time.monotonic(), meta.count()
            wait_for(lambda: _replica_up(service, kserve_url) == 0, 20, "the dead one ejected")
            ejected, ejected_at = time.monotonic(), meta.count()
            wait_for(lambda: meta.count() >= ejected_at + 24, 30, "frames after the ejection")
            after_kill = _served_since(meta, killed_at)
            after_ejection = _served_since(meta, ejected_at)
            errors = sum(
                metric(
                    service,
                    "kva_consume_inference_errors_total",
                    {"model": MODEL, "replica": kserve_url, "reason": reason},
                )
                for reason in DEAD_REASONS
            )
            ejections = metric(
                service,
                "kva_consume_replica_ejections_total",
                {"model": MODEL, "replica": kserve_url},
            )
            model_errors = sum(
                metric(
                    service,
                    "kva_consume_frames_dropped_total",
                    {"stream": s, "reason": "model_error"},
                )
                for s in feeder.streams
            )
            dead.start()  # the same ports: the ModelReady probe brings it back
            restarted = time.monotonic()
            wait_for(lambda: _replica_up(service, kserve_url) == 1, 60, "the probe to restore it")
            restored = time.monotonic()
            back_at = meta.count()
            wait_for(
                lambda: any(r["replica"] == kserve_url for r in _served_since(meta, back_at)),
                30,
                "the restarted replica to serve again",
            )
    finally:
        feeder.stop()
        if not dead.alive():
            dead.start()
    print(
        f"KServe gRPC replica killed: ejected after {ejected - killed:.2f}s and {errors:.0f} "
        f"failed requests, {len(after_kill)} frames annotated since the kill; restarted: back "
        f"in rotation {restored - restarted:.2f}s after it was ready"
    )
    assert all(r["status"] == "ok" for r in after_kill), [
        r for r in after_kill if r["status"] != "ok"
    ]
    assert {r["replica"] for r in after_ejection} == others
    assert errors >= settings.consume_eject_after and ejections >= 1
    assert model_errors == 0
    assert all(r["classes"][0]["label"] in CLASSIFICATION_CASES["coffee"] for r in after_kill)
