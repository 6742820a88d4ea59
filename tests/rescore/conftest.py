"""Fixtures of the re-score tests: real ``kva serve`` replicas with every built model, the
demo video's frames, topics that keep what they get, and the re-scorer's command line."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import pytest

from kva.frame import Frame
from kva.kafka import FrameProducer, TopicSpec, ensure_topics
from kva.settings import KafkaSettings
from tests.rescore.helpers import committed_records
from tests.support.process import starts_processes
from tests.support.serve import ServeProcess, serve_built_models

#: The demo video's frame interval (10 fps).
FRAME_NS = 100_000_000
#: Test topics keep their records an hour (the frames' default minute is too short for a test
#: whose frames were captured two minutes ago).
KEEP = {"retention.ms": str(3600 * 1000), "segment.ms": str(3600 * 1000)}
#: Fields of a predictions document that are the run's own timing, not the models' answers.
TIMING = ("published_ns", "age_ms")
MODEL_TIMING = ("latency_ms", "replica")


@dataclass(frozen=True)
class Outputs:
    """The three topics one run writes."""

    annotated: str
    predictions: str
    events: str

    def flags(self) -> list[str]:
        return [
            f"--output-topic={self.annotated}",
            f"--metadata-topic={self.predictions}",
            f"--events-topic={self.events}",
        ]


@pytest.fixture(scope="package")
@starts_processes
def replicas(
    built_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServeProcess]]:
    """Two ``kva serve`` replicas, each serving every built model."""
    started = serve_built_models(built_models, tmp_path_factory.mktemp("rescore-serve"))
    yield started
    for replica in started:
        replica.close()


@pytest.fixture(scope="package")
def video_jpegs(demo_video: Path) -> list[bytes]:
    """The first 200 frames of ``vtest.avi`` (768x576) as JPEG."""
    capture = cv2.VideoCapture(str(demo_video))
    jpegs = []
    try:
        while len(jpegs) < 200:
            ok, image = capture.read()
            assert ok, "vtest.avi has 795 frames"
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok
            jpegs.append(data.tobytes())
    finally:
        capture.release()
    return jpegs


def kept_topic(settings: KafkaSettings, name: str, partitions: int = 1) -> str:
    """Create ``name`` with an hour's retention."""
    ensure_topics(settings, [TopicSpec(name, partitions=partitions, config=KEEP)])
    return name


def model_flags(replicas: list[ServeProcess], *models: str) -> list[str]:
    return [f"--model={m}={','.join(r.model_url(m) for r in replicas)}" for m in models]


def rescore_argv(settings: KafkaSettings, frames: str, group: str, *flags: str) -> list[str]:
    """``kva consume`` re-scoring ``frames`` in ``group``; range, models and outputs in ``flags``."""
    return [
        "consume",
        f"--bootstrap-server={settings.bootstrap_server}",
        f"--input-topic={frames}",
        f"--group-id={group}",
        *flags,
    ]


def range_flags(span: tuple[int, int]) -> list[str]:
    """``--from`` and ``--to`` of a range of epoch milliseconds."""
    return [f"--from={span[0]}", f"--to={span[1]}"]


def record_video(
    settings: KafkaSettings, topic: str, stream: str, jpegs: list[bytes], start_ns: int
) -> tuple[int, int]:
    """``jpegs`` as the frames of ``stream`` captured at 10 fps from ``start_ns``; the range
    of their capture times in ms (end exclusive)."""
    producer = FrameProducer(settings)
    for seq, data in enumerate(jpegs):
        producer.send_frame(topic, Frame(stream, seq, start_ns + seq * FRAME_NS, 768, 576, data))
    assert producer.flush(30) == 0
    return start_ns // 1_000_000, (start_ns + len(jpegs) * FRAME_NS) // 1_000_000


def answers(settings: KafkaSettings, topic: str) -> list[dict[str, Any]]:
    """The committed predictions documents of ``topic`` without their timing fields."""
    documents = []
    for record in committed_records(settings, topic):
        document = json.loads(record.value or b"{}")
        for name in TIMING:
            document.pop(name, None)
        for model in document["models"]:
            for name in MODEL_TIMING:
                model.pop(name, None)
        documents.append(document)
    return documents


def now_minus(seconds: float) -> int:
    return time.time_ns() - int(seconds * 1e9)
