"""A re-score beside the live pipeline, on the real broker with real models: the live consumer
keeps consuming (its group's lag stays as small as before), its offsets and outputs are its
own, and the re-score processes every frame of its range with a second model; then
``kva compare`` shows the two runs agree on the model they share.

The range is a recording of ``vtest.avi`` captured two minutes ago; while it is
re-scored, a camera keeps sending frames captured now (outside the range) to the same
topic, which the live consumer (mobilenet_v2) processes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from kva.consumer.rescore.plan import parse_metadata
from kva.kafka import RangeConsumer
from kva.kafka.peek import retained
from kva.settings import KafkaSettings
from tests.consumer.conftest import consumer_settings, running_consumer
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
from tests.support.kafka import Feeder, Topics
from tests.support.process import run_kva
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDED = 30
#: The live camera's rate; the live group commits every 5 s (auto commit), so its lag as the
#: broker sees it is up to 5 s of frames even when the consumer keeps up.
LIVE_FPS = 2.0
LAG_BOUND = 20


class LagProbe:
    """The committed lag of a group on a one-partition topic, sampled in the background."""

    def __init__(self, settings: KafkaSettings, topic: str, group: str) -> None:
        self.settings, self.topic = settings, topic
        self.group = RangeConsumer(settings, topic, group)
        self.samples: list[int] = []
        self.offsets: list[int] = []
        self.metadata: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def lag(self) -> int:
        high = retained(self.settings, self.topic)[0].high
        committed = self.group.committed([0]).get(0)
        offset = committed.offset if committed else 0
        self.offsets.append(offset)
        if committed is not None:
            self.metadata.add(committed.metadata)
        return high - offset

    def _loop(self) -> None:
        while not self._stop.wait(0.25):  # a measurement every 0.25 s, not a synchronisation
            self.samples.append(self.lag())

    @contextmanager
    def sampling(self) -> Iterator[LagProbe]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(10)

    def close(self) -> None:
        self.group.close()


def test_a_rescore_beside_the_live_pipeline_leaves_it_alone_and_agrees_with_it(
    replicas, video_jpegs, kafka_settings: KafkaSettings, unique_name: str, start_kva
) -> None:
    frames = kept_topic(kafka_settings, f"{unique_name}-frames")
    live = Topics(
        frames,
        kept_topic(kafka_settings, f"{unique_name}-live-ann"),
        kept_topic(kafka_settings, f"{unique_name}-live-pred"),
    )
    live_group = f"{unique_name}-live"
    settings = consumer_settings(
        kafka_settings,
        live,
        live_group,
        consume_models=model_flags(replicas, "mobilenet_v2")[0].removeprefix("--model=").split(),
        consume_events_topic="",
        consume_max_frame_age=3600.0,  # the recording's capture times are two minutes old
    )
    rescore = Outputs(
        *(kept_topic(kafka_settings, f"{unique_name}-re-{p}") for p in ("ann", "pred", "ev"))
    )
    probe = LagProbe(kafka_settings, frames, live_group)
    camera = Feeder(kafka_settings, frames, LIVE_FPS, streams=("cam-live",))
    try:
        with running_consumer(settings):
            span = record_video(
                kafka_settings, frames, "rec", video_jpegs[:RECORDED], now_minus(120)
            )
            camera.start()
            wait_for(lambda: probe.lag() <= LAG_BOUND, 60, "the live consumer to catch up")
            before = [r.value for r in committed_records(kafka_settings, live.metadata)]
            with probe.sampling():
                job = start_kva(
                    *rescore_argv(
                        kafka_settings,
                        frames,
                        f"{unique_name}-rescore",
                        *range_flags(span),
                        *model_flags(replicas, "mobilenet_v2", "person"),
                        *rescore.flags(),
                    )
                )
                assert job.wait(300) == 0, job.tail()
            camera.stop()
            after = [r.value for r in committed_records(kafka_settings, live.metadata)]
    finally:
        camera.stop()
        probe.close()
    print(f"\nlive group's lag while re-scoring: max {max(probe.samples)}, {probe.samples}")
    assert f"frames processed: {RECORDED} (1 stream(s))" in job.output(), job.tail()
    # the live pipeline: kept consuming, its offsets only its own, its outputs only its own
    assert probe.samples and max(probe.samples) <= LAG_BOUND, probe.samples
    assert probe.offsets == sorted(probe.offsets), "the live group's offsets never went back"
    assert not any(parse_metadata(m) for m in probe.metadata), "no re-score commit in it"
    assert after[: len(before)] == before, "what the live run had published is untouched"
    live_docs = [json.loads(v or b"") for v in after]
    assert {tuple(m["model"] for m in d["models"]) for d in live_docs} == {("mobilenet_v2",)}
    assert any(d["stream"] == "cam-live" for d in live_docs[len(before) :]), "it kept working"
    # the re-score: every frame of its range, once, with both models, nothing of the live camera
    docs = answers(kafka_settings, rescore.predictions)
    assert [(d["stream"], d["seq"]) for d in docs] == [("rec", s) for s in range(RECORDED)]
    assert all([m["status"] for m in d["models"]] == ["ok", "ok"] for d in docs)
    assert len(committed_records(kafka_settings, rescore.annotated)) == RECORDED

    table = run_kva(
        "compare",
        f"--bootstrap-server={kafka_settings.bootstrap_server}",
        f"--a={live.metadata}",
        f"--b={rescore.predictions}",
        "--stream=rec",
        timeout=120,
    )
    assert table.returncode == 0, table.stderr
    print(table.stdout)
    shared = sum(d["stream"] == "rec" for d in live_docs)
    assert f"frames in both: {shared}, only in A: 0, only in B: {RECORDED - shared}" in table.stdout
    row = next(line for line in table.stdout.splitlines() if line.startswith("mobilenet_v2 "))
    assert row.split()[1:4] == ["classifier", str(shared), "100.0%"], row
    assert "person" in table.stdout and "(only in B)" in table.stdout
