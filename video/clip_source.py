"""A clip's frames, read straight from Kafka (no copy on disk), at most ``--clip-readers`` at once.

:meth:`ClipReaders.open` takes a reader slot and opens a
:class:`~kva.kafka.history.RangeReader` of the clip's stream and range (its own
consumer, no group, no commit: the live readers are never touched);
:class:`Clip` hands out the frames one at a time, so a clip's memory is one
frame plus librdkafka's bounded fetch queue, whatever its length. A record that
is not a servable frame is counted by reason and skipped; the clip goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterator

from kva.frame import Frame, FrameDecodeError
from kva.kafka import KafkaUnavailable
from kva.kafka.history import RangeReader
from kva.kafka.peek import RangeError
from kva.logs import RateLimitedLog
from kva.video.clips import ClipError, ClipRequest
from kva.video.config import VideoSettings
from kva.video.reader import image_problem

logger = logging.getLogger(__name__)

#: Called with (topic, reason) for every record of a clip that is not shown.
OnRejected = Callable[[str, str], None]


class Clip:
    """One open clip: its frames in Kafka order; :meth:`close` releases the reader slot."""

    def __init__(
        self,
        request: ClipRequest,
        reader: RangeReader,
        release: Callable[[], None],
        max_frame_bytes: int,
        on_rejected: OnRejected,
    ) -> None:
        self.request = request
        self._reader = reader
        self._release: Callable[[], None] | None = release
        self._max_frame_bytes = max_frame_bytes
        self._on_rejected = on_rejected
        self._log = RateLimitedLog(logger, interval=10.0)
        self._frames = self._read()

    def __iter__(self) -> Iterator[Frame]:
        return self._frames

    def _read(self) -> Generator[Frame, None, None]:
        topic = self.request.topic
        try:
            for record in self._reader:
                try:
                    frame = record.frame(self._max_frame_bytes)
                except FrameDecodeError as exc:
                    self._skip(topic, exc.reason, f"{record.where}: {exc}")
                    continue
                problem = image_problem(frame.content_type, frame.data)
                if problem is not None:
                    self._skip(topic, problem[0], f"{record.where}: {problem[1]}")
                    continue
                yield frame
        except KafkaUnavailable as exc:  # the clip ends early; what was sent stays sent
            logger.warning("a clip of %s on %s ended early: %s", self.request.stream_id, topic, exc)

    def _skip(self, topic: str, reason: str, message: str) -> None:
        self._on_rejected(topic, reason)
        self._log.log((topic, reason), logging.WARNING, "skipping a record of a clip: %s", message)

    def close(self) -> None:
        """Close the Kafka reader and free the slot (safe to call twice)."""
        release, self._release = self._release, None
        if release is None:
            return
        self._frames.close()
        self._reader.close()
        release()

    def __enter__(self) -> Clip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ClipReaders:
    """Opens clips, at most ``--clip-readers`` at once (each is a Kafka consumer)."""

    def __init__(self, settings: VideoSettings, on_rejected: OnRejected) -> None:
        self._settings = settings
        self._on_rejected = on_rejected
        self._slots = threading.BoundedSemaphore(settings.video_clip_readers)

    def open(self, request: ClipRequest) -> Clip:
        """The clip's frames, ready to iterate.

        Raises:
            ClipError: 503 when every reader slot is taken or Kafka does not answer; 404
                when the topic holds nothing in the range (the message says what it holds).
        """
        if not self._slots.acquire(blocking=False):
            raise ClipError(
                503,
                "every clip reader is busy (--clip-readers "
                f"{self._settings.video_clip_readers}): try again in a moment",
            )
        try:
            reader = RangeReader(
                self._settings, request.topic, request.time_range, stream_id=request.stream_id
            )
        except RangeError as exc:
            self._slots.release()
            raise ClipError(404, f"no frames of stream {request.stream_id!r}: {exc}") from None
        except KafkaUnavailable as exc:
            self._slots.release()
            raise ClipError(503, f"Kafka does not answer: {exc}") from None
        except BaseException:
            self._slots.release()
            raise
        return Clip(
            request,
            reader,
            self._slots.release,
            self._settings.video_max_frame_bytes,
            self._on_rejected,
        )
