"""The Flask application of ``kva serve``: TF Serving ``/v1`` and KServe ``/v2`` on one port.

``create_app(runtime)`` builds it; everything a request needs hangs off the
:class:`Runtime` stored in ``app.extensions`` (no module-level state).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException

from kva.tfserving.errors import InvalidArgument, PayloadTooLarge, ServingError
from kva.tfserving.images import ImageError, decode_image
from kva.tfserving.manager import ModelManager
from kva.tfserving.metrics import ServeMetrics
from kva.tfserving.servable import Servable

logger = logging.getLogger(__name__)

EXTENSION = "kva_serve"


@dataclass
class Runtime:
    """What the request handlers share: the models, limits and metrics."""

    manager: ModelManager
    metrics: ServeMetrics
    max_request_bytes: int
    max_image_pixels: int
    timeout_seconds: float

    def decode_image(self, data: bytes, height: int, width: int) -> np.ndarray:
        try:
            return decode_image(data, height, width, self.max_image_pixels)
        except ImageError as exc:
            raise InvalidArgument(str(exc)) from None

    def execute(
        self, servable: Servable, build: Callable[[], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """Admit the request (503 beyond ``--max_inflight``), build its tensors and infer."""
        state = self.manager.state(servable.name)
        try:
            state.admission.enter(servable.name)
        except ServingError:
            self.metrics.rejected.labels(servable.name).inc()
            raise
        try:
            feeds = build()
            started = time.perf_counter()
            try:
                return servable.infer(feeds, self.timeout_seconds)
            finally:
                elapsed = time.perf_counter() - started
                self.metrics.inference.labels(servable.name).observe(elapsed)
        finally:
            state.admission.leave()


def runtime() -> Runtime:
    """The :class:`Runtime` of the current app."""
    found: Runtime = current_app.extensions[EXTENSION]
    return found


def json_response(body: Any, status: int = 200) -> Response:
    """``body`` as JSON (NaN/Infinity written as tokens, as TF Serving does)."""
    text = json.dumps(body, separators=(",", ":"), allow_nan=True)
    return Response(text, status=status, mimetype="application/json")


def error_response(message: str, status: int) -> Response:
    """TF Serving's error shape: ``{"error": "<message>"}``."""
    return json_response({"error": message}, status)


def set_model(name: str, protocol: str) -> None:
    """Label this request's metrics (unknown names are counted under ``model=""``)."""
    g.protocol = protocol
    g.model = name if name in runtime().manager.models else ""


def request_body() -> bytes:
    """The request body, 413 beyond ``--max_request_bytes`` (checked before reading)."""
    limit = runtime().max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body of {request.content_length} bytes exceeds {limit}")
    data = request.get_data(cache=True)
    if len(data) > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes")
    return data


def create_app(rt: Runtime) -> Flask:
    """The WSGI app serving ``/v1``, ``/v2``, ``/metrics`` and ``/healthz``."""
    from kva.tfserving import v1, v2

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = rt.max_request_bytes
    app.extensions[EXTENSION] = rt
    app.register_blueprint(v2.blueprint)
    app.add_url_rule("/metrics", "metrics", partial(_metrics, rt))
    app.add_url_rule("/healthz", "healthz", lambda: json_response({"status": "ok"}))
    app.add_url_rule(
        "/<path:path>", "fallback", v1.dispatch, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]
    )
    app.add_url_rule("/", "root", lambda: error_response("Not found: /", 404))
    app.before_request(_start)
    app.after_request(_finish)
    app.register_error_handler(ServingError, _serving_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _metrics(rt: Runtime) -> Response:
    return Response(generate_latest(rt.metrics.registry), mimetype=CONTENT_TYPE_LATEST)


def _start() -> None:
    g.started = time.perf_counter()
    g.protocol = "other"
    g.model = ""


def _finish(response: Response) -> Response:
    if request.path in ("/metrics", "/healthz"):
        return response
    metrics = runtime().metrics
    model, protocol = g.get("model", ""), g.get("protocol", "other")
    metrics.requests.labels(model, protocol, str(response.status_code)).inc()
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    metrics.latency.labels(model, protocol).observe(elapsed)
    return response


def _serving_error(exc: ServingError) -> Response:
    return error_response(exc.message, exc.status)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 413:
        return error_response(f"request body exceeds {runtime().max_request_bytes} bytes", 413)
    return error_response(exc.description or exc.name, status)


def _unexpected(exc: Exception) -> Response:
    logger.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(f"Internal: {type(exc).__name__}", 500)
