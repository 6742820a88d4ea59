"""The one small interface of a replay's output (file, topic, viewer)."""

from __future__ import annotations

from typing import Protocol

from kva.frame import Frame
from kva.kafka import Record


class Output(Protocol):
    """Where replayed frames go: ``write`` each, then ``close`` once."""

    #: Where the frames go, for log lines (``out.mp4``, ``topic frames.copy``).
    name: str

    def write(self, frame: Frame, record: Record) -> None:
        """Take one frame (``record`` is the message it came in).

        Raises:
            FrameSkipped: this frame cannot be used (counted by reason; the replay goes on).
        """

    def close(self) -> str:
        """Finish (file written, messages delivered): a summary for the log."""
