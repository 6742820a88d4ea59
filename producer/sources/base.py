"""The one small interface every video source implements, and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy.typing as npt

#: A BGR ``uint8`` image as OpenCV returns it.
Image = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class Captured:
    """One decoded frame (BGR, ``uint8``, H×W×3) and when it was captured."""

    image: Image
    capture_ns: int


class SourceError(RuntimeError):
    """A source failed to open or to deliver.

    Attributes:
        permanent: retrying cannot help (a missing or unreadable file);
            live sources raise non-permanent errors and are retried with backoff.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class SourceEnded(Exception):  # noqa: N818 - an end, not an error
    """A finite source (a video file without ``--loop``) has no more frames."""


class Source(Protocol):
    """A video source: ``open()``, then ``read()`` frames, then ``close()``.

    ``read`` returns the next frame to send, or None when none arrived within
    ``timeout`` (the caller's watchdog decides when that is a failure). Live
    sources return the *newest* frame since the last read; older ones are
    dropped and counted in ``stale_frames``.
    """

    #: A description safe to log (no passwords).
    name: str
    #: True for cameras that produce frames on their own clock.
    live: bool

    @property
    def stale_frames(self) -> int:
        """Frames a live source captured but replaced by a newer one before they were read."""

    def open(self) -> None:
        """Connect / open; raises :class:`SourceError`."""

    def read(self, timeout: float) -> Captured | None:
        """The next frame; raises :class:`SourceError` or :class:`SourceEnded`."""

    def close(self) -> None:
        """Release everything; safe to call twice."""
