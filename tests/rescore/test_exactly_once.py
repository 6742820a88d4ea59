"""Exactly once, on the real broker with real models: a re-scorer killed (SIGKILL) mid-range
and started again gives what an uninterrupted run gives: the same predictions, the same
events (ids included), the same annotated frames, no frame twice, none missing.

Both runs re-score the same recorded range of ``vtest.avi`` (people walking, the ``person``
detector, tracked, a counting line and a zone from a camera file) in their own groups and
into their own topics, read back ``read_committed``.
"""

from __future__ import annotations

import json
import re
import signal
from collections import Counter
from pathlib import Path

import pytest

from kva.kafka import RangeConsumer
from kva.settings import KafkaSettings
from tests.rescore.conftest import (
    Outputs,
    answers,
    kept_topic,
    model_flags,
    now_minus,
    range_flags,
    record_video,
    rescore_argv,
)
from tests.rescore.helpers import committed_records
from tests.support.process import KvaProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: A line down the middle of the square and a zone over its left half: crossings, entries, exits.
CAMERA_FILE = """
cameras:
  - id: square
    source: vtest.avi
    lines:
      - name: across
        points: [[0.5, 0.0], [0.5, 1.0]]
    zones:
      - name: left
        points: [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
"""
FRAMES = 200
#: Kill the re-scorer once it has published this many frames (of FRAMES).
KILL_AFTER = 70
_PROGRESS = re.compile(r"re-score: (\d+) of")


def _outputs(kafka_settings: KafkaSettings, prefix: str) -> Outputs:
    names = [kept_topic(kafka_settings, f"{prefix}-{part}") for part in ("ann", "pred", "ev")]
    return Outputs(*names)


def _progress(process: KvaProcess) -> int:
    found = [int(m) for m in _PROGRESS.findall(process.output())]
    return max(found, default=0)


def test_a_killed_rescorer_resumes_to_the_output_of_an_uninterrupted_run(
    replicas, video_jpegs, kafka_settings: KafkaSettings, unique_name: str, start_kva, tmp_path
) -> None:
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(CAMERA_FILE)
    frames = kept_topic(kafka_settings, f"{unique_name}-frames")
    span = record_video(kafka_settings, frames, "square", video_jpegs[:FRAMES], now_minus(120))
    common = [
        *range_flags(span),
        *model_flags(replicas, "person"),
        f"--camera-file={cameras}",
        "--commit-frames=10",
        "--status-interval=0.2",
    ]
    whole = _outputs(kafka_settings, f"{unique_name}-whole")
    run = start_kva(
        *rescore_argv(kafka_settings, frames, f"{unique_name}-whole", *common, *whole.flags())
    )
    assert run.wait(300) == 0, run.tail()
    assert f"frames processed: {FRAMES} (1 stream(s))" in run.output(), run.tail()
    summary = [line for line in run.lines if "rescore.loop:" in line and "re-score: " not in line]
    print("\n" + "\n".join(summary))

    killed = _outputs(kafka_settings, f"{unique_name}-killed")
    argv = rescore_argv(kafka_settings, frames, f"{unique_name}-killed", *common, *killed.flags())
    first = start_kva(*argv)
    first.wait_until(lambda: _progress(first) >= KILL_AFTER, 300, f"{KILL_AFTER} frames published")
    first.kill()
    partial = answers(kafka_settings, killed.predictions)
    assert 0 < len(partial) < FRAMES, "killed mid-range, with some batches committed"
    second = start_kva(*argv)
    assert second.wait(300) == 0, second.tail()
    resumed = second.output()
    assert "resumed:" in resumed and "scored again to rebuild the tracks" in resumed, resumed

    expected = answers(kafka_settings, whole.predictions)
    got = answers(kafka_settings, killed.predictions)
    assert [d["seq"] for d in expected] == list(range(FRAMES)), "every frame, in order"
    assert got == expected, "the same predictions (track ids included), none twice or missing"
    assert sum("track" in b for d in got for b in d["models"][0]["detections"]) > FRAMES

    events = [json.loads(r.value or b"") for r in committed_records(kafka_settings, whole.events)]
    again = [json.loads(r.value or b"") for r in committed_records(kafka_settings, killed.events)]
    kinds = Counter(e["type"] for e in events)
    print(f"\n{FRAMES} frames re-scored twice; events: {dict(kinds)}")
    assert kinds["zone_enter"] and kinds["line_cross"], kinds
    assert again == events, "the same events, ids and counts included"
    assert len({e["id"] for e in again}) == len(again), "no event twice"

    images = [r.value for r in committed_records(kafka_settings, whole.annotated)]
    assert [r.value for r in committed_records(kafka_settings, killed.annotated)] == images
    assert len(images) == FRAMES

    group = RangeConsumer(kafka_settings, frames, f"{unique_name}-killed")
    try:
        done = group.committed([0])
    finally:
        group.close()
    assert done[0].offset == FRAMES, done


