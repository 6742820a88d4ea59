"""Errors a request can end in, with TF Serving's HTTP status for each."""

from __future__ import annotations


class ServingError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ServingError):
    """The request is malformed or does not fit the model (400)."""

    status = 400


class NotFound(ServingError):
    """Unknown model or version (404)."""

    status = 404


class PayloadTooLarge(ServingError):
    """The body is larger than ``--max_request_bytes`` (413)."""

    status = 413


class Unavailable(ServingError):
    """The model is saturated or not loaded yet (503)."""

    status = 503


class Internal(ServingError):
    """Inference itself failed (500)."""

    status = 500
