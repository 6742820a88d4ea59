"""The predictions documents of one run, read back from its topic (committed ones only).

:class:`~kva.kafka.history.RangeReader` reads ``read_committed``, so a re-score's
aborted batches are never counted, and holds no more than its fetch queue: documents
are handed out one at a time. A record that is not a predictions document is counted
by reason and skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from kva.kafka.history import RangeReader
from kva.predictions import FramePredictions, PredictionsError
from kva.settings import KafkaSettings
from kva.timerange import TimeRange

#: Largest predictions document read (the consumer writes a few KB).
MAX_DOCUMENT_BYTES = 1024 * 1024


@dataclass
class RunReader:
    """Reads the documents of one run: ``topic`` within ``time_range`` (optionally one stream)."""

    settings: KafkaSettings
    topic: str
    time_range: TimeRange
    stream: str | None = None
    documents: int = 0
    corrupt: Counter[str] = field(default_factory=Counter)

    def __iter__(self) -> Iterator[FramePredictions]:
        """Every valid document, oldest first per partition.

        Raises:
            RangeError: the topic does not exist or holds nothing in the range.
            KafkaUnavailable: the broker does not answer.
        """
        with RangeReader(
            self.settings, self.topic, self.time_range, stream_id=self.stream
        ) as records:
            for record in records:
                try:
                    document = FramePredictions.from_json(record.value, MAX_DOCUMENT_BYTES)
                except PredictionsError as exc:
                    self.corrupt[exc.reason] += 1
                    continue
                self.documents += 1
                yield document