def test_a_finished_rescore_run_again_does_nothing(
    replicas, video_jpegs, kafka_settings: KafkaSettings, unique_name: str, start_kva
) -> None:
    frames = kept_topic(kafka_settings, f"{unique_name}-frames")
    span = record_video(kafka_settings, frames, "cam", video_jpegs[:5], now_minus(60))
    outputs = _outputs(kafka_settings, unique_name)
    argv = rescore_argv(
        kafka_settings,
        frames,
        f"{unique_name}-g",
        *range_flags(span),
        *model_flags(replicas, "mobilenet_v2"),
        *outputs.flags(),
    )
    assert start_kva(*argv).wait(120) == 0
    again = start_kva(*argv)
    assert again.wait(120) == 0, again.tail()
    assert "frames processed: 0" in again.output(), again.tail()
    assert len(answers(kafka_settings, outputs.predictions)) == 5, "nothing twice"


def test_a_stopped_rescore_commits_what_it_published_and_a_rerun_finishes_it(
    replicas, video_jpegs, kafka_settings: KafkaSettings, unique_name: str, start_kva
) -> None:
    """SIGTERM: the frames published so far are committed; without tracking, the rerun goes
    on from there (nothing replayed)."""
    frames = kept_topic(kafka_settings, f"{unique_name}-frames")
    count = 120
    span = record_video(kafka_settings, frames, "cam", video_jpegs[:count], now_minus(90))
    outputs = _outputs(kafka_settings, unique_name)
    argv = rescore_argv(
        kafka_settings,
        frames,
        f"{unique_name}-g",
        *range_flags(span),
        *model_flags(replicas, "mobilenet_v2"),
        *outputs.flags(),
        "--commit-frames=5",
        "--status-interval=0.2",
    )
    first = start_kva(*argv)
    first.wait_until(lambda: _progress(first) >= 30, 300, "30 frames published")
    first.send_signal(signal.SIGTERM)
    assert first.wait(60) == 0, first.tail()
    assert "): interrupted" in first.output(), first.tail()
    published = int(re.findall(r"frames processed: (\d+)", first.output())[-1])
    assert len(answers(kafka_settings, outputs.predictions)) == published < count
    second = start_kva(*argv)
    assert second.wait(300) == 0, second.tail()
    assert f"frames processed: {count - published} " in second.output(), second.tail()
    assert "0 frame(s) scored again" in second.output(), "no tracking: nothing replayed"
    docs = answers(kafka_settings, outputs.predictions)
    assert [d["seq"] for d in docs] == list(range(count))


def test_the_camera_file_is_read(tmp_path: Path) -> None:
    """The camera file above is valid (its zones and lines load)."""
    from kva.consumer.scenes import load_scenes

    path = tmp_path / "cameras.yaml"
    path.write_text(CAMERA_FILE)
    scene = load_scenes(path)["square"]
    assert [line.name for line in scene.lines] == ["across"]
    assert [zone.name for zone in scene.zones] == ["left"]
