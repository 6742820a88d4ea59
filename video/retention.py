"""How far back each stream can be replayed: what Kafka still holds, looked at in the background.

**Replayable from** is the capture time of the oldest record Kafka still keeps
in the stream's partition (kva stamps every record with its frame's capture
time, so a record's timestamp is its capture time); older video has expired.
:class:`RetentionWatcher` asks Kafka (:meth:`kva.kafka.peek.TopicPeek.retained`) every
``--retention-refresh`` seconds on a thread of its own, never per request, and
keeps the answer; the API and the clip routes read it from memory. The looks share
one :class:`~kva.kafka.peek.TopicPeek` for the watcher's life (a new Kafka client
per look grew the viewer's RSS by about 0.8 MB a look).

A stream lives in one partition. The live reader tells which (the partition its
frames came from); for a stream it has not seen (or on the raw frames topic,
which the viewer does not read live) the answer is the newest of the partitions'
oldest times: every partition still holds everything from then on, so a clip
from there is complete (it may understate by a segment).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kva.kafka import KafkaUnavailable
from kva.kafka.peek import PartitionSpan, RangeError, TopicPeek
from kva.logs import RateLimitedLog
from kva.video.config import VideoSettings

logger = logging.getLogger(__name__)

#: Records read back from each partition to learn which streams a topic holds.
STREAMS_PER_PARTITION = 8
#: Most stream names remembered from the topic.
MAX_KNOWN_STREAMS = 1024


@dataclass(frozen=True, slots=True)
class Retention:
    """What one topic held when last looked at."""

    topic: str
    spans: dict[int, PartitionSpan]
    checked_ms: int

    def replay_from_ms(self, partition: int | None = None) -> int | None:
        """The oldest capture time a clip of a stream in ``partition`` can start at.

        None when nothing is held. An unknown partition (None, or one the topic no
        longer has) gives the newest of the partitions' oldest times (see the module
        docstring).
        """
        span = None if partition is None else self.spans.get(partition)
        if span is not None:
            return span.first_ms
        firsts = [s.first_ms for s in self.spans.values() if s.first_ms is not None]
        return max(firsts) if firsts else None

    def held_to_ms(self) -> int | None:
        """The newest capture time held in any partition (None when empty)."""
        lasts = [s.last_ms for s in self.spans.values() if s.last_ms is not None]
        return max(lasts) if lasts else None


class RetentionWatcher:
    """Keeps :class:`Retention` of the viewer's topics fresh (see the module docstring).

    Args:
        settings: the viewer's settings (the topics, the refresh interval).
        look: how one topic is looked at (default: :meth:`TopicPeek.retained`).
        streams: how the streams of a topic are listed (default:
            :meth:`TopicPeek.recent_streams`).
    """

    def __init__(
        self,
        settings: VideoSettings,
        look: Callable[[VideoSettings, str], list[PartitionSpan]] | None = None,
        streams: Callable[[VideoSettings, str], dict[str, int]] | None = None,
    ) -> None:
        self._settings = settings
        self._peek: TopicPeek | None = None
        self._look = look or (lambda _s, topic: self._topic_peek().retained(topic))
        self._list_streams = streams or (
            lambda _s, topic: self._topic_peek().recent_streams(topic, STREAMS_PER_PARTITION)
        )
        self.topics = [t for t in (settings.video_topic, settings.video_frames_topic) if t]
        self._lock = threading.Lock()
        self._retention: dict[str, Retention] = {}
        self._streams: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = RateLimitedLog(logger, interval=60.0)

    def retention(self, topic: str) -> Retention | None:
        """The last look at ``topic``, or None before the first (or when it does not exist)."""
        with self._lock:
            return self._retention.get(topic)

    def streams(self) -> dict[str, int]:
        """Streams seen in the newest records of the frame topic: ``id -> newest time (ms)``."""
        with self._lock:
            return dict(self._streams)

    def _topic_peek(self) -> TopicPeek:
        if self._peek is None:
            self._peek = TopicPeek(self._settings)
        return self._peek

    def refresh(self) -> None:
        """Look at every topic once now (the thread calls this; so can a test)."""
        for topic in self.topics:
            try:
                spans = self._look(self._settings, topic)
            except RangeError:  # the topic does not exist (yet): nothing is replayable
                with self._lock:
                    self._retention.pop(topic, None)
                continue
            except KafkaUnavailable as exc:  # keep the last answer; retention only grows older
                self._log.log(
                    ("unavailable", topic), logging.WARNING, "retention of %s: %s", topic, exc
                )
                continue
            now_ms = time.time_ns() // 1_000_000
            with self._lock:
                self._retention[topic] = Retention(topic, {s.partition: s for s in spans}, now_ms)
        self._refresh_streams()

    def _refresh_streams(self) -> None:
        topic = self._settings.video_topic
        try:
            found = self._list_streams(self._settings, topic)
        except (RangeError, KafkaUnavailable) as exc:
            self._log.log(("streams", topic), logging.INFO, "streams of %s: %s", topic, exc)
            return
        with self._lock:
            self._streams.update(found)
            if len(self._streams) > MAX_KNOWN_STREAMS:  # keep the most recently seen
                newest = sorted(self._streams, key=self._streams.__getitem__)[-MAX_KNOWN_STREAMS:]
                self._streams = {name: self._streams[name] for name in newest}

    def start(self) -> RetentionWatcher:
        """Look now and then every ``--retention-refresh`` seconds, on a thread."""
        self._thread = threading.Thread(target=self._run, name="kva-video-retention", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = self._settings.video_retention_refresh
        while True:
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a bug here must not end the looks; logged
                self._log.failure(("refresh", type(exc).__name__), "the retention look", exc)
            if self._stop.wait(interval):
                break
        self._close_peek()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop looking (waits up to ``timeout`` for a look in progress)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self._close_peek()  # looked at by refresh() without the thread, or already closed

    def _close_peek(self) -> None:
        if self._peek is not None:
            self._peek.close()
            self._peek = None
