"""What every gRPC method of ``kva serve`` shares: metrics, and errors as status codes.

Both gRPC APIs on ``--port`` (TF Serving's and KServe v2's) answer a
:class:`~kva.tfserving.errors.ServingError` with the code a gRPC server of that
API would send for the HTTP status REST answers: 400 ``INVALID_ARGUMENT``,
404 ``NOT_FOUND``, 503 (saturated, not loaded) ``UNAVAILABLE``, 413 (too large)
``RESOURCE_EXHAUSTED``, 500 ``INTERNAL``. Requests are counted in the REST
metrics with their own ``protocol`` label and the HTTP status as ``code``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kva.tfserving.errors import Internal, InvalidArgument, NotFound, ServingError, Unavailable
from kva.tfserving.runtime import Runtime

logger = logging.getLogger(__name__)


class RpcRunner:
    """Runs RPC bodies (proto in, proto out) with metrics and status codes."""

    def __init__(self, grpc: Any, runtime: Runtime, protocol: str) -> None:
        self.grpc = grpc
        self.rt = runtime
        self.protocol = protocol

    def call(
        self, name: str, handler: Callable[[Any], Any], request: Any, context: Any, model: str
    ) -> Any:
        """Run ``handler(request)``; ``model`` labels the metrics (unknown ones as "")."""
        started = time.perf_counter()
        model = model if model in self.rt.manager.models else ""
        status = 200
        try:
            return handler(request)
        except ServingError as exc:
            status = exc.status
            context.abort(status_code(self.grpc, exc), exc.message)
        except Exception as exc:  # noqa: BLE001 - answered as INTERNAL, never a crash
            status = 500
            logger.exception("unexpected error in gRPC %s", name)
            context.abort(self.grpc.StatusCode.INTERNAL, f"Internal: {type(exc).__name__}")
        finally:
            metrics = self.rt.metrics
            metrics.requests.labels(model, self.protocol, str(status)).inc()
            metrics.latency.labels(model, self.protocol).observe(time.perf_counter() - started)


def status_code(grpc: Any, exc: ServingError) -> Any:
    """The ``grpc.StatusCode`` of an error."""
    codes = grpc.StatusCode
    if isinstance(exc, InvalidArgument):
        return codes.INVALID_ARGUMENT
    if isinstance(exc, NotFound):
        return codes.NOT_FOUND
    if isinstance(exc, Unavailable):
        return codes.UNAVAILABLE
    if isinstance(exc, Internal):
        return codes.INTERNAL
    if exc.status == 413:
        return codes.RESOURCE_EXHAUSTED
    return codes.UNKNOWN
