"""``kva consume --from``: re-score a time range of the input topic, exactly once, then exit.

``start`` reaches Kafka and the models, registers the transactional id (fencing an
older run of the same group), finds the range (stored in the group when this is a
restart, else resolved from ``--from``/``--to`` and pinned by a first transaction),
and builds the loop (:mod:`~kva.consumer.rescore.loop`). See :mod:`kva.consumer.rescore`
for the terms.
"""

from __future__ import annotations

import logging
import threading
import time

from kva.consumer.analytics import SceneAnalytics
from kva.consumer.config import ConsumerSettings
from kva.consumer.metrics import ConsumerMetrics
from kva.consumer.models import ModelRuntime, build_model, probe_ejected
from kva.consumer.rescore.loop import RescoreLoop
from kva.consumer.rescore.outputs import RescoreOutputs
from kva.consumer.rescore.plan import RangePlan, RescoreError, new_plan, resumed_plan
from kva.consumer.rescore.scoring import Scorer
from kva.consumer.rescore.summary import RescoreSummary
from kva.consumer.rescore.window import OffsetWindow
from kva.consumer.scenes import load_scenes
from kva.consumer.tracking import preload_tracker
from kva.consumer.work import FrameWork, build_tracking
from kva.kafka import (
    EVENT_TOPIC_CONFIG,
    RangeConsumer,
    TopicSpec,
    TransactionalProducer,
    ensure_topics,
    wait_for_broker,
)
from kva.kafka.history import resolve_offsets
from kva.kafka.peek import RangeError, describe_held, held, retained
from kva.timerange import TimeRange

logger = logging.getLogger(__name__)

#: Frames in work at once per replica slot of the scarcest model, and the most.
WINDOW_PER_SLOT = 2
MAX_WINDOW = 32


def transactional_id(group: str) -> str:
    """The transactional id of the re-score of ``group``: stable, so a restart fences the
    process it replaces."""
    return f"kva-rescore-{group}"


