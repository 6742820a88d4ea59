"""``kva serve`` as one :class:`~kva.service.Service`: the models, REST and (optionally) gRPC.

REST (TF Serving ``/v1``, KServe ``/v2``, ``/metrics``) runs on
:class:`~kva.wsgi.WsgiServer`, gRPC next to it on the same
:class:`~kva.tfserving.runtime.Runtime`. On stop, gRPC refuses new calls at
once and REST stops accepting; requests in flight on either get up to
:data:`DRAIN_SECONDS` to finish.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from kva.model_files import compile_config
from kva.paths import cache_root
from kva.tfserving.app import create_app
from kva.tfserving.config import ServeSettings
from kva.tfserving.manager import ModelManager, make_loader, watch_config_file
from kva.tfserving.metrics import ServeMetrics
from kva.tfserving.model_config import ModelConfig
from kva.tfserving.runtime import Runtime
from kva.wsgi import WsgiServer

if TYPE_CHECKING:
    from kva.tfserving.grpc_server import GrpcServer

logger = logging.getLogger(__name__)

#: How long requests in flight get to finish once a stop is asked for.
DRAIN_SECONDS = 5.0
#: REST connections idle longer than this are closed.
CHANNEL_TIMEOUT_SECONDS = 60


class ModelServerService:
    """The model server: build with settings and the models to serve, then start/run/close."""

    def __init__(self, settings: ServeSettings, configs: list[ModelConfig]) -> None:
        self.settings = settings
        self.configs = configs
        self.runtime: Runtime | None = None
        self.http: WsgiServer | None = None
        self.grpc: GrpcServer | None = None

    def start(self, stop: threading.Event) -> None:
        """Bind REST (and gRPC), start loading the models and serving.

        Raises:
            OSError: the REST address cannot be bound.
            SettingsError: the gRPC port cannot be bound.
        """
        s = self.settings
        manager = ModelManager(
            self.configs,
            make_loader(
                s.serve_device,
                compile_config(s.serve_performance_hint, s.serve_inference_precision),
                s.serve_cache_dir or cache_root() / "converted",
            ),
            s.serve_max_inflight,
        )
        self.runtime = rt = Runtime(
            manager=manager,
            metrics=ServeMetrics(manager),
            max_request_bytes=s.serve_max_request_bytes,
            max_image_pixels=s.serve_max_image_pixels,
            timeout_seconds=s.rest_api_timeout_in_ms / 1000.0,
        )
        threads = s.worker_threads(len(self.configs))
        self.http = WsgiServer(
            create_app(rt),
            s.rest_api_host,
            s.rest_api_port,
            name="kva-serve",
            threads=threads,
            connection_limit=max(100, 4 * threads),
            # Bodies up to twice our limit reach the app, which answers 413 as JSON;
            # beyond that waitress refuses them before reading.
            max_request_body_size=2 * s.serve_max_request_bytes,
            channel_timeout=CHANNEL_TIMEOUT_SECONDS,
            drain_seconds=DRAIN_SECONDS,
        )
        if s.grpc_port is not None:
            from kva.tfserving.grpc_server import start_grpc

            self.grpc = start_grpc(rt, s)
        self._background(manager, stop)
        self.http.start(stop)
        logger.info(
            "serving %s on http://%s:%s (%d threads; /v1 TF Serving, /v2 KServe, /metrics)",
            ", ".join(c.name for c in self.configs),
            s.rest_api_host,
            self.http.port,
            threads,
        )

    def _background(self, manager: ModelManager, stop: threading.Event) -> None:
        """The version poller, and the config file watcher when asked for."""
        s = self.settings
        if s.model_config_file and s.model_config_file_poll_wait_seconds > 0:
            threading.Thread(
                target=watch_config_file,
                args=(s.model_config_file, manager, self.configs, stop,
                      s.model_config_file_poll_wait_seconds),
                name="kva-serve-config",
                daemon=True,
            ).start()  # fmt: skip
        threading.Thread(
            target=manager.run,
            args=(stop, s.file_system_poll_wait_seconds),
            name="kva-serve-poll",
            daemon=True,
        ).start()

    def run(self, stop: threading.Event) -> int:
        """Serve until ``stop``; then let requests in flight finish. 1 if REST died on its own."""
        if self.http is None:
            raise RuntimeError("call start() before run()")
        while not stop.wait(0.5):
            if not self.http.alive:
                logger.error("the HTTP server stopped unexpectedly")
                return 1
        logger.info("stopping: finishing requests in flight")
        if self.grpc is not None:
            self.grpc.begin_stop(DRAIN_SECONDS)
        self.http.join(DRAIN_SECONDS + 5)
        return 0

    def close(self) -> None:
        """Stop gRPC and REST (bounded); safe after a failed start."""
        if self.grpc is not None:
            self.grpc.stop(DRAIN_SECONDS)
        if self.http is not None:
            self.http.close(timeout=DRAIN_SECONDS + 5)
        logger.info("stopped")
