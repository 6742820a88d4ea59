"""``kva serve``: the TF Serving / KServe v2 compatible model server on OpenVINO."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from typing import Any

from kva.cliargs import SettingsError, add_settings_arguments, settings_from_args
from kva.tfserving.config import ServeSettings
from kva.tfserving.model_config import ModelConfig, ModelConfigError, load_model_config

logger = logging.getLogger(__name__)

NAME = "serve"
HELP = "serve OpenVINO models over TF Serving /v1 and KServe /v2 REST"
_PASSTHROUGH_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")
DRAIN_SECONDS = 5.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=HELP + ". Flags as tensorflow_model_server's. One model "
        "(--model_name + --model_base_path) or several (--model_config_file in TF Serving's "
        "model_config_list text format). Model folders: <base_path>/<version>/model.xml.",
    )
    add_settings_arguments(parser, ServeSettings)
    parser.set_defaults(run=run)


def model_configs(settings: ServeSettings) -> list[ModelConfig]:
    """The models to serve, from the config file or the single-model flags."""
    if settings.model_config_file is not None:
        try:
            configs = load_model_config(settings.model_config_file)
        except ModelConfigError as exc:
            raise SettingsError(str(exc)) from None
    else:
        assert settings.model_base_path is not None  # noqa: S101 - checked by ServeSettings
        configs = [ModelConfig(settings.model_name, settings.model_base_path.resolve())]
    for config in configs:
        if not config.base_path.is_dir():
            raise SettingsError(
                f"model {config.name}: base path {config.base_path} is not a folder "
                "(expected <base_path>/<version>/model.xml)"
            )
    return configs


def check_device(device: str) -> None:
    """Fail clearly when the OpenVINO device is not on this machine."""
    import openvino as ov

    if device.split(":", 1)[0].upper() in _PASSTHROUGH_DEVICES:
        return
    available = ov.Core().available_devices
    if device not in available and device.split(".", 1)[0] not in available:
        raise SettingsError(
            f"--device {device}: not available here (OpenVINO sees: {', '.join(available)})"
        )


def run(args: argparse.Namespace) -> int:
    from waitress.server import create_server

    from kva.lifecycle import install_stop_handlers
    from kva.tfserving.app import Runtime, create_app
    from kva.tfserving.manager import ModelManager, make_loader, watch_config_file
    from kva.tfserving.metrics import ServeMetrics

    settings = settings_from_args(ServeSettings, args)
    if settings.grpc_port is not None:
        from kva.tfserving.grpc_server import check_grpc

        check_grpc()
    configs = model_configs(settings)
    check_device(settings.serve_device)
    stop = install_stop_handlers()
    manager = ModelManager(
        configs,
        make_loader(settings.serve_device, settings.serve_performance_hint),
        settings.serve_max_inflight,
    )
    rt = Runtime(
        manager=manager,
        metrics=ServeMetrics(manager),
        max_request_bytes=settings.serve_max_request_bytes,
        max_image_pixels=settings.serve_max_image_pixels,
        timeout_seconds=settings.rest_api_timeout_in_ms / 1000.0,
    )
    threads = settings.worker_threads(len(configs))
    server = create_server(
        create_app(rt),
        host=settings.rest_api_host,
        port=settings.rest_api_port,
        threads=threads,
        connection_limit=max(100, 4 * threads),
        # Bodies up to twice our limit reach the app, which answers 413 as JSON;
        # beyond that waitress refuses them before reading.
        max_request_body_size=2 * settings.serve_max_request_bytes,
        channel_timeout=60,
        clear_untrusted_proxy_headers=True,
        asyncore_use_poll=True,
        ident="kva-serve",
    )
    poller = threading.Thread(
        target=manager.run,
        args=(stop, settings.file_system_poll_wait_seconds),
        name="kva-serve-poll",
        daemon=True,
    )
    http = threading.Thread(
        target=serve_until, args=(server, stop), name="kva-serve-http", daemon=True
    )
    grpc_server = None
    if settings.grpc_port is not None:
        from kva.tfserving.grpc_server import start_grpc

        grpc_server = start_grpc(rt, settings)
    if settings.model_config_file and settings.model_config_file_poll_wait_seconds > 0:
        threading.Thread(
            target=watch_config_file,
            args=(settings.model_config_file, manager, configs, stop,
                  settings.model_config_file_poll_wait_seconds),
            name="kva-serve-config",
            daemon=True,
        ).start()  # fmt: skip
    poller.start()
    http.start()
    logger.info(
        "serving %s on http://%s:%s (%d threads; /v1 TF Serving, /v2 KServe, /metrics)",
        ", ".join(c.name for c in configs),
        settings.rest_api_host,
        server.effective_port,
        threads,
    )
    try:
        while not stop.wait(0.5):
            if not http.is_alive():
                logger.error("the HTTP server stopped unexpectedly")
                return 1
        logger.info("stopping: finishing requests in flight")
        if grpc_server is not None:
            grpc_server.begin_stop(DRAIN_SECONDS)
        http.join(timeout=DRAIN_SECONDS + 5)
    finally:
        if grpc_server is not None:
            grpc_server.stop()
    logger.info("stopped")
    return 0


def serve_until(server: Any, stop: threading.Event, drain: float = DRAIN_SECONDS) -> None:
    """Run waitress's event loop until ``stop``; then stop accepting, let requests in
    flight finish (up to ``drain`` seconds) and close, all from this one thread."""

    def spin(timeout: float) -> None:
        server.asyncore.loop(timeout=timeout, map=server._map, use_poll=True, count=1)

    try:
        while not stop.is_set():
            spin(0.2)
        server.accepting = False
        dispatcher = server.task_dispatcher
        deadline = time.monotonic() + drain
        while (dispatcher.active_count or dispatcher.queue) and time.monotonic() < deadline:
            spin(0.05)
        spin(0.05)  # flush the last responses
    finally:
        server.task_dispatcher.shutdown(timeout=1)
        server.close()
