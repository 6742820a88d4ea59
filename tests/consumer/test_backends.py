"""Backends and the replica pool against real HTTP (the fixed-latency test server)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from kva.consumer.backends import KServeBackend, TfServingBackend, backend_for_url
from kva.consumer.balancer import ReplicaPool
from kva.consumer.errors import InferenceError, MetadataError
from kva.consumer.metrics import ConsumerMetrics
from kva.consumer.models import ModelRuntime
from testbed.model_server import FixedLatencyServer
from tests.support.frames import jpeg
from tests.support.wait import wait_for


def _image(size: int = 224, grey: int = 50) -> bytes:
    return jpeg(size, size, grey=grey)


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_metadata_infer_labels(protocol, model_servers) -> None:
    server = model_servers("mobilenet_v2", latency=0, labels=["cat", "dog"])
    backend = backend_for_url(server.url(protocol))
    assert isinstance(backend, TfServingBackend if protocol == "v1" else KServeBackend)
    info = backend.metadata()
    assert (info.kind, info.input_name, info.height, info.width) == (
        "classifier",
        "image",
        224,
        224,
    )
    outputs = backend.infer(info, _image())
    assert outputs["scores"].shape == (5,) and outputs["classes"].shape == (5,)
    assert backend.labels() == ["cat", "dog"]
    assert backend.ready()
    detector = model_servers("blazeface", "detector", latency=0, size=(128, 128), detections=3)
    backend = backend_for_url(detector.url(protocol))
    info = backend.metadata()
    assert info.kind == "detector" and (info.height, info.width) == (128, 128)
    outputs = backend.infer(info, _image(128))
    assert outputs["boxes"].shape == (3, 4) and outputs["scores"].shape == (3,)
    assert backend.labels() is None


@pytest.mark.parametrize("protocol", ["v1", "v2"])
@pytest.mark.parametrize(
    ("mode", "reason", "retriable"),
    [("error", "http_5xx", True), ("garbage", "bad_response", True), ("hang", "timeout", True)],
)
def test_failures_are_typed(protocol, mode, reason, retriable, model_servers) -> None:
    server = model_servers(latency=0)
    backend = backend_for_url(server.url(protocol), read_timeout=0.3)
    info = backend.metadata()
    server.mode = mode
    started = time.monotonic()
    with pytest.raises(InferenceError) as error:
        backend.infer(info, _image())
    assert (error.value.reason, error.value.retriable) == (reason, retriable)
    assert time.monotonic() - started < 2.0
    # a replica answering garbage may well report itself healthy; the others do not
    assert backend.ready() == (mode == "garbage")


def test_unknown_model_and_closed_port(model_servers) -> None:
    server = model_servers(latency=0)
    with pytest.raises(InferenceError) as error:
        backend_for_url(f"http://127.0.0.1:{server.port}/v1/models/nope").metadata()
    assert error.value.reason == "http_4xx" and not error.value.retriable
    assert "Servable not found" in str(error.value)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(InferenceError) as error:
        backend_for_url(f"http://127.0.0.1:{port}/v2/models/m").metadata()
    assert error.value.reason == "connect" and error.value.retriable


def test_wrong_input_shape_is_a_metadata_error(model_servers) -> None:
    server = model_servers(latency=0)
    server.width = 0
    with pytest.raises(MetadataError, match="not \\[N, H, W, 3\\]"):
        backend_for_url(server.url()).metadata()


def _runtime(servers: list[FixedLatencyServer], metrics: ConsumerMetrics, **kw) -> ModelRuntime:
    backends = [backend_for_url(s.url(), read_timeout=kw.pop("read_timeout", 1.0)) for s in servers]
    pool = ReplicaPool(
        "mobilenet_v2",
        backends,
        max_inflight=kw.pop("max_inflight", 1),
        eject_after=kw.pop("eject_after", 2),
        probe_interval=0.1,
        metrics=metrics,
    )
    return ModelRuntime(backends[0].metadata(), None, pool, 1, 1.0, 3, 0.5)


def test_least_outstanding_spreads_and_caps(model_servers) -> None:
    servers = [model_servers(latency=0.05) for _ in range(3)]
    runtime = _runtime(servers, ConsumerMetrics())
    payload = _image()
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(runtime.run(payload))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # three requests, three replicas, one slot each: one request on each
    assert {r.replica for r in results} == {s.url() for s in servers}
    for _ in range(30):
        runtime.run(payload)
    counts = [s.count("POST /v1/models/mobilenet_v2:predict") for s in servers]
    assert max(counts) - min(counts) <= 2, counts


def test_failing_replica_ejected_retried_elsewhere_and_probed_back(model_servers) -> None:
    good, bad = model_servers(latency=0), model_servers(latency=0)
    metrics = ConsumerMetrics()
    runtime = _runtime([good, bad], metrics)
    bad.mode = "error"
    results = [runtime.run(_image()) for _ in range(10)]
    assert all(r.status == "ok" and r.replica == good.url() for r in results)
    assert runtime.pool.up_count() == 1
    labels = {"model": "mobilenet_v2", "replica": bad.url()}
    assert metrics.registry.get_sample_value("kva_consume_replica_up", labels) == 0
    assert metrics.registry.get_sample_value("kva_consume_replica_ejections_total", labels) == 1
    bad.mode = "ok"

    def probed_back() -> bool:
        for replica in runtime.pool.probe_due():
            runtime.pool.probe(replica)
        return runtime.pool.up_count() == 2

    wait_for(probed_back, 5, "the replica probed back")
    assert {runtime.run(_image()).replica for _ in range(6)} == {good.url(), bad.url()}


def test_all_replicas_down_is_unavailable(model_servers) -> None:
    server = model_servers(latency=0)
    runtime = _runtime([server], ConsumerMetrics(), eject_after=1)
    server.mode = "error"
    first = runtime.run(_image())
    assert first.status == "error" and "injected failure" in (first.error or "")
    assert runtime.run(_image()).status == "unavailable"


def test_slow_replica_is_ejected_as_outlier(model_servers) -> None:
    fast, slow = model_servers(latency=0.0), model_servers(latency=0.3)
    runtime = _runtime([fast, slow], ConsumerMetrics())
    for _ in range(12):
        assert runtime.run(_image()).status == "ok"
    stats = {url: up for url, up, _n, _total in runtime.pool.stats()}
    assert stats == {fast.url(): True, slow.url(): False}


def test_labels_from_a_url(model_servers) -> None:
    from kva.consumer.labels import LabelsError, load_labels

    server = model_servers(latency=0, labels=["cat", "dog"])
    assert load_labels(server.url() + "/labels") == ["cat", "dog"]
    with pytest.raises(LabelsError, match="cannot fetch labels"):
        load_labels(f"http://127.0.0.1:{server.port}/v1/models/nope/labels")
