"""What ``kva up`` runs: the ``kva`` command line of every service, and how to tell it is ready.

The argv built here are the same ``kva`` commands the container images run
(``compose/``, ``k8s/``): a test checks both against kva's own parser.
"""

from __future__ import annotations

import logging
import os
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kva import paths
from kva.kafka import KafkaUnavailable, wait_for_broker
from kva.launcher.config import UpSettings
from kva.launcher.supervisor import ServiceFailed, ServiceSpec
from kva.ports import free_port, port_is_free
from kva.producer.demo import DemoVideoMissing, demo_source
from kva.retention import Retention
from kva.settings import KafkaSettings

logger = logging.getLogger(__name__)

#: The models ``kva up`` serves and runs on every frame (compose and k8s run the same ones).
MODELS = ("mobilenet_v2", "blazeface", "person")
#: The stream id of the demo camera.
DEMO_CAMERA = "cam0"
#: The video demo's zones and lines: a counting line down the middle of the square, which
#: the people walking left and right cross ("in": from the right half to the left half).
DEMO_ZONES = f"""\
# kva up's video demo: zones and counting lines of the demo camera (see kva.scene)
cameras:
  - id: {DEMO_CAMERA}
    lines:
      - name: across
        points: [[0.5, 0.0], [0.5, 1.0]]
"""
#: How a child is started: ``-P`` keeps the working folder off ``sys.path``, so a folder
#: there named ``kva`` (the repository, or its parent) cannot shadow the installed package.
KVA = (sys.executable, "-P", "-m", "kva")


@dataclass(frozen=True)
class Layout:
    """The stages to start and the addresses a user needs."""

    stages: list[list[ServiceSpec]]
    bootstrap_server: str
    viewer_url: str
    #: What the user should know at start (shown again with the viewer URL).
    notes: tuple[str, ...] = ()


def plan(settings: UpSettings, workdir: Path) -> Layout:
    """Every service of the local pipeline, in start order. Raises ServiceFailed on a taken port."""
    host = "127.0.0.1"
    serve_ports = _ports(host, settings.serve_port, settings.serve_replicas, "--serve-port")
    sink = events_destinations(settings)
    metrics_ports = _ports(host, settings.up_metrics_port, 3 if sink else 2, "--metrics-port")
    producer_port, consumer_port = metrics_ports[:2]
    (viewer_port,) = _ports(settings.up_host, settings.up_port, 1, "--port")
    sources, notes = cameras(settings)
    zones = zones_file(settings, sources, workdir)
    stages: list[list[ServiceSpec]] = []
    bootstrap = settings.bootstrap_server
    if bootstrap is None:
        (kafka_port,) = _ports(host, settings.kafka_port, 1, "--kafka-port")
        bootstrap = f"{host}:{kafka_port}"
        stages.append(
            [broker_spec(settings.broker_mode, kafka_port, bootstrap, settings.ready_timeout)]
        )
    models_dir = settings.models_dir or paths.models_dir()
    config = write_model_config(models_dir, workdir / "models.config")
    stages.append([ServiceSpec("models", [*KVA, *models_build_args(models_dir)], oneshot=True)])
    common = ["--bootstrap-server", bootstrap, "--log-level", settings.log_level]
    stages.append(
        [
            *(
                serve_spec(i, port, config, settings.ready_timeout)
                for i, port in enumerate(serve_ports)
            ),
            ServiceSpec(
                "video",
                [*KVA, *video_args(settings.up_host, viewer_port), *common],
                ready=http_ok(
                    f"http://{_client_host(settings.up_host)}:{viewer_port}/healthz", video=True
                ),
                ready_timeout=settings.ready_timeout,
            ),
            ServiceSpec(
                "producer",
                [
                    *KVA,
                    *producer_args(sources, settings.up_fps, producer_port, loop=True),
                    *retention_args(settings.retentions()["frames"]),
                    *common,
                ],
                ready=http_ok(f"http://{host}:{producer_port}/healthz"),
                ready_timeout=settings.ready_timeout,
            ),
        ]
    )
    replicas = [f"http://{host}:{port}" for port in serve_ports]
    last = [
        ServiceSpec(
            "consumer",
            [
                *KVA,
                *consumer_args(replicas, consumer_port, zones),
                *consumer_retention_args(settings.retentions()),
                *common,
            ],
            ready=http_ok(f"http://{host}:{consumer_port}/healthz"),
            ready_timeout=settings.ready_timeout,
        )
    ]
    if sink:
        last.append(
            ServiceSpec(
                "events",
                [*KVA, *events_args(metrics_ports[2], **sink), *common],
                ready=http_ok(f"http://{host}:{metrics_ports[2]}/healthz"),
                ready_timeout=settings.ready_timeout,
            )
        )
    stages.append(last)
    viewer_url = f"http://{_client_host(settings.up_host)}:{viewer_port}/"
    return Layout(stages, bootstrap, viewer_url, notes)


def cameras(settings: UpSettings) -> tuple[list[str], tuple[str, ...]]:
    """The producer's ``--source`` values and what to tell the user about them.

    The user's cameras, else the demo camera ``--demo`` names; the photo demo when the
    demo video has not been fetched (the note says how to get it).
    """
    if settings.up_source:
        return list(settings.up_source), ()
    try:
        return [f"{DEMO_CAMERA}={demo_source(settings.up_demo)}"], ()
    except DemoVideoMissing as exc:
        note = f"{exc}; showing the photo demo instead"
        logger.warning("%s", note)
        return [f"{DEMO_CAMERA}={demo_source('photos')}"], (note,)


