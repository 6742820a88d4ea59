"""``kva consume`` wired together: Kafka in, pipeline, Kafka out, metrics, probes, status."""

from __future__ import annotations

import logging
import threading
import time

from kva.consumer.config import ConsumerSettings
from kva.consumer.metrics import ConsumerMetrics
from kva.consumer.models import ModelRuntime, build_model, probe_ejected
from kva.consumer.pipeline import Pipeline
from kva.consumer.scenes import SceneFile
from kva.consumer.tracking import preload_tracker
from kva.httpd import ServiceHttpServer
from kva.kafka import (
    EVENT_TOPIC_CONFIG,
    FrameProducer,
    LatestFrameConsumer,
    TopicSpec,
    ensure_topics,
    wait_for_broker,
)

logger = logging.getLogger(__name__)

#: The Kafka loop counts as hung (``/healthz`` 503) after this many seconds without a turn.
LOOP_STALL_SECONDS = 15.0
#: Kafka group session timeout (ms): how soon a dead consumer's partitions move on.
SESSION_TIMEOUT_MS = 6000
#: Most per-stream lines of one status report (the rest are summed up in one line).
STATUS_LINES = 20


class ConsumerService:
    """One consumer process: build with settings, ``start()``, then ``run(stop)``."""

    def __init__(self, settings: ConsumerSettings, metrics: ConsumerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or ConsumerMetrics()
        self.models: list[ModelRuntime] = []
        self.pipeline: Pipeline | None = None
        self.http: ServiceHttpServer | None = None
        self._consumer: LatestFrameConsumer | None = None
        self._producer: FrameProducer | None = None
        self._last_turn = time.monotonic()
        self._prober: threading.Thread | None = None
        self._scenes: SceneFile | None = None

    def start(self, stop: threading.Event) -> None:
        """Reach Kafka, create topics, load every model (raises on failure)."""
        s = self.settings
        if s.consume_track and not s.consume_passthrough:
            preload_tracker()  # while the broker and the models are reached
        wait_for_broker(s)
        ensure_topics(s, [TopicSpec(s.consume_input_topic)])
        specs = [
            # events wait for a sink that is down: a week, not the frames' hour
            TopicSpec(topic, config=dict(EVENT_TOPIC_CONFIG) | kept.topic_config())
            if topic == s.consume_events_topic
            else TopicSpec(topic, config=kept.topic_config())
            for topic, kept in s.retentions().items()
        ]
        ensure_topics(s, specs, apply_configs=True)  # the retention settings, at every start
        deadline = time.monotonic() + s.consume_start_timeout
        sources = s.label_sources()
        if not s.consume_passthrough:
            for spec in s.model_specs():
                self.models.append(
                    build_model(spec, s, self.metrics, sources.get(spec.name), deadline, stop)
                )
        self.metrics.skipped.labels(s.consume_input_topic)  # the series exists from the start
        self._producer = FrameProducer(s, linger_ms=1)
        self.pipeline = Pipeline(
            models=self.models, producer=self._producer, metrics=self.metrics, settings=s
        )
        if s.consume_camera_file is not None:
            self._scenes = SceneFile(
                s.consume_camera_file,
                s.consume_camera_file_poll,
                self.pipeline.analytics.set_scenes,
            )
            scenes = self._scenes.load()
            logger.info(
                "zones and lines from %s for %d camera(s)%s",
                s.consume_camera_file,
                len(scenes),
                "" if self.pipeline.tracking else " (unused: tracking is off, --no-track)",
            )
        self._consumer = LatestFrameConsumer(
            s,
            [s.consume_input_topic],
            s.consume_group_id,
            max_lag=s.consume_max_lag,
            on_skip=lambda topic, n: self.metrics.skipped.labels(topic).inc(n),
            # after a broker restart the group rebalances once the old members' sessions
            # expire: a shorter session brings frames back sooner
            session_timeout_ms=SESSION_TIMEOUT_MS,
        )
        self.http = ServiceHttpServer(
            s.consume_metrics_host,
            s.consume_metrics_port,
            ready=self.ready,
            healthy=self.healthy,
            registry=self.metrics.registry,
        ).start()
        self._prober = threading.Thread(
            target=self._probe_loop, args=(stop,), name="kva-probe", daemon=True
        )
        self._prober.start()
        logger.info(
            "consuming %s -> %s (+ %s), %s, metrics on http://%s:%d/metrics",
            s.consume_input_topic,
            s.consume_output_topic,
            s.consume_metadata_topic or "no metadata topic",
            "passthrough" if s.consume_passthrough else f"{len(self.models)} model(s)",
            s.consume_metrics_host,
            self.http.port,
        )

    def ready(self) -> bool:
        return self._consumer is not None and bool(self._consumer.assignment)

    def healthy(self) -> bool:
        return time.monotonic() - self._last_turn < LOOP_STALL_SECONDS

    def run(self, stop: threading.Event) -> int:
        """The Kafka loop until ``stop`` is set; returns the exit status."""
        if self._consumer is None or self.pipeline is None or self._producer is None:
            raise RuntimeError("call start() before run()")
        consumer, pipeline, producer = self._consumer, self.pipeline, self._producer
        next_status = time.monotonic() + self.settings.consume_status_interval
        limit = self.settings.broker_unavailable_exit
        while not stop.is_set():
            self._last_turn = time.monotonic()
            record = consumer.poll(0.1)
            if record is not None:
                try:
                    pipeline.accept(record)
                except Exception as exc:  # noqa: BLE001 - one record never stops the loop
                    pipeline.record_failed(record, exc)
            else:
                pipeline.dispatch()
            producer.poll(0)
            if self._scenes is not None:
                self._scenes.poll()
            if self._last_turn >= next_status:
                next_status = self._last_turn + self.settings.consume_status_interval
                self._status()
            if limit and max(consumer.health.down_for(), producer.health.down_for()) > limit:
                logger.error("Kafka unreachable for more than %gs: exiting", limit)
                return 1
        return 0

    def _status(self) -> None:
        if self.pipeline is None:
            return
        self.pipeline.expire()
        rows = self.pipeline.streams.roll()
        for name, _line, fps_in, fps_out in rows:
            if name in self.pipeline.roster:
                self.metrics.fps.labels(name, "in").set(fps_in)
                self.metrics.fps.labels(name, "out").set(fps_out)
        # a few lines per interval however many streams: the busiest first
        busiest = sorted(rows, key=lambda row: -(row[2] + row[3]))
        for _name, line, _fps_in, _fps_out in busiest[:STATUS_LINES]:
            logger.info("%s", line)
        if len(rows) > STATUS_LINES:
            logger.info(
                "%d more stream(s) not listed (%d tracked)",
                len(rows) - STATUS_LINES,
                len(self.pipeline.roster),
            )
        for model in self.models:
            replicas = ", ".join(
                f"{url} {'up' if up else 'DOWN'} inflight={n} requests={total}"
                for url, up, n, total in model.pool.stats()
            )
            logger.info("model %s: %s", model.name, replicas)

    def _probe_loop(self, stop: threading.Event) -> None:
        probe_ejected(self.models, stop, self.settings.consume_probe_interval, self._dispatch)

    def _dispatch(self) -> None:
        if self.pipeline is not None:
            self.pipeline.dispatch()

    def close(self) -> None:
        """Finish frames in flight, flush the producer, leave the group (bounded)."""
        if self.pipeline is not None:
            self.pipeline.close(timeout=self.settings.consume_read_timeout * 2)
        if self._producer is not None:
            left = self._producer.flush(10.0)
            if left:
                logger.warning("%d message(s) not delivered at shutdown", left)
        if self._consumer is not None:
            self._consumer.close()
        if self.http is not None:
            self.http.stop()
        for model in self.models:
            model.pool.close()
        logger.info("consumer stopped")
