"""The pipeline's parts without a broker: admission, publication order, frame work."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client import generate_latest

from kva.consumer.metrics import DROP_REASONS, ConsumerMetrics
from kva.consumer.model_input import InputFormat
from kva.consumer.ordering import StreamOrder
from kva.consumer.roster import PROBATION_FRAMES, PROBATION_SECONDS, StreamRoster
from kva.consumer.scheduling import Scheduler
from kva.consumer.work import Annotated, Dropped, FrameWork, build_output, judge
from kva.frame import Frame
from kva.predictions import Classification, ModelResult
from tests.support.frames import jpeg

README = Path(__file__).resolve().parents[2] / "README.md"


def _frame(stream: str, seq: int, data: bytes = b"", age: float = 0.0) -> Frame:
    return Frame(stream, seq, time.time_ns() - int(age * 1e9), 64, 48, data)


def _scheduler(capacity: int = 1, **kwargs) -> Scheduler:
    return Scheduler(capacity=lambda: capacity, max_frame_age=1.0, prefetch=0, **kwargs)


def test_a_newer_frame_replaces_the_waiting_one() -> None:
    scheduler = _scheduler()
    first, second = _frame("a", 1), _frame("a", 2)
    assert scheduler.admit(first) is None
    assert scheduler.admit(second) is first
    assert scheduler.pending() == 1
    assert scheduler.next_frame() is second


def test_frames_go_round_robin_within_capacity() -> None:
    inflight: list[int] = []
    scheduler = _scheduler(capacity=2, on_inflight=inflight.append)
    for stream in ("a", "b", "c"):
        scheduler.admit(_frame(stream, 1))
    taken = [scheduler.next_frame(), scheduler.next_frame()]
    assert [f.stream_id for f in taken if f] == ["a", "b"]
    assert scheduler.next_frame() is None  # both slots taken
    scheduler.models_done()
    frame = scheduler.next_frame()
    assert frame is not None and frame.stream_id == "c"
    assert inflight == [1, 2, 1, 2]


def test_frames_past_the_models_are_bounded_too() -> None:
    scheduler = _scheduler(capacity=1)
    for seq in range(2):
        scheduler.admit(_frame("a", seq))
        assert scheduler.next_frame() is not None
        scheduler.models_done()  # annotating or publishing: still busy
    scheduler.admit(_frame("a", 2))
    assert scheduler.next_frame() is None  # 2 x capacity busy
    scheduler.finished()
    assert scheduler.next_frame() is not None


def test_old_frames_are_stale() -> None:
    scheduler = _scheduler()
    assert scheduler.stale(_frame("a", 1, age=1.5))
    assert not scheduler.stale(_frame("a", 1))


def test_close_forgets_waiting_frames() -> None:
    scheduler = _scheduler()
    scheduler.admit(_frame("a", 1))
    scheduler.close(timeout=0)
    assert scheduler.pending() == 0 and scheduler.next_frame() is None


def test_a_newer_frame_waits_for_an_older_one_in_work() -> None:
    order = StreamOrder(reorder_wait=5.0)
    older, newer = _frame("a", 1), _frame("a", 2)
    order.register(older)
    order.register(newer)
    sent: list[int] = []
    waiting = threading.Thread(target=order.publish, args=(newer, lambda: sent.append(2)))
    waiting.start()
    assert order.publish(older, lambda: sent.append(1) or "sent") == "sent"
    order.resolve(older)
    waiting.join(5)
    assert sent == [1, 2]


def test_a_frame_ready_after_a_newer_one_is_stale() -> None:
    order = StreamOrder(reorder_wait=0.0)
    older, newer = _frame("a", 1), _frame("a", 2)
    assert order.publish(newer, lambda: "sent") == "sent"
    assert order.publish(older, lambda: pytest.fail("sent")) is None
    # another stream, or a restarted producer (sequence reset, newer capture), is not stale
    assert order.publish(_frame("b", 1), lambda: "sent") == "sent"
    assert order.publish(_frame("a", 0), lambda: "sent") == "sent"


def test_a_failed_send_does_not_count_as_published() -> None:
    order = StreamOrder(reorder_wait=0.0)
    frame = _frame("a", 1)

    def fail() -> None:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        order.publish(frame, fail)
    assert order.publish(frame, lambda: "sent") == "sent"


@pytest.mark.parametrize(
    ("statuses", "reason"),
    [
        (["ok", "busy"], "overload"),
        (["error", "error"], "model_error"),
        (["error", "unavailable"], "model_error"),
        (["error", "ok"], None),
        (["unavailable"], None),
        ([], None),
    ],
)
def test_results_that_drop_a_frame(statuses, reason) -> None:
    results = [
        ModelResult(f"m{i}", s, error="e" if s == "error" else None) for i, s in enumerate(statuses)
    ]  # type: ignore[arg-type]
    dropped = judge(_frame("a", 1), results)
    assert (dropped.reason if dropped else None) == reason


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xd8\xff\xe0 not a jpeg", "decode_error"),
        (jpeg(64, 48)[:40], "decode_error"),
    ],
)
def test_undecodable_frames_are_decode_errors(data, message) -> None:
    work = FrameWork([], jpeg_quality=80, request_quality=80)
    try:
        outcome = work.run(_frame("a", 1, data), release=lambda: None)
    finally:
        work.close()
    assert isinstance(outcome, Dropped) and outcome.reason == message


def test_an_annotated_frame_and_its_output() -> None:
    released: list[bool] = []
    work = FrameWork([], jpeg_quality=80, request_quality=80, fps_out=lambda _s: 12.5)
    try:
        outcome = work.run(_frame("a", 7, jpeg(64, 48)), release=lambda: released.append(True))
    finally:
        work.close()
    assert isinstance(outcome, Annotated) and released == [True]
    assert outcome.frame.data.startswith(b"\xff\xd8") and outcome.frame.width == 64
    result = ModelResult("m", "ok", Classification((1,), ("cat",), (0.5,)))
    out, text = build_output(outcome.frame, outcome.frame, [result], 10**18, passthrough=False)
    assert out.attributes["kva-predictions"] == text and '"label":"cat"' in text
    assert out.attributes["kva-consumed-ns"] == str(10**18)
    plain, empty = build_output(outcome.frame, outcome.frame, [], 1, passthrough=True)
    assert empty == "" and "kva-predictions" not in plain.attributes


def test_a_frame_that_does_not_encode_is_an_encode_error(monkeypatch) -> None:
    import kva.consumer.work as work_module

    frame = _frame("a", 1, jpeg(64, 48))
    monkeypatch.setattr(work_module.cv2, "imencode", lambda *_a: (False, np.empty(0)))
    work = FrameWork([], jpeg_quality=80, request_quality=80)
    try:
        outcome = work.run(frame, release=lambda: None)
    finally:
        work.close()
    assert isinstance(outcome, Dropped) and outcome.reason == "encode_error"


def test_every_drop_reason_is_documented() -> None:
    consumer_section = README.read_text().split("## Consumer (`kva consume`)")[1].split("\n## ")[0]
    assert [r for r in DROP_REASONS if f"`{r}`" not in consumer_section] == []


def test_a_model_input_that_does_not_encode_is_an_encode_error(monkeypatch) -> None:
    import kva.consumer.work as work_module

    model = SimpleNamespace(
        input=InputFormat(tensor=False, width=32, height=32),
        run=lambda _p: pytest.fail("model called"),
    )
    frame = _frame("a", 1, jpeg(64, 48))
    monkeypatch.setattr(work_module.cv2, "imencode", lambda *_a: (False, np.empty(0)))
    work = FrameWork([model], jpeg_quality=80, request_quality=80)  # type: ignore[list-item]
    try:
        outcome = work.run(frame, release=lambda: None)
    finally:
        work.close()
    assert isinstance(outcome, Dropped) and outcome.reason == "encode_error"
    assert "model input" in outcome.detail


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_streams_are_bounded_and_a_quiet_stream_is_forgotten() -> None:
    clock, forgotten = _Clock(), []
    roster = StreamRoster(2, forget_after=60, on_forget=forgotten.append, clock=clock)
    for _ in range(PROBATION_FRAMES):
        assert roster.admit("a") and roster.admit("b")
    assert not roster.admit("c")  # both live: a newcomer takes no one's place
    clock.now += 30
    assert roster.admit("a")
    assert roster.expire() == [] and forgotten == []
    clock.now += 31  # b silent 61 s, a 31 s
    assert roster.expire() == ["b"] and forgotten == ["b"]
    assert roster.admit("c") and "c" in roster and "b" not in roster


def test_a_flood_of_new_ids_cannot_displace_a_live_camera() -> None:
    clock, forgotten = _Clock(), []
    roster = StreamRoster(3, forget_after=60, on_forget=forgotten.append, clock=clock)
    for _ in range(PROBATION_FRAMES):
        assert roster.admit("cam")
    clock.now += 0.1
    flood = [roster.admit(f"flood{i}") for i in range(1000)]
    assert flood[:2] == [True, True] and not any(flood[2:])  # refused while the flood is fresh
    clock.now += PROBATION_SECONDS  # the camera keeps sending; the flood ids went quiet
    assert roster.admit("cam")
    assert roster.admit("newcam")  # takes a quiet flood id's place, not the camera's
    assert forgotten == ["flood0"]
    assert "cam" in roster and len(roster) == 3


def test_known_series_start_at_zero_and_a_forgotten_stream_leaves_none() -> None:
    metrics = ConsumerMetrics()
    get = metrics.registry.get_sample_value
    dropped = "kva_consume_frames_dropped_total"
    assert all(get(dropped, {"stream": "_unknown", "reason": r}) == 0.0 for r in DROP_REASONS)
    metrics.frames_in.labels("cam9").inc()
    metrics.dropped.labels("cam9", "stale").inc()
    metrics.fps.labels("cam9", "in").set(3)
    metrics.frame_age.labels("cam9").observe(0.1)
    metrics.forget("cam9")
    text = generate_latest(metrics.registry).decode()
    assert 'stream="cam9"' not in text
