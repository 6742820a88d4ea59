"""What ``kva replay`` refuses, with the exit status it means."""

from __future__ import annotations


class ReplayError(RuntimeError):
    """A replay that cannot be done as asked; the message says why and what there is.

    Attributes:
        exit_code: 2, a usage error: bad arguments, a range or stream the topic does not hold.
    """

    exit_code = 2


class FrameSkipped(ValueError):  # noqa: N818 - a counted outcome, not a failure
    """An output could not use one frame (e.g. an image that does not decode); counted."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
