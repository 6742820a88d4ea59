"""A re-score whose model server fails, on the real broker with a real ``kva serve``: frames
wait for the replica to come back instead of being dropped (back-pressure), and a replica
gone for longer than ``--model-wait`` stops the run with exactly what was committed."""

from __future__ import annotations

import re
from collections.abc import Iterator
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
from tests.support.process import KvaProcess, starts_processes
from tests.support.serve import ServeProcess, serve_built_models

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FRAMES = 150
_PROGRESS = re.compile(r"re-score: (\d+) of")


@pytest.fixture
@starts_processes
def replica(built_models: Path, tmp_path: Path) -> Iterator[ServeProcess]:
    """One ``kva serve`` of its own: the test kills it."""
    (started,) = serve_built_models(built_models, tmp_path, count=1)
    yield started
    started.close()


def _progress(process: KvaProcess) -> int:
    return max((int(n) for n in _PROGRESS.findall(process.output())), default=0)


def _start(kafka_settings, start_kva, replica, video_jpegs, name: str, *flags: str):
    frames = kept_topic(kafka_settings, f"{name}-frames")
    span = record_video(kafka_settings, frames, "cam", video_jpegs[:FRAMES], now_minus(60))
    outputs = Outputs(*(kept_topic(kafka_settings, f"{name}-{p}") for p in ("ann", "pred", "ev")))
    process = start_kva(
        *rescore_argv(
            kafka_settings,
            frames,
            f"{name}-g",
            *range_flags(span),
            *model_flags([replica], "mobilenet_v2"),
            *outputs.flags(),
            "--eject-after=1",
            "--probe-interval=0.2",
            "--read-timeout=1",
            "--commit-frames=5",
            "--status-interval=0.1",
            *flags,
        )
    )
    process.wait_until(lambda: _progress(process) >= 10, 300, "10 frames published")
    return process, frames, outputs


def test_frames_wait_for_a_replica_that_comes_back(
    replica, video_jpegs, kafka_settings: KafkaSettings, unique_name: str, start_kva
) -> None:
    process, _frames, outputs = _start(kafka_settings, start_kva, replica, video_jpegs, unique_name)
    replica.kill()
    process.wait_line("ejected", 60)
    replica.start()
    assert process.wait(300) == 0, process.tail()
    assert "is back in rotation" in process.output()
    assert f"frames processed: {FRAMES} " in process.output(), process.tail()
    docs = answers(kafka_settings, outputs.predictions)
    assert [d["seq"] for d in docs] == list(range(FRAMES)), "none dropped, none twice"
    assert all(d["models"][0]["status"] == "ok" for d in docs)


def test_a_replica_gone_too_long_stops_the_run_with_what_was_committed(
    replica, video_jpegs, kafka_settings: KafkaSettings, unique_name: str, start_kva
) -> None:
    process, frames, outputs = _start(
        kafka_settings, start_kva, replica, video_jpegs, unique_name, "--model-wait=2"
    )
    replica.kill()
    assert process.wait(120) == 1, process.tail()
    out = process.output()
    assert "re-score failed:" in out and "no answer from every model within 2s" in out, out
    docs = answers(kafka_settings, outputs.predictions)
    assert 10 <= len(docs) < FRAMES
    assert [d["seq"] for d in docs] == list(range(len(docs))), "a prefix, nothing after a gap"
    group = RangeConsumer(kafka_settings, frames, f"{unique_name}-g")
    try:
        committed = group.committed([0])[0].offset
    finally:
        group.close()
    assert committed == len(docs), "the offsets are exactly those of the committed outputs"
