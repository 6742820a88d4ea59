"""The Flask application of ``kva serve``: TF Serving ``/v1`` and KServe ``/v2`` on one port.

``create_app(runtime)`` builds it; everything a request needs hangs off the
:class:`~kva.tfserving.runtime.Runtime` stored in ``app.extensions`` (no
module-level state). The handlers' shared helpers are in :mod:`kva.tfserving.rest`.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException

from kva.tfserving import v1, v2, v2_extensions
from kva.tfserving.errors import ServingError
from kva.tfserving.rest import EXTENSION, error_response, json_response, runtime
from kva.tfserving.runtime import Runtime

logger = logging.getLogger(__name__)


def create_app(rt: Runtime) -> Flask:
    """The WSGI app serving ``/v1``, ``/v2``, ``/metrics`` and ``/healthz``."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = rt.max_request_bytes
    app.extensions[EXTENSION] = rt
    app.register_blueprint(v2.blueprint)
    app.register_blueprint(v2_extensions.blueprint)
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
