"""People tracked and counted on a real pedestrian video: ``vtest.avi`` (768x576, 10 fps,
795 frames of people walking in a square) → Kafka → kva consume (tracking, a counting
line from the camera file) → a real ``kva serve`` running the ``person`` model.

Frames go in one at a time, each once the previous one is out, with the video's own
capture times (10 fps): every frame is processed, so two runs see the same frames
and must count the same crossings. The track numbers are printed for the notes
(``pytest -s``)."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest

from kva.events import Event
from kva.frame import Frame
from kva.kafka import FrameProducer
from kva.launcher.layout import write_model_config
from tests.consumer.conftest import consumer_settings, metadata_docs, running_consumer
from tests.support.kafka import Topics
from tests.support.process import starts_processes
from tests.support.serve import ServeProcess
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: A line across the square from top to bottom: the people walking left and right cross it.
#: Drawn top to bottom, "in" is from the right half to the left half.
CAMERA_FILE = """
cameras:
  - id: square
    source: vtest.avi
    lines:
      - name: across
        points: [[0.5, 0.0], [0.5, 1.0]]
"""
FRAME_NS = 100_000_000  # the video's 10 fps


@dataclass
class Run:
    """What one pass of the video gave."""

    with_people: float  # share of frames with at least one person
    track_lengths: list[int]  # frames per track id
    crossings: list[tuple[int, int, str]]  # (seq, track, direction)
    counts: dict[str, int]

    def note(self) -> str:
        lengths = self.track_lengths
        short = sum(1 for n in lengths if n < 5) / len(lengths)
        return (
            f"people in {self.with_people:.1%} of frames; {len(lengths)} track ids, median "
            f"{statistics.median(lengths)} frames, {short:.0%} shorter than 5 frames; "
            f"line 'across': {self.counts}"
        )


@pytest.fixture(scope="module")
@starts_processes
def replica(built_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("vtest-serve")
    config = write_model_config(built_models, folder / "models.config")
    started = ServeProcess(["--model_config_file", str(config)], folder / "serve.log").start()
    yield started
    started.close()


@pytest.fixture(scope="module")
def video_jpegs(demo_video: Path) -> list[bytes]:
    capture = cv2.VideoCapture(str(demo_video))
    jpegs = []
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok
            jpegs.append(data.tobytes())
    finally:
        capture.release()
    assert len(jpegs) == 795, len(jpegs)
    return jpegs


def one_run(run: int, jpegs: list[bytes], replica, kafka_settings, make_topic, reader, tmp_path):
    cameras = tmp_path / f"cameras-{run}.yaml"
    cameras.write_text(CAMERA_FILE)
    topics = Topics(*(make_topic(suffix=f"{part}{run}") for part in ("in", "out", "meta")))
    events_topic = make_topic(suffix=f"events{run}")
    settings = consumer_settings(
        kafka_settings,
        topics,
        f"{topics.input}-group",
        consume_models=[f"person={replica.model_url('person', 'v1')}"],
        consume_camera_file=cameras,
        consume_events_topic=events_topic,
        consume_max_frame_age=3600.0,  # capture times are the video's, not the wall clock's
    )
    meta, events = reader(topics.metadata), reader(events_topic)
    producer = FrameProducer(kafka_settings)
    start_ns = time.time_ns()
    with running_consumer(settings):
        for seq, data in enumerate(jpegs):
            frame = Frame("square", seq, start_ns + seq * FRAME_NS, 768, 576, data)
            producer.send_frame(topics.input, frame)
            producer.flush(10)
            wait_for(lambda n=seq: meta.count() > n, 30, f"frame {seq} processed", step=0.005)
    docs = metadata_docs(meta.snapshot())
    assert [d["seq"] for d in docs] == list(range(len(jpegs))), "a frame was dropped"
    boxes = [d["models"][0]["detections"] for d in docs]
    lengths = Counter(b["track"] for frame in boxes for b in frame if "track" in b)
    crossings = [Event.from_json(r.value) for r in events.snapshot()]
    crossings = [e for e in crossings if e.type == "line_cross"]
    counts = Counter(e.direction for e in crossings)
    return Run(
        with_people=sum(1 for b in boxes if b) / len(boxes),
        track_lengths=sorted(lengths.values()),
        crossings=[(e.seq, e.track, str(e.direction)) for e in crossings],
        counts={"in": counts["in"], "out": counts["out"]},
    )


def test_people_are_detected_tracked_and_counted_the_same_in_two_runs(
    video_jpegs, replica, kafka_settings, make_topic, reader, tmp_path
) -> None:
    first = one_run(1, video_jpegs, replica, kafka_settings, make_topic, reader, tmp_path)
    print(f"\nvtest.avi run 1: {first.note()}")
    # every frame of vtest.avi shows people walking in the square
    assert first.with_people >= 0.9, first.note()
    lengths = first.track_lengths
    assert statistics.median(lengths) >= 10, first.note()
    assert sum(1 for n in lengths if n < 5) / len(lengths) <= 0.25, first.note()
    assert first.counts["in"] > 0 and first.counts["out"] > 0, first.note()
    second = one_run(2, video_jpegs, replica, kafka_settings, make_topic, reader, tmp_path)
    print(f"vtest.avi run 2: {second.note()}")
    assert second.counts == first.counts
    assert second.crossings == first.crossings
