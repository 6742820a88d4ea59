"""The re-score loop: read the range, score in parallel, publish in offset order, commit.

Records are read while the window has room (back-pressure: a full window stops the
reading, nothing is dropped for being late), each frame goes to a worker
(:class:`~kva.consumer.rescore.scoring.Scorer`), and finished frames come back in
offset order (:class:`~kva.consumer.rescore.window.OffsetWindow`): they are tracked,
their events found, and their outputs queued in the open transaction, which commits
with the offsets after them every ``--commit-frames`` frames or ``--commit-interval``
seconds. A record that is not a frame is counted, skipped and committed past.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from kva.consumer.config import ConsumerSettings
from kva.consumer.metrics import ConsumerMetrics
from kva.consumer.rescore.outputs import RescoreOutputs
from kva.consumer.rescore.plan import RangePlan
from kva.consumer.rescore.scoring import Scored, Scorer, ScoringStopped, Skipped
from kva.consumer.rescore.summary import RescoreSummary
from kva.consumer.rescore.window import OffsetWindow
from kva.consumer.work import FrameWork
from kva.events import FrameRef
from kva.frame import FrameDecodeError
from kva.kafka import RangeConsumer, Record, TransactionalProducer
from kva.logs import RateLimitedLog

logger = logging.getLogger(__name__)

Outcome = Scored | Skipped
#: Seconds one turn of the loop waits for a record or a finished frame.
TURN = 0.05


@dataclass
class RescoreLoop:
    """Everything one re-score run works with (built by the service's ``start``)."""

    settings: ConsumerSettings
    plan: RangePlan
    consumer: RangeConsumer
    producer: TransactionalProducer
    work: FrameWork
    outputs: RescoreOutputs
    scorer: Scorer
    window: OffsetWindow[Outcome]
    summary: RescoreSummary
    metrics: ConsumerMetrics
    #: read from the range's start and publish only past what is done (see kva.consumer.rescore)
    replay: bool = False
    _reading: dict[int, int] = field(default_factory=dict)  # partition -> next offset to read
    _published: dict[int, int] = field(default_factory=dict)  # partition -> next to publish
    _uncommitted: int = 0
    _last_commit: float = field(default_factory=time.monotonic)
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._reading = self.plan.read_from(replay=self.replay)
        self._published = {p.partition: max(p.start, p.done) for p in self.plan.partitions}
        self._workers = ThreadPoolExecutor(self.window.limit, thread_name_prefix="kva-rescore")
        self._log = RateLimitedLog(logger, interval=10.0)

    def run(self, stop: threading.Event) -> int:
        """Re-score until the range is done (0), a stop signal (0, committed so far) or a
        failure (1, the open transaction aborted)."""
        self.consumer.assign(self._reading)
        self._started = time.monotonic()
        next_status = self._started + self.settings.consume_status_interval
        try:
            while not stop.is_set():
                self._publish_ready()
                if not self._reading and not len(self.window):
                    self._commit(final=True)
                    return self._finish("done", 0)
                self._maybe_commit()
                if self._reading and not self.window.full():
                    self._read_one()
                else:
                    self.window.wait(TURN)
                self.producer.poll(0)
                if time.monotonic() >= next_status:
                    next_status = time.monotonic() + self.settings.consume_status_interval
                    self._status()
            self.window.cancel()
            self._commit()  # what is published so far, with its offsets
            return self._finish("interrupted", 0)
        except ScoringStopped:
            self.producer.abort()  # stopped while a frame was unfinished: its batch goes too
            return self._finish("interrupted", 0)
        except Exception as exc:  # noqa: BLE001 - any failure ends the run the same way: abort
            logger.error("re-score failed: %s", exc)
            self.producer.abort()
            return self._finish("failed", 1)

    def _read_one(self) -> None:
        record = self.consumer.poll(TURN)
        if record is not None:
            self._admit(record)
        for partition in list(self._reading):
            if partition in self.consumer.at_end:  # nothing more (the last may be markers)
                self._done_reading(partition)

    def _admit(self, record: Record) -> None:
        partition, offset = record.partition, record.offset
        end = self.plan.partition(partition).end
        if partition not in self._reading or offset >= end:
            self._done_reading(partition)  # fetched before the partition was paused
            return
        self._reading[partition] = offset + 1
        if offset + 1 >= end:
            self._done_reading(partition)
        self.window.add(partition, offset, self._submit(record))

    def _done_reading(self, partition: int) -> None:
        if self._reading.pop(partition, None) is not None:
            self.consumer.pause(partition)

    def _submit(self, record: Record) -> Future[Outcome]:
        try:
            frame = record.frame(self.settings.consume_max_frame_bytes)
        except FrameDecodeError as exc:
            return _finished(Skipped(exc.reason, f"{record.where}: {exc}"))
        streams = self.summary.streams
        if frame.stream_id not in streams and len(streams) >= self.settings.consume_max_streams:
            return _finished(Skipped("too_many_streams", f"{record.where}: {frame.stream_id}"))
        streams.add(frame.stream_id)
        return self._workers.submit(self.scorer.score, frame)

    def _publish_ready(self) -> None:
        for partition, offset, future in self.window.ready():
            self._publish(partition, offset, future.result())  # a worker's failure ends the run
            self._published[partition] = offset + 1

    def _publish(self, partition: int, offset: int, outcome: Outcome) -> None:
        replay = offset < self.plan.partition(partition).done
        if isinstance(outcome, Skipped):
            if not replay:
                self.summary.skipped[outcome.reason] += 1
                self._uncommitted += 1
                self._log.log(outcome.reason, logging.WARNING, "skipped: %s", outcome.detail)
            return
        ref = FrameRef(self.plan.topic, partition, offset)
        results, events = self.work.track_and_find_events(outcome.frame, outcome.results, ref)
        if replay:
            self.summary.replayed += 1
            return
        self.outputs.publish(outcome, results, events)
        for event in events:
            self.metrics.count_event(event)
        self.summary.frames += 1
        self.summary.events += len(events)
        self._uncommitted += 1

    def _maybe_commit(self) -> None:
        due = time.monotonic() - self._last_commit >= self.settings.consume_commit_interval
        if self._uncommitted >= self.settings.consume_commit_frames or (self._uncommitted and due):
            self._commit()

    def _commit(self, *, final: bool = False) -> None:
        """Commit the open transaction: the outputs so far and the offsets after them."""
        published = dict(self._published)
        if final:
            published = {p.partition: p.end for p in self.plan.partitions}
        self.producer.commit(self.consumer, self.plan.offsets(published))
        self._uncommitted = 0
        self._last_commit = time.monotonic()

    def _status(self) -> None:
        done, left = self.summary.handled, self.summary.remaining
        elapsed = time.monotonic() - self._started
        logger.info(
            "re-score: %d of %d frame(s) (%.0f %%), %d replayed, %.1f frames/s",
            done,
            left,
            100 * done / max(1, left),
            self.summary.replayed,
            done / elapsed if elapsed > 0 else 0.0,
        )

    def _finish(self, outcome: str, code: int) -> int:
        self.summary.outcome = outcome
        self.summary.seconds = time.monotonic() - self._started
        for line in self.summary.lines():
            logger.info("%s", line)
        return code

    def close(self) -> None:
        """Forget the frames in work and stop the workers (without waiting for them)."""
        self.window.cancel()
        self._workers.shutdown(wait=False, cancel_futures=True)


def _finished(outcome: Outcome) -> Future[Outcome]:
    future: Future[Outcome] = Future()
    future.set_result(outcome)
    return future
