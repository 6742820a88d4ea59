"""Wiring of ``kva produce``: broker check, topic, metrics server, cameras, shutdown."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from kva.camerafile import CameraFileWatch
from kva.httpd import ServiceHttpServer
from kva.kafka import FrameProducer, TopicSpec, ensure_topics, wait_for_broker
from kva.producer.camera import CameraRunner, RunnerTiming
from kva.producer.config import (
    DEFAULT_SOURCE,
    CameraConfig,
    CameraConfigError,
    ProducerSettings,
    cameras_from_sources,
    load_camera_file,
)
from kva.producer.fleet import CameraFleet
from kva.producer.metrics import ProducerMetrics
from kva.producer.sink import KafkaFrameSink

logger = logging.getLogger(__name__)


class CameraFileWatcher:
    """Re-reads the camera file when it changes (see :class:`kva.camerafile.CameraFileWatch`)."""

    def __init__(self, path: Path, settings: ProducerSettings) -> None:
        self.path = path
        self._settings = settings
        self._watch = CameraFileWatch(path, "cameras")

    def load(self) -> list[CameraConfig]:
        """Read the file now (raises :class:`CameraConfigError`)."""
        self._watch.mark()
        return load_camera_file(self.path, self._settings)

    def changed(self) -> list[CameraConfig] | None:
        """The new camera list if the file changed and is valid, else None (errors logged)."""
        if not self._watch.changed():
            return None
        try:
            cameras = load_camera_file(self.path, self._settings)
        except CameraConfigError as exc:
            logger.error("%s: keeping the current cameras", exc)
            return None
        except Exception as exc:  # noqa: BLE001 - an edited file must never stop the producer
            logger.error(
                "camera file %s: cannot use it (%s: %s): keeping the current cameras",
                self.path,
                type(exc).__name__,
                exc,
            )
            return None
        logger.info("camera file %s changed: %d camera(s)", self.path, len(cameras))
        return cameras


class ProducerService:
    """Runs the cameras of ``settings`` into Kafka: ``start``, ``run`` until stopped or every
    stream ended, ``close`` (see :mod:`kva.service`)."""

    def __init__(self, settings: ProducerSettings, metrics: ProducerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or ProducerMetrics()
        self.timing = RunnerTiming(
            reconnect_min=settings.reconnect_min,
            reconnect_max=max(settings.reconnect_min, settings.reconnect_max),
            watchdog_timeout=settings.watchdog_timeout,
            open_timeout=settings.open_timeout,
            progress_interval=settings.progress_interval,
        )
        self.fleet: CameraFleet | None = None
        self.http: ServiceHttpServer | None = None
        self._sink: KafkaFrameSink | None = None
        #: Set once the cameras run (tests wait on it).
        self.started = threading.Event()
        self._watcher = (
            CameraFileWatcher(settings.camera_file, settings) if settings.camera_file else None
        )
        self._source_cameras: list[CameraConfig] = []

    def _initial_cameras(self) -> list[CameraConfig]:
        settings = self.settings
        if not settings.source and self._watcher is None:
            logger.info("no --source or --camera-file given: using the %r source", DEFAULT_SOURCE)
            settings = settings.model_copy(update={"source": [DEFAULT_SOURCE]})
        self._source_cameras = cameras_from_sources(settings)
        file_cameras = self._watcher.load() if self._watcher else []
        return self._merge(file_cameras)

    def _merge(self, file_cameras: list[CameraConfig]) -> list[CameraConfig]:
        ids = {camera.id for camera in self._source_cameras}
        clash = sorted(ids & {camera.id for camera in file_cameras})
        if clash:
            raise CameraConfigError(
                f"camera id(s) {clash} used by both --source and the camera file"
            )
        return self._source_cameras + file_cameras

    def start(self, stop: threading.Event) -> None:
        """Check the cameras, reach Kafka, serve metrics, start every camera.

        Raises:
            CameraConfigError: the cameras cannot be used (exit status 2).
            KafkaUnavailable: no broker in time, or the topic cannot be created.
            OSError: the metrics port cannot be bound.
        """
        cameras = self._initial_cameras()
        settings = self.settings
        brokers = wait_for_broker(settings)
        ensure_topics(
            settings,
            [
                TopicSpec(
                    settings.frames_topic,
                    partitions=settings.topic_partitions,
                    config=settings.frames_retention().topic_config(),
                )
            ],
            timeout=settings.broker_timeout,
            apply_configs=True,  # the retention settings, at every start
        )
        if stop.is_set():  # stopped while waiting for the broker
            return
        logger.info(
            "Kafka at %s (%d broker%s); topic %s",
            settings.bootstrap_server,
            brokers,
            "" if brokers == 1 else "s",
            settings.frames_topic,
        )
        self.http = self._serve_metrics()
        producer = FrameProducer(settings, acks=settings.producer_acks)
        self._sink = sink = KafkaFrameSink(producer, settings.frames_topic, self.metrics)

        def make_runner(camera: CameraConfig, first_sequence: int) -> CameraRunner:
            return CameraRunner(
                camera, sink, self.metrics, self.timing, first_sequence=first_sequence
            )

        self.fleet = CameraFleet(make_runner)
        self.fleet.apply(cameras)
        self.metrics.cameras.set(len(self.fleet.runners))
        self.started.set()

    def _serve_metrics(self) -> ServiceHttpServer:
        host, port = self.settings.producer_metrics_host, self.settings.producer_metrics_port
        try:
            return ServiceHttpServer(
                host,
                port,
                ready=lambda: self.fleet is not None and self.fleet.any_up(),
                registry=self.metrics.registry,
            ).start()
        except OSError as exc:
            raise OSError(
                f"cannot serve metrics on {host}:{port}: {exc} (choose another --metrics-port)"
            ) from None

    def run(self, stop: threading.Event) -> int:
        """Until ``stop`` (or every stream ended): the exit status."""
        if self._sink is None or self.fleet is None:
            return 0  # stopped during start
        return self._loop(self._sink, self.fleet, stop)

    def close(self) -> None:
        """Stop the cameras, deliver what is queued (bounded), stop serving metrics."""
        if self.fleet is not None:
            self.fleet.stop_all()
        if self._sink is not None:
            left = self._sink.flush(self.settings.flush_timeout)
            if left:
                logger.warning(
                    "%d frame(s) still undelivered after %gs: dropped",
                    left,
                    self.settings.flush_timeout,
                )
            logger.info("producer stopped")
        if self.http is not None:
            self.http.stop()

    def _loop(self, sink: KafkaFrameSink, fleet: CameraFleet, stop: threading.Event) -> int:
        settings = self.settings
        next_check = time.monotonic() + settings.camera_file_poll
        while not stop.is_set():
            sink.poll(0.1)
            if self._watcher is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + settings.camera_file_poll
                self._reload(fleet)
            limit = settings.broker_unavailable_exit
            if limit and sink.down_for() > limit:
                logger.error("Kafka unreachable for more than %gs: exiting", limit)
                return 1
            if self._watcher is None and fleet.finished():
                failed = fleet.failed()
                logger.info("all streams finished (%d failed)", len(failed))
                return 1 if failed else 0
        return 0

    def _reload(self, fleet: CameraFleet) -> None:
        assert self._watcher is not None  # noqa: S101 - checked by the caller
        file_cameras = self._watcher.changed()
        if file_cameras is None:
            return
        try:
            fleet.apply(self._merge(file_cameras))
        except CameraConfigError as exc:
            logger.error("%s: keeping the current cameras", exc)
            return
        self.metrics.cameras.set(len(fleet.runners))