def zones_file(settings: UpSettings, sources: list[str], workdir: Path) -> Path | None:
    """The consumer's zones and lines: ``--zones``, else for the video demo a file with
    :data:`DEMO_ZONES` written to ``workdir``, else none."""
    if settings.up_zones is not None:
        return settings.up_zones
    if settings.up_source:
        return None
    try:
        video = f"{DEMO_CAMERA}={demo_source('video')}"
    except DemoVideoMissing:
        return None
    if sources != [video]:
        return None
    path = workdir / "zones.yaml"
    path.write_text(DEMO_ZONES, encoding="utf-8")
    return path


def broker_spec(mode: str, port: int, bootstrap: str, timeout: float) -> ServiceSpec:
    settings = KafkaSettings(bootstrap_server=bootstrap)
    return ServiceSpec(
        "broker",
        [*KVA, "broker", "--mode", mode, "--port", str(port)],
        ready=lambda: _kafka_ready(settings),
        ready_timeout=timeout,
    )


def models_build_args(models_dir: Path) -> list[str]:
    return ["models", "build", "--all", "--base-path", str(models_dir)]


def serve_args(port: int, config: Path, host: str = "127.0.0.1") -> list[str]:
    return [
        "serve",
        "--rest_api_port",
        str(port),
        "--rest_api_host",
        host,
        "--model_config_file",
        str(config),
    ]


def serve_spec(index: int, port: int, config: Path, timeout: float) -> ServiceSpec:
    return ServiceSpec(
        f"serve-{index + 1}",
        [*KVA, *serve_args(port, config)],
        ready=http_ok(f"http://127.0.0.1:{port}/v2/health/ready"),
        ready_timeout=timeout,
    )


def producer_args(
    sources: list[str], fps: float, metrics_port: int, *, loop: bool = False
) -> list[str]:
    args = [
        "produce",
        "--topic",
        "frames",
        "--fps",
        f"{fps:g}",
        "--metrics-port",
        str(metrics_port),
    ]
    for source in sources:
        args += ["--source", source]
    return [*args, "--loop"] if loop else args


def consumer_args(
    replicas: list[str], metrics_port: int, camera_file: Path | None = None
) -> list[str]:
    args = [
        "consume",
        "--input-topic",
        "frames",
        "--output-topic",
        "annotated",
        "--metadata-topic",
        "predictions",
        "--metrics-port",
        str(metrics_port),
    ]
    for model in MODELS:
        args += ["--model", f"{model}=" + ",".join(f"{r}/v2/models/{model}" for r in replicas)]
    if camera_file is not None:
        args += ["--camera-file", str(camera_file)]
    return args


def retention_args(kept: Retention, prefix: str = "") -> list[str]:
    """``--[PREFIX-]retention-ms MS --[PREFIX-]retention-bytes BYTES``."""
    flag = f"--{prefix}-retention" if prefix else "--retention"
    return [f"{flag}-ms", str(kept.ms), f"{flag}-bytes", str(kept.bytes)]


def consumer_retention_args(retentions: dict[str, Retention]) -> list[str]:
    """The consumer's retention flags of the annotated, predictions and events topics."""
    return [
        *retention_args(retentions["annotated"], "output"),
        *retention_args(retentions["predictions"], "metadata"),
        *retention_args(retentions["events"], "events"),
    ]


def events_destinations(settings: UpSettings) -> dict[str, str]:
    """The sink's destinations (``mqtt``, ``webhook``) from ``kva up``'s flags or the
    sink's own variables; empty (no sink) when none is configured."""
    found = {
        "mqtt": settings.up_events_mqtt or os.environ.get("KVA_EVENTS_MQTT", ""),
        "webhook": settings.up_events_webhook or os.environ.get("KVA_EVENTS_WEBHOOK", ""),
    }
    return {name: url for name, url in found.items() if url}


def events_args(metrics_port: int, mqtt: str = "", webhook: str = "") -> list[str]:
    """``kva events`` on the ``events`` topic; a destination given here wins over the
    environment (the sink reads ``KVA_EVENTS_*`` itself)."""
    args = ["events", "--topic", "events", "--metrics-port", str(metrics_port)]
    if mqtt:
        args += ["--mqtt", mqtt]
    if webhook:
        args += ["--webhook", webhook]
    return args


def video_args(host: str, port: int) -> list[str]:
    return [
        "video",
        "--topic",
        "annotated",
        "--metadata-topic",
        "predictions",
        "--events-topic",
        "events",
        "--host",
        host,
        "--port",
        str(port),
    ]


def write_model_config(models_dir: Path, path: Path) -> Path:
    """A TF Serving ``model_config_list`` for the models ``kva up`` serves."""
    entries = "".join(
        f'  config {{\n    name: "{m}"\n    base_path: "{models_dir / m}"\n'
        f'    model_platform: "openvino"\n  }}\n'
        for m in MODELS
    )
    path.write_text(f"model_config_list {{\n{entries}}}\n")
    return path


def _ports(host: str, first: int, count: int, flag: str) -> list[int]:
    if first == 0:
        return [free_port(host) for _ in range(count)]
    ports = [first + i for i in range(count)]
    for port in ports:
        if not port_is_free(host, port):
            raise ServiceFailed(
                f"port {port} on {host} is in use: stop what uses it or choose {flag}"
            )
    return ports


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - comparing, not binding


def _kafka_ready(settings: KafkaSettings) -> bool:
    try:
        return wait_for_broker(settings, timeout=1.0) > 0
    except KafkaUnavailable:
        return False


def http_ok(url: str, video: bool = False) -> Callable[[], bool]:
    """A readiness check: ``url`` answers 200 (with the viewer token when ``video``)."""

    def check() -> bool:
        request = urllib.request.Request(url)  # noqa: S310 - http to our own child
        token = os.environ.get("KVA_VIDEO_TOKEN")
        if video and token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=1.0) as response:  # noqa: S310
            return bool(response.status == 200)

    return check
