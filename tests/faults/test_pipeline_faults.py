"""Faults injected into the real pipeline, each with a measured recovery time.

The recovery times are printed (run with ``-s`` to see them) and asserted
against the targets of the reliability issue.
"""

from __future__ import annotations

import io
import json
import signal
import time
import urllib.request

import pytest

from kva.launcher.supervisor import ManagedService
from kva.ports import free_port
from tests.faults.conftest import Pipeline, consumer_spec, model_statuses
from tests.support.wait import eventually

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]


def _streams(pipeline: Pipeline) -> dict[str, dict]:
    with urllib.request.urlopen(pipeline.viewer_url + "api/streams", timeout=5) as response:  # noqa: S310
        return {s["id"]: s for s in json.loads(response.read())["streams"]}


def _viewer_sequence(pipeline: Pipeline, stream: str, above: int, timeout: float) -> int:
    """The viewer's newest sequence of ``stream`` once it is above ``above`` (-1 on timeout)."""

    def newer() -> tuple[int] | None:  # a tuple: sequence 0 is found too
        sequence = int(_streams(pipeline).get(stream, {}).get("sequence") or -1)
        return (sequence,) if sequence > above else None

    found = eventually(newer, timeout, step=0.2)
    return -1 if found is None else found[0]


def _ready(service: ManagedService) -> bool:
    try:
        return service.spec.ready()
    except OSError:
        return False


def _all_running(pipeline: Pipeline) -> list[str]:
    return [s.spec.name for s in pipeline.supervisor.services if s.exit_code() is not None]


def test_broker_killed_and_restarted_the_pipeline_resumes(pipeline: Pipeline) -> None:
    reader = pipeline.annotated("faults-broker")
    try:
        reader.first_frame(lambda _t, f: model_statuses(f) == {"ok"}, 90, "before the fault")
        before = _viewer_sequence(pipeline, "cam0", -1, 30)
        assert before >= 0, "the viewer shows no cam0 frames"
        pipeline.cluster.kill_broker(0)
        time.sleep(3)  # the outage itself: the broker stays down for 3 s
        pipeline.cluster.start_broker(0)
        pipeline.cluster.wait_ready(60)
        back_ns, back = time.time_ns(), time.monotonic()
        arrived, _frame = reader.first_frame(
            lambda _t, f: f.capture_ns > back_ns, 30, "after the broker is back"
        )
        recovery = arrived - back
        after = _viewer_sequence(pipeline, "cam0", before, 20)
    finally:
        reader.close()
    print(f"broker back -> first new annotated frame after {recovery:.2f}s")
    assert recovery <= 10.0
    assert after > before, "the viewer did not resume"
    assert _all_running(pipeline) == [], "a service died instead of riding out the outage"


def test_model_replicas_killed_frames_flow_marked_then_annotations_resume(
    pipeline: Pipeline,
) -> None:
    reader = pipeline.annotated("faults-replicas")
    serve_1, serve_2 = pipeline.service("serve-1"), pipeline.service("serve-2")
    try:
        reader.first_frame(lambda _t, f: model_statuses(f) == {"ok"}, 90, "before the fault")
        serve_1.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        killed = time.monotonic()
        arrived, _ = reader.first_frame(
            lambda t, f: t > killed and model_statuses(f) == {"ok"}, 10, "with one replica"
        )
        one_down = arrived - killed
        serve_2.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        all_killed = time.monotonic()
        arrived, _ = reader.first_frame(
            lambda t, f: t > all_killed and model_statuses(f) == {"unavailable"},
            30,
            "marked unavailable",
        )
        marked = arrived - all_killed
        serve_1.start()
        serve_2.start()
        restarted = time.monotonic()
        arrived, _ = reader.first_frame(
            lambda t, f: t > restarted and model_statuses(f) == {"ok"}, 90, "annotated again"
        )
        resumed = arrived - restarted
    finally:
        reader.close()
    print(
        f"one replica killed: annotated frame after {one_down:.2f}s; all killed: marked after "
        f"{marked:.2f}s; replicas restarted: annotated again after {resumed:.2f}s"
    )
    assert one_down <= 1.0
    assert pipeline.service("consumer").exit_code() is None


def test_consumer_of_a_group_of_two_killed_the_other_takes_over(pipeline: Pipeline) -> None:
    bootstrap = pipeline.cluster.bootstrap_server
    replicas = [arg for arg in pipeline.service("consumer").spec.argv if "mobilenet_v2=" in arg][0]
    urls = [u.removesuffix("/v2/models/mobilenet_v2") for u in replicas.split("=", 1)[1].split(",")]
    second = ManagedService(
        consumer_spec("consumer-2", urls, bootstrap, free_port()), "36", io.StringIO()
    )
    pipeline.extra.append(second)
    second.start()
    reader = pipeline.annotated("faults-group")
    try:
        eventually(lambda: _ready(second), 90, step=0.2)
        for stream in ("cam0", "cam1", "cam2", "cam3"):
            reader.first_frame(
                lambda _t, f, s=stream: f.stream_id == s, 60, f"of {stream} with two consumers"
            )
        pipeline.service("consumer").process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        killed = time.monotonic()
        gaps = {}
        for stream in ("cam0", "cam1", "cam2", "cam3"):
            arrived, _ = reader.first_frame(
                lambda t, f, s=stream: f.stream_id == s and t > killed + 0.5,
                30,
                f"of {stream} after the kill",
            )
            gaps[stream] = arrived - killed
    finally:
        reader.close()
    print(
        "consumer killed: streams resumed after "
        + ", ".join(f"{s} {g:.2f}s" for s, g in gaps.items())
    )
    assert max(gaps.values()) <= 10.0 + 2.0, "takeover slower than the session timeout (10 s) + 2 s"
    assert second.exit_code() is None
