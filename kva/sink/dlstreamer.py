"""Each frame's objects over MQTT in DL Streamer Pipeline Server's metadata format.

Tools built for DL Streamer Pipeline Server (it publishes every frame's objects to
MQTT) work unchanged on kva: ``kva events --dlstreamer-topic 'dlstreamer/{stream}'``
reads the predictions topic and publishes, per frame::

    {"objects": [{"detection": {"bounding_box": {"x_min": .., "y_min": .., "x_max": ..,
                                                 "y_max": ..},
                                "confidence": 0.93, "label": "person", "label_id": 0},
                  "x": 120, "y": 40, "w": 60, "h": 180, "roi_type": "person"}],
     "resolution": {"width": 768, "height": 576},
     "source": "cam0", "timestamp": 1700000000000000000}

``bounding_box`` is normalised (0..1), ``x y w h`` are pixels of the frame;
``label`` is the detector's label (its model name when it has none) and ``label_id``
the detector's position among the frame's models (kva's detectors are single-class);
``source`` is the stream id and ``timestamp`` the capture time (ns since the epoch).

Unlike events, frame metadata is about now: the relay starts at the newest frame,
jumps ahead when behind, and publishes at QoS 0; while the broker is unreachable
frames are dropped and counted, never queued.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kva.kafka import LatestFrameConsumer
from kva.logs import RateLimitedLog
from kva.predictions import Detections, FramePredictions, PredictionsError
from kva.settings import KafkaSettings
from kva.sink.metrics import SinkMetrics

logger = logging.getLogger(__name__)

#: Largest predictions document read (bytes).
MAX_PREDICTIONS_BYTES = 1024 * 1024
#: ``publish(topic, payload) -> True when handed to the broker connection``.
Publish = Callable[[str, bytes], bool]


def dlstreamer_document(frame: FramePredictions) -> dict[str, Any]:
    """The DL Streamer Pipeline Server metadata of ``frame`` (see the module docstring)."""
    objects = []
    for index, result in enumerate(frame.models):
        detections = result.prediction
        if result.status != "ok" or not isinstance(detections, Detections):
            continue
        label = detections.label or result.model
        for (x0, y0, x1, y1), score in zip(detections.boxes, detections.scores, strict=True):
            x, y = round(x0 * frame.width), round(y0 * frame.height)
            objects.append(
                {
                    "detection": {
                        "bounding_box": {"x_min": x0, "y_min": y0, "x_max": x1, "y_max": y1},
                        "confidence": score,
                        "label": label,
                        "label_id": index,
                    },
                    "x": x,
                    "y": y,
                    "w": round(x1 * frame.width) - x,
                    "h": round(y1 * frame.height) - y,
                    "roi_type": label,
                }
            )
    return {
        "objects": objects,
        "resolution": {"width": frame.width, "height": frame.height},
        "source": frame.stream,
        "timestamp": frame.capture_ns,
    }


class MetadataRelay:
    """Reads the predictions topic (newest frames) and publishes each frame's objects."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        group: str,
        template: str,
        publish: Publish,
        metrics: SinkMetrics,
    ) -> None:
        self._template = template
        self._publish = publish
        self._metrics = metrics
        self._log = RateLimitedLog(logger, interval=10.0)
        self._consumer = LatestFrameConsumer(settings, [topic], group, max_lag=16, start_at="end")
        self._thread: threading.Thread | None = None
        for reason in ("bad_document", "not_connected"):
            metrics.frames_dropped.labels(reason)

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(
            target=self._loop, args=(stop,), name="kva-dlstreamer", daemon=True
        )
        self._thread.start()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            record = self._consumer.poll(0.2)
            if record is None:
                continue
            try:
                frame = FramePredictions.from_json(record.value, MAX_PREDICTIONS_BYTES)
            except PredictionsError as exc:
                self._metrics.frames_dropped.labels("bad_document").inc()
                self._log.log("bad", logging.WARNING, "skipped %s: %s", record.where, exc)
                continue
            topic = self._template.format(stream=frame.stream)
            payload = json.dumps(dlstreamer_document(frame), separators=(",", ":")).encode()
            if self._publish(topic, payload):
                self._metrics.frames_published.inc()
            else:
                self._metrics.frames_dropped.labels("not_connected").inc()

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(5)
        self._consumer.close()
