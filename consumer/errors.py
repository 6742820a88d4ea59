"""Typed inference errors: each says whether another replica might do better."""

from __future__ import annotations


class InferenceError(Exception):
    """A request to a model server failed.

    Attributes:
        reason: short label for metrics (``connect``, ``timeout``, ``http_5xx``,
            ``http_4xx``, ``bad_response``, ``unavailable``).
        retriable: True when the same request may succeed on another replica.
    """

    def __init__(self, reason: str, message: str, *, retriable: bool) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.retriable = retriable


class ModelUnavailable(InferenceError):
    """No replica of the model can take the request (all ejected or busy)."""

    def __init__(self, message: str) -> None:
        super().__init__("unavailable", message, retriable=False)


class MetadataError(Exception):
    """A model's metadata cannot be used (unknown outputs, no image input, ...)."""


def shorten(exc: BaseException | str, limit: int = 200) -> str:
    """An exception's text cut to ``limit`` characters (for messages and logs)."""
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."
