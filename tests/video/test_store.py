"""The frame store, the fps meter and the pacer, without HTTP or Kafka."""

from __future__ import annotations

import threading

import pytest

from kva.video.mjpeg import Pacer
from kva.video.store import PART_HEAD, FpsMeter, FrameStore, Predictions
from tests.support.frames import make_frame


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _frame(stream: str = "cam0", seq: int = 0):
    return make_frame(stream, seq, b"\xff\xd8jpeg" + bytes([seq % 256]), 4, 3)


def test_newest_frame_wins_and_versions_count() -> None:
    store = FrameStore()
    for seq in range(3):
        store.put_frame(_frame(seq=seq))
    current = store.get("cam0").current
    assert current.frame.sequence == 2
    assert current.version == 3
    assert current.part == current.frame.data + b"\r\n" + PART_HEAD


def test_wait_newer_returns_at_once_or_after_a_put() -> None:
    store = FrameStore()
    store.put_frame(_frame(seq=0))
    slot = store.get("cam0")
    assert slot.wait_newer(0, 0.0).frame.sequence == 0
    assert slot.wait_newer(1, 0.05) is None
    got = []
    waiter = threading.Thread(target=lambda: got.append(slot.wait_newer(1, 5.0)))
    waiter.start()
    store.put_frame(_frame(seq=1))
    waiter.join(5)
    assert got[0].frame.sequence == 1


def test_fps_meter() -> None:
    meter = FpsMeter(window=3.0)
    assert meter.rate(0.0) == 0.0
    for i in range(31):
        meter.tick(i / 10)
    assert meter.rate(3.0) == pytest.approx(10.0, rel=0.05)
    assert meter.rate(10.0) == 0.0  # silence: the window empties


def test_store_is_bounded_and_refuses_new_streams_while_all_are_live() -> None:
    clock = Clock()
    store = FrameStore(max_streams=2, forget_after=60, clock=clock)
    assert store.put_frame(_frame("a")) and store.put_frame(_frame("b"))
    assert store.put_frame(_frame("c")) is None
    assert store.refused == 1 and len(store) == 2


def test_a_long_silent_stream_makes_room() -> None:
    clock = Clock()
    store = FrameStore(max_streams=2, forget_after=60, clock=clock)
    store.put_frame(_frame("a"))
    clock.now += 30
    store.put_frame(_frame("b"))
    slot_a = store.get("a")
    clock.now += 40  # a: silent 70 s, b: 40 s
    assert store.put_frame(_frame("c")) is not None
    assert [s.stream_id for s in store.slots()] == ["b", "c"]
    assert store.evicted == 1 and slot_a.closed
    assert slot_a.wait_newer(0, 1.0) is None  # its clients are released


def test_older_predictions_do_not_replace_newer() -> None:
    store = FrameStore()
    assert store.put_predictions("cam0", Predictions(5, 0, {"n": 5}, "metadata"))
    assert not store.put_predictions("cam0", Predictions(4, 0, {"n": 4}, "header"))
    assert store.put_predictions("cam0", Predictions(6, 0, {"n": 6}, "header"))
    assert store.get("cam0").predictions.document == {"n": 6}


def test_pacer_limits_the_rate() -> None:
    clock = Clock(0.0)
    pacer = Pacer(10, clock)
    sends = 0
    while clock.now < 10.0:  # a source far faster than the limit
        if pacer.delay() == 0:
            pacer.sent()
            sends += 1
        clock.now += 0.001
    assert 99 <= sends <= 100 + Pacer.BURST


def test_pacer_lets_a_burst_through_after_a_gap_but_no_more() -> None:
    clock = Clock(0.0)
    pacer = Pacer(10, clock)
    pacer.sent()
    clock.now = 5.0  # nothing to send for 5 s, then frames pour in
    bursts = 0
    while pacer.delay() == 0:
        pacer.sent()
        bursts += 1
    assert bursts == Pacer.BURST
    assert pacer.delay() == pytest.approx(0.075)


def test_pacer_passes_a_catching_up_source_at_the_limit_rate() -> None:
    clock = Clock(0.0)
    pacer = Pacer(10, clock)
    sent = 0
    for k in range(50):  # two frames at once every 0.2 s: 10 fps on average
        for arrival in (k * 0.2, k * 0.2 + 0.001):
            clock.now = arrival
            if pacer.delay() == 0:
                pacer.sent(arrival)
                sent += 1
    assert sent == 100


def test_pacer_follows_arrivals_not_late_sends() -> None:
    """A thread that sends late must not shift the schedule and skip the next frame."""
    clock = Clock(0.0)
    pacer = Pacer(10, clock)
    sent = 0
    for k in range(100):  # frames arrive exactly at the limit rate...
        arrival = k * 0.1
        clock.now = arrival + (0.15 if k % 7 == 3 else 0.01)  # ...the sender is sometimes late
        if pacer.delay() == 0:
            pacer.sent(arrival)
            sent += 1
    assert sent == 100
