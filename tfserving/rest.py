"""What the REST handlers (``/v1``, ``/v2``) share: the current :class:`Runtime`, the
request body within its limit, JSON responses and the metrics labels of a request."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, g, request

from kva.tfserving.encoding import decode_body
from kva.tfserving.errors import PayloadTooLarge
from kva.tfserving.runtime import Runtime

#: The key of the :class:`Runtime` in ``app.extensions``.
EXTENSION = "kva_serve"


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
    """The request body, decompressed per ``Content-Encoding``.

    413 beyond ``--max_request_bytes``: the body as sent (checked before
    reading) and the body decompressed (checked while inflating) alike.
    """
    limit = runtime().max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body of {request.content_length} bytes exceeds {limit}")
    data = request.get_data(cache=True)
    if len(data) > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes")
    return decode_body(data, request.headers.get("Content-Encoding"), limit)
