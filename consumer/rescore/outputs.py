"""A scored frame's outputs, into the open transaction: annotated frame, predictions, events.

Every message is stamped with the frame's capture time and keyed by its stream, as the
live pipeline's are. What is published depends only on the input (and the models'
answers): the annotated frame's footer names the stream, the frame and the re-score,
not the frame's age or the fps of the moment. The predictions document's timing fields
(``published_ns``, ``age_ms``, each model's ``latency_ms`` and ``replica``) are the
run's own, which is what ``kva compare`` reports as its latency.
"""

from __future__ import annotations

import logging
import time

from kva.consumer.rescore.scoring import Scored
from kva.consumer.work import Annotated, FrameWork, build_output
from kva.events import Event
from kva.frame import encode_frame
from kva.kafka import TransactionalProducer
from kva.logs import RateLimitedLog
from kva.predictions import ModelResult

logger = logging.getLogger(__name__)


class RescoreOutputs:
    """Where a re-score's outputs go (a topic ``''`` is not written)."""

    def __init__(
        self,
        producer: TransactionalProducer,
        work: FrameWork,
        *,
        output_topic: str,
        metadata_topic: str,
        events_topic: str,
    ) -> None:
        self.producer = producer
        self.work = work
        self.output_topic = output_topic
        self.metadata_topic = metadata_topic
        self.events_topic = events_topic
        self._log = RateLimitedLog(logger, interval=10.0)

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.output_topic, self.metadata_topic, self.events_topic)

    def publish(self, scored: Scored, results: list[ModelResult], events: list[Event]) -> None:
        """Queue the frame's outputs in the open transaction.

        Raises:
            TransactionError: the transaction failed.
            ProduceDropped: the local queue stayed full.
        """
        source = scored.frame
        key = source.stream_id.encode()
        stamp = source.capture_ns // 1_000_000
        now_ns = time.time_ns()
        out = source
        if self.output_topic and scored.image is not None:
            footer = f"{source.stream_id} #{source.sequence}  re-score"
            annotated = self.work.render(source, scored.image, results, footer)
            if isinstance(annotated, Annotated):
                out = annotated.frame
            else:
                self._log.log("render", logging.WARNING, "not annotated: %s", annotated.detail)
        frame, text = build_output(source, out, results, now_ns, passthrough=False)
        if self.output_topic:
            _key, value, headers = encode_frame(frame)
            self.producer.send(self.output_topic, key, value, headers, timestamp_ms=stamp)
        if self.metadata_topic:
            self.producer.send(self.metadata_topic, key, text.encode(), timestamp_ms=stamp)
        if self.events_topic:
            for event in events:
                self.producer.send(
                    self.events_topic,
                    key,
                    event.to_json().encode(),
                    timestamp_ms=event.capture_ns // 1_000_000,
                )
