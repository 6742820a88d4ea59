"""The real pipeline on one machine, for fault injection.

A broker the test controls (kill -9, restart on the same port and data), two
``kva serve`` replicas, a producer, a consumer and the viewer, each a real
child process started through the same supervisor and the same command lines
as ``kva up``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kva.frame import Frame
from kva.launcher.layout import (
    KVA,
    consumer_args,
    http_ok,
    producer_args,
    serve_spec,
    video_args,
    write_model_config,
)
from kva.launcher.supervisor import ManagedService, ServiceSpec, Supervisor
from kva.ports import free_port
from kva.settings import KafkaSettings
from kva.zookeeper.cluster import ClusterSpec, KafkaCluster
from tests.support.kafka import Reader
from tests.support.process import starts_processes

SOURCES = ["cam0=testsrc", "cam1=testsrc", "cam2=testsrc", "cam3=testsrc"]


@dataclass
class Pipeline:
    """Handles on every part of a running pipeline."""

    cluster: KafkaCluster
    supervisor: Supervisor
    viewer_url: str
    consumer_metrics: list[int]
    extra: list[ManagedService] = field(default_factory=list)

    @property
    def settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_server=self.cluster.bootstrap_server, broker_timeout=30)

    def service(self, name: str) -> ManagedService:
        return next(s for s in self.supervisor.services + self.extra if s.spec.name == name)

    def annotated(self, group: str) -> Reader:
        """What reaches the annotated topic from now on, read in the background."""
        return Reader(self.settings, "annotated", group, start_at="end", assigned=False)


def model_statuses(frame: Frame) -> set[str]:
    """The per-model status (ok, unavailable, error) of an annotated frame."""
    document = json.loads(frame.attributes.get("kva-predictions", "{}"))
    return {model["status"] for model in document.get("models", [])}


def consumer_spec(name: str, replicas: list[str], bootstrap: str, metrics_port: int) -> ServiceSpec:
    argv = [
        *KVA,
        *consumer_args(replicas, metrics_port),
        "--bootstrap-server",
        bootstrap,
        "--group-id",
        "faults",
    ]
    return ServiceSpec(
        name, argv, ready=http_ok(f"http://127.0.0.1:{metrics_port}/healthz"), ready_timeout=120
    )


@pytest.fixture
@starts_processes
def pipeline(built_models: Path, tmp_path: Path) -> Iterator[Pipeline]:
    cluster = KafkaCluster(
        ClusterSpec(port=free_port(), data_dir=tmp_path / "kafka", heap="384m")
    ).start()
    bootstrap = cluster.bootstrap_server
    config = write_model_config(built_models, tmp_path / "models.config")
    serve_ports = [free_port(), free_port()]
    producer_port, consumer_port, viewer_port = free_port(), free_port(), free_port()
    common = ["--bootstrap-server", bootstrap]
    stages = [
        [
            *(serve_spec(i, port, config, 120) for i, port in enumerate(serve_ports)),
            ServiceSpec(
                "producer",
                [
                    *KVA,
                    *producer_args(SOURCES, 10, producer_port),
                    *common,
                    "--width",
                    "320",
                    "--height",
                    "240",
                ],
                ready=http_ok(f"http://127.0.0.1:{producer_port}/healthz"),
                ready_timeout=120,
            ),
            ServiceSpec(
                "video",
                [*KVA, *video_args("127.0.0.1", viewer_port), *common],
                ready=http_ok(f"http://127.0.0.1:{viewer_port}/healthz"),
                ready_timeout=120,
            ),
        ],
        [
            consumer_spec(
                "consumer", [f"http://127.0.0.1:{p}" for p in serve_ports], bootstrap, consumer_port
            )
        ],
    ]
    supervisor = Supervisor(stages, threading.Event())
    running = Pipeline(cluster, supervisor, f"http://127.0.0.1:{viewer_port}/", [consumer_port])
    try:
        supervisor.start()
        yield running
    finally:
        for service in running.extra:
            service.stop(10)
        supervisor.stop_all(timeout=10)
        cluster.stop()