class RescoreService:
    """One re-score: build with settings, ``start()``, ``run(stop)``, ``close()``."""

    def __init__(self, settings: ConsumerSettings) -> None:
        self.settings = settings
        self.metrics = ConsumerMetrics()
        self.models: list[ModelRuntime] = []
        s = settings
        self.summary = RescoreSummary(
            s.consume_input_topic,
            "",
            s.consume_group_id,
            (s.consume_output_topic, s.consume_metadata_topic, s.consume_events_topic),
        )
        self.loop: RescoreLoop | None = None
        self._consumer: RangeConsumer | None = None
        self._producer: TransactionalProducer | None = None
        self._work: FrameWork | None = None

    def start(self, stop: threading.Event) -> None:
        """Reach Kafka and the models, fence an older run, plan the range (raises on failure)."""
        s = self.settings
        if s.consume_track:
            preload_tracker()
        wait_for_broker(s)
        consumer = self._consumer = RangeConsumer(s, s.consume_input_topic, s.consume_group_id)
        producer = self._producer = TransactionalProducer(s, transactional_id(s.consume_group_id))
        producer.start()  # fences an older re-score of this group: its open batch is aborted
        plan = self._plan(consumer)  # before the models: a bad range is said at once
        deadline = time.monotonic() + s.consume_start_timeout
        sources = s.label_sources()
        for spec in s.model_specs():
            self.models.append(
                build_model(spec, s, self.metrics, sources.get(spec.name), deadline, stop)
            )
        work, analytics = self._build_work()
        if not plan.resumed:  # pinned by a first transaction (offsets only): a restart finds it
            self._ensure_topics()
            producer.commit(consumer, plan.offsets({}))
        replay = plan.resumed and analytics is not None
        if replay:
            self._check_replay_retained(plan)
        self.summary.range_text = str(plan.time_range)
        self.summary.resumed = plan.resumed
        self.summary.remaining = plan.remaining
        self.loop = RescoreLoop(
            settings=s,
            plan=plan,
            consumer=consumer,
            producer=producer,
            work=work,
            outputs=RescoreOutputs(
                producer,
                work,
                output_topic=s.consume_output_topic,
                metadata_topic=s.consume_metadata_topic,
                events_topic=s.consume_events_topic,
            ),
            scorer=Scorer(
                work,
                self.models,
                wait_s=s.consume_model_wait,
                stop=stop,
                keep_image=bool(s.consume_output_topic),
            ),
            window=OffsetWindow(self._window_size()),
            summary=self.summary,
            metrics=self.metrics,
            replay=replay,
        )
        threading.Thread(
            target=probe_ejected,
            args=(self.models, stop, s.consume_probe_interval),
            name="kva-probe",
            daemon=True,
        ).start()
        self._log_start(plan, replay)

    def _build_work(self) -> tuple[FrameWork, SceneAnalytics | None]:
        s = self.settings
        tracking = build_tracking(self.models, s)
        analytics = None
        if tracking is not None:
            analytics = SceneAnalytics(
                window_s=s.consume_track_window, max_tracks=s.consume_max_tracks
            )
            if s.consume_camera_file is not None:
                analytics.set_scenes(load_scenes(s.consume_camera_file))  # read once: a run
        self._work = FrameWork(
            self.models,
            jpeg_quality=s.consume_jpeg_quality,
            request_quality=s.consume_request_quality,
            tracking=tracking,
            analytics=analytics,
        )
        return self._work, analytics

    def _window_size(self) -> int:
        slots = min((m.pool.max_inflight * len(m.pool.replicas) for m in self.models), default=1)
        return max(2, min(MAX_WINDOW, WINDOW_PER_SLOT * slots + 1))

    def _plan(self, consumer: RangeConsumer) -> RangePlan:
        """The range stored in the group (a resumed re-score), else the one asked for."""
        s = self.settings
        topic = s.consume_input_topic
        spans = retained(s, topic)
        committed = consumer.committed([span.partition for span in spans])
        plan = resumed_plan(topic, s.consume_group_id, committed)
        if plan is not None:
            return plan
        now_ms = time.time_ns() // 1_000_000
        time_range = TimeRange.parse(str(s.consume_from), s.consume_to, now_ms=now_ms)
        offsets = resolve_offsets(s, topic, time_range)
        if not offsets:
            raise RangeError(f"nothing in {time_range}: {describe_held(topic, spans)}")
        kept = held(spans)
        if kept is not None and time_range.start_ms < kept.start_ms:
            logger.warning(
                "the range starts before the oldest frame still held (%s): re-scoring from there",
                describe_held(topic, spans),
            )
        return new_plan(topic, time_range, offsets)

    def _ensure_topics(self) -> None:
        s = self.settings
        # predictions and events are kept for comparing runs: the events' week, not a minute
        specs = [TopicSpec(s.consume_output_topic)] if s.consume_output_topic else []
        specs += [
            TopicSpec(topic, config=EVENT_TOPIC_CONFIG)
            for topic in (s.consume_metadata_topic, s.consume_events_topic)
            if topic
        ]
        ensure_topics(s, specs)

    def _check_replay_retained(self, plan: RangePlan) -> None:
        lows = {span.partition: span.low for span in retained(self.settings, plan.topic)}
        for part in plan.partitions:
            if not part.finished and lows.get(part.partition, 0) > part.start:
                raise RescoreError(
                    f"the start of the range ({plan.topic}[{part.partition}]@{part.start}) has "
                    "expired since this re-score began, so its tracks cannot be rebuilt: "
                    "re-score with a new --group-id"
                )

    def _log_start(self, plan: RangePlan, replay: bool) -> None:
        how = ""
        if plan.resumed:
            how = (
                " (resumed; the range's start replayed to rebuild the tracks)"
                if replay
                else (" (resumed)")
            )
        logger.info(
            "re-scoring %s %s: %d offset(s) left in %d partition(s)%s, group %s, %d model(s)",
            plan.topic,
            plan.time_range,
            plan.remaining,
            len(plan.partitions),
            how,
            self.settings.consume_group_id,
            len(self.models),
        )

    def run(self, stop: threading.Event) -> int:
        """The re-score until done (0), stopped (0) or failed (1)."""
        if self.loop is None:
            raise RuntimeError("call start() before run()")
        return self.loop.run(stop)

    def close(self) -> None:
        """Stop the workers, release the clients and the replicas (bounded)."""
        if self.loop is not None:
            self.loop.close()
        if self._work is not None:
            self._work.close()
        if self._producer is not None:
            self._producer.abort()
        if self._consumer is not None:
            self._consumer.close()
        for model in self.models:
            model.pool.close()
