"""``/metrics`` (Prometheus) and ``/healthz``."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kva.video.state import viewer_state

bp = Blueprint("ops", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus metrics of this viewer."""
    registry = viewer_state().metrics.registry
    return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the Kafka reader runs, else 503."""
    if viewer_state().healthy():
        return Response("ok\n", 200, mimetype="text/plain")
    return Response("unhealthy: the Kafka reader stopped\n", 503, mimetype="text/plain")
