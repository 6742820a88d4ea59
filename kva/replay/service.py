"""``kva replay`` wired together: resolve the range, read it record by record, write an output.

``start`` reaches Kafka, reads the range (:class:`kva.kafka.history.RangeReader`: no
consumer group, bounded memory) and opens the output; a range the topic does not
hold, or a time that cannot be read, is a :class:`ReplayError` (exit status 2)
saying what the topic does hold. ``run`` decodes each record (a corrupt one is
counted by reason and skipped), paces it and writes it; a stream with no frame in
the range is reported with the streams the topic has.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from kva.frame import Frame, FrameDecodeError
from kva.kafka import KafkaUnavailable, Record, TopicSpec, ensure_topics, wait_for_broker
from kva.kafka.history import RangeReader
from kva.kafka.peek import (
    RangeError,
    describe_held,
    describe_streams,
    recent_streams,
    retained,
)
from kva.logs import RateLimitedLog
from kva.replay.config import ReplaySettings
from kva.replay.errors import FrameSkipped, ReplayError
from kva.replay.output import Output
from kva.replay.pacing import Pacer
from kva.replay.tofile import VideoFileOutput
from kva.replay.totopic import TopicOutput
from kva.replay.toviewer import viewer_output
from kva.timerange import TimeRange, TimeRangeError, format_ms

logger = logging.getLogger(__name__)

#: ``(records read, records in the range, frames written, final)``: the progress bar's feed.
Progress = Callable[[int, int, int, bool], None]
#: Exit status of a replay stopped by a signal before its end.
STOPPED = 130


class ReplayService:
    """One replay: ``start`` (resolve, open), ``run`` (read and write), ``close``."""

    def __init__(self, settings: ReplaySettings, progress: Progress | None = None) -> None:
        self.settings = settings
        self._progress = progress
        self.reader: RangeReader | None = None
        self.output: Output | None = None
        self.time_range: TimeRange | None = None
        #: Corrupt records skipped, by reason (FrameDecodeError's, or an output's).
        self.skipped: Counter[str] = Counter()
        self.frames = 0
        self.first: Frame | None = None
        self.last: Frame | None = None
        self._log = RateLimitedLog(logger, interval=10.0)

    def start(self, stop: threading.Event) -> None:
        """Reach Kafka, resolve the range, open the output.

        Raises:
            ReplayError: a time that cannot be read, a range the topic does not hold.
            KafkaUnavailable: no broker in time.
        """
        s = self.settings
        wait_for_broker(s)
        now_ms = time.time_ns() // 1_000_000
        try:
            self.time_range = TimeRange.parse(s.replay_from, s.replay_to, now_ms=now_ms)
        except TimeRangeError as exc:
            raise ReplayError(f"--from {s.replay_from} --to {s.replay_to}: {exc}") from None
        try:
            self.reader = RangeReader(s, s.source_topic, self.time_range, stream_id=s.replay_stream)
        except RangeError as exc:
            raise ReplayError(str(exc)) from None
        self._note_unknown_stream()
        self.output = self._open_output(stop)
        logger.info(
            "replaying %s from %s, %s (%d records in range), to %s, pace %s",
            s.replay_stream,
            s.source_topic,
            self.time_range,
            self.reader.total_offsets,
            self.output.name,
            s.pace,
        )

    def _note_unknown_stream(self) -> None:
        """Say so early when the stream is not among the topic's newest records."""
        s = self.settings
        streams = recent_streams(s, s.source_topic)
        if s.replay_stream not in streams:
            logger.warning(
                "stream %s is not among the newest records of %s (those have: %s); "
                "looking for it in the range",
                s.replay_stream,
                s.source_topic,
                describe_streams(streams),
            )

    def _open_output(self, stop: threading.Event) -> Output:
        s = self.settings
        if s.replay_to_file is not None:
            return VideoFileOutput(s.replay_to_file, s.replay_fps, s.replay_max_gap)
        if s.replay_to_topic is not None:
            ensure_topics(s, [TopicSpec(s.replay_to_topic)], timeout=s.broker_timeout)
            return TopicOutput(s, s.replay_to_topic, stop)
        ensure_topics(s, [TopicSpec(s.replay_annotated_topic)], timeout=s.broker_timeout)
        return viewer_output(
            s, s.replay_annotated_topic, s.replay_stream, stop, s.replay_viewer_stream
        )

    def run(self, stop: threading.Event) -> int:
        """Replay the range; the exit status (0 done, 1 Kafka lost, 2 nothing to replay)."""
        reader, output = self.reader, self.output
        if reader is None or output is None:  # not started
            return 1
        pacer = Pacer(self.settings.pace, self.settings.replay_max_gap)
        started = time.monotonic()
        try:
            for record in reader:
                if not self._replay(record, output, pacer, stop):
                    break
                self._report(final=False)
        except KafkaUnavailable as exc:
            logger.error("replay interrupted: %s; kept: %s", exc, output.close())
            return 1
        except ReplayError as exc:
            logger.error("%s", exc)
            output.close()
            return exc.exit_code
        self._report(final=True)
        return self._finish(output, time.monotonic() - started, stop.is_set())

    def _replay(self, record: Record, output: Output, pacer: Pacer, stop: threading.Event) -> bool:
        """Decode, pace and write one record; False when stopped."""
        try:
            frame = record.frame()
        except FrameDecodeError as exc:
            self._skip(record, exc.reason, str(exc))
            return True
        if not pacer.wait(frame.capture_ns, stop):
            return False
        try:
            output.write(frame, record)
        except FrameSkipped as exc:
            self._skip(record, exc.reason, str(exc))
            return True
        except ReplayError:
            raise
        except Exception as exc:  # noqa: BLE001 - one frame must never end the replay
            self._skip(record, "internal_error", f"{type(exc).__name__}: {exc}")
            return True
        self.frames += 1
        self.first = self.first or frame
        self.last = frame
        return True

    def _skip(self, record: Record, reason: str, message: str) -> None:
        self.skipped[reason] += 1
        self._log.log(reason, logging.WARNING, "skipping %s: %s", record.where, message)

    def _report(self, final: bool) -> None:
        if self._progress is not None and self.reader is not None:
            reader = self.reader
            self._progress(reader.done_offsets, reader.total_offsets, self.frames, final)

    def _finish(self, output: Output, seconds: float, stopped: bool) -> int:
        s = self.settings
        summary = output.close()
        if self.skipped:
            logger.warning(
                "skipped %d corrupt record(s): %s",
                sum(self.skipped.values()),
                ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items())),
            )
        if self.first is None or self.last is None:
            logger.error("%s", self._nothing_found())
            return 2
        logger.info(
            "replayed %d frames of %s captured %s .. %s in %.1fs (%.0f frames/s): %s",
            self.frames,
            s.replay_stream,
            format_ms(self.first.capture_ns // 1_000_000),
            format_ms(self.last.capture_ns // 1_000_000),
            seconds,
            self.frames / max(seconds, 1e-9),
            summary,
        )
        if stopped:
            logger.warning("stopped before the end of the range")
            return STOPPED
        return 0 if getattr(output, "complete", True) else 1

    def _nothing_found(self) -> str:
        """Why nothing was replayed: no such stream, or none of its frames in the range."""
        s = self.settings
        streams = recent_streams(s, s.source_topic)
        if self.skipped:
            return f"no frame of {s.replay_stream} in {self.time_range} could be read"
        if s.replay_stream not in streams:
            return (
                f"no stream {s.replay_stream} in {s.source_topic} in {self.time_range}; "
                f"streams there: {describe_streams(streams)}"
            )
        held = describe_held(s.source_topic, retained(s, s.source_topic))
        return f"no frame of {s.replay_stream} in {self.time_range} ({held})"

    def close(self) -> None:
        """Release the reader (and an output ``run`` did not finish)."""
        if self.reader is not None:
            self.reader.close()
            self.reader = None
