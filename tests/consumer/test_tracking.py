"""The tracker wrapper and the zone/line events, without a broker or a model server."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from kva.consumer.analytics import FrameInfo, SceneAnalytics
from kva.consumer.annotate import FrameAnnotator, SceneCounts
from kva.consumer.tracking import TrackerSettings, Tracking
from kva.events import Event, FrameRef
from kva.predictions import NO_TRACK, Detections, FramePredictions, ModelResult
from kva.scene import Line, Scene, Zone

Box = tuple[float, float, float, float]


def box_at(x: float, y: float, w: float = 0.1, h: float = 0.2) -> Box:
    """A box whose bottom-centre (the reference point) is at (x, y)."""
    return (x - w / 2, y - h, x + w / 2, y)


def dets(*boxes: Box, score: float = 0.9) -> Detections:
    return Detections(tuple(boxes), tuple(score for _ in boxes), label="person")


def ids(result: Detections) -> list[int]:
    return sorted(result.tracks)


# -- tracker ------------------------------------------------------------------------------------


def test_objects_get_stable_ids_and_keep_them_across_dropped_frames() -> None:
    tracking = Tracking(TrackerSettings(window_s=2.0, max_tracks=16))
    seen = []
    for i in range(6):  # two people walking right, 10 fps
        d = dets(box_at(0.2 + 0.01 * i, 0.5), box_at(0.7 - 0.01 * i, 0.8))
        seen.append(tracking.update("cam", "person", 100.0 + i / 10, d))
    confirmed = seen[-1].tracks
    assert NO_TRACK not in confirmed and len(set(confirmed)) == 2
    assert all(r.tracks == confirmed for r in seen[1:])  # the same ids from frame 2 on
    # the latest-frame policy skipped 12 frames (1.3 s): still within the window
    later = dets(box_at(0.2 + 0.01 * 18, 0.5), box_at(0.7 - 0.01 * 18, 0.8))
    result = tracking.update("cam", "person", 100.5 + 1.3, later)
    assert result.tracks == confirmed


def test_a_track_lost_longer_than_the_window_is_gone() -> None:
    tracking = Tracking(TrackerSettings(window_s=1.0, max_tracks=16))
    for i in range(4):
        first = tracking.update("cam", "person", 10 + i / 10, dets(box_at(0.5, 0.5)))
    assert first.tracks != (NO_TRACK,)
    again = tracking.update("cam", "person", 10.3 + 1.5, dets(box_at(0.5, 0.5)))
    assert again.tracks == (NO_TRACK,)  # a new, not yet confirmed, track
    again = tracking.update("cam", "person", 10.3 + 1.6, dets(box_at(0.5, 0.5)))
    assert again.tracks[0] not in first.tracks


def test_the_same_gap_in_frames_is_not_what_counts_but_in_time() -> None:
    # many frames without the object, all within the window: the track stays
    tracking = Tracking(TrackerSettings(window_s=1.0, max_tracks=16))
    for i in range(4):
        first = tracking.update("cam", "person", 10 + i / 100, dets(box_at(0.5, 0.5)))
    for i in range(50):  # 50 empty frames in 0.5 s
        tracking.update("cam", "person", 10.04 + i / 100, dets())
    assert tracking.update("cam", "person", 10.6, dets(box_at(0.5, 0.5))).tracks == first.tracks


def test_state_is_bounded_per_stream_and_forgotten_with_the_stream() -> None:
    tracking = Tracking(TrackerSettings(window_s=60.0, max_tracks=5))
    for frame in range(3):
        boxes = [box_at(0.05 + 0.09 * k, 0.3, w=0.05) for k in range(10)]
        tracking.update("a", "person", 1 + frame / 10, dets(*boxes))
    assert tracking.track_count("a") <= 5
    tracking.update("b", "person", 1.0, dets(box_at(0.5, 0.5)))
    assert tracking.streams() == 2
    tracking.forget("a")
    assert tracking.streams() == 1 and tracking.track_count("a") == 0


def test_streams_and_models_are_tracked_apart_and_older_frames_are_left_untracked() -> None:
    tracking = Tracking(TrackerSettings(), models={"person"})
    assert tracking.tracks("person") and not tracking.tracks("blazeface")
    for i in range(3):
        a = tracking.update("a", "person", 5 + i / 10, dets(box_at(0.3, 0.5)))
        b = tracking.update("b", "person", 5 + i / 10, dets(box_at(0.3, 0.5)))
    assert a.tracks == b.tracks  # ids are per stream
    older = tracking.update("a", "person", 5.05, dets(box_at(0.3, 0.5)))
    assert older.tracks == ()


def test_tracking_is_deterministic() -> None:
    def run() -> list[tuple[int, ...]]:
        tracking = Tracking(TrackerSettings())
        rng = np.random.default_rng(7)
        out = []
        for i in range(30):
            boxes = [box_at(0.1 + 0.02 * i + k * 0.2, 0.4 + 0.1 * k) for k in range(3)]
            boxes = [b for b in boxes if rng.random() > 0.2]  # missed detections
            out.append(tracking.update("s", "m", i / 10, dets(*boxes)).tracks)
        return out

    assert run() == run()


# -- predictions document ------------------------------------------------------------------------


def test_track_ids_travel_in_the_predictions_document_and_old_documents_still_parse() -> None:
    tracked = Detections(
        ((0.1, 0.1, 0.2, 0.3), (0.5, 0.5, 0.6, 0.7)), (0.9, 0.8), "person", (7, -1)
    )
    doc = FramePredictions("cam", 1, 2, 3, 640, 480, (ModelResult("p", "ok", tracked),))
    text = doc.to_json()
    items = json.loads(text)["models"][0]["detections"]
    assert items[0]["track"] == 7 and "track" not in items[1]
    back = FramePredictions.from_json(text, 65536).models[0].prediction
    assert isinstance(back, Detections) and back.tracks == (7, NO_TRACK)
    untracked = Detections(((0.1, 0.1, 0.2, 0.3),), (0.9,), "face")
    plain = FramePredictions("cam", 1, 2, 3, 640, 480, (ModelResult("f", "ok", untracked),))
    assert "track" not in plain.to_json()
    again = FramePredictions.from_json(plain.to_json(), 65536).models[0].prediction
    assert isinstance(again, Detections) and again.tracks == ()


@pytest.mark.parametrize("bad", [-2, 1.5, "7", True, 2**60])
def test_a_bad_track_id_is_refused(bad) -> None:
    from kva.predictions import PredictionsError

    item = {"box": [0.1, 0.1, 0.2, 0.2], "score": 0.9, "track": bad}
    with pytest.raises(PredictionsError, match="track id"):
        Detections.from_json({"detections": [item]})


# -- zones and lines ------------------------------------------------------------------------------

ACROSS = Line("walkway", (0.0, 0.5), (1.0, 0.5))  # "in" = downwards
ROOM = Zone("room", ((0.6, 0.6), (0.9, 0.6), (0.9, 0.9), (0.6, 0.9)), loiter_s=1.0)


def tracked(*items: tuple[int, Box]) -> list[ModelResult]:
    d = Detections(
        tuple(b for _, b in items), tuple(0.9 for _ in items), "person", tuple(t for t, _ in items)
    )
    return [ModelResult("person", "ok", d)]


def feed(
    analytics: SceneAnalytics,
    path: list[tuple[float, float]],
    track: int = 1,
    t0: float = 0.0,
    step: float = 0.1,
) -> list[Event]:
    events = []
    for i, (x, y) in enumerate(path):
        capture_ns = round((t0 + i * step) * 1e9) + 1
        info = FrameInfo("cam", i, capture_ns, FrameRef("frames", 0, 100 + i))
        events += analytics.update(info, tracked((track, box_at(x, y))))
    return events


def scene_analytics(*, window_s: float = 2.0) -> SceneAnalytics:
    return SceneAnalytics({"cam": Scene((ROOM,), (ACROSS,))}, window_s=window_s, max_tracks=64)


def test_crossing_a_line_both_ways_is_counted_per_direction() -> None:
    analytics = scene_analytics()
    events = feed(analytics, [(0.3, 0.3), (0.3, 0.45), (0.3, 0.55), (0.3, 0.7), (0.3, 0.4)])
    crossings = [e for e in events if e.type == "line_cross"]
    assert [(e.direction, dict(e.counts)) for e in crossings] == [
        ("in", {"in": 1, "out": 0}),
        ("out", {"in": 1, "out": 1}),
    ]
    first = crossings[0]
    assert (first.stream, first.seq, first.track, first.line, first.label) == (
        "cam",
        2,
        1,
        "walkway",
        "person",
    )
    assert first.frame == FrameRef("frames", 0, 102)
    assert Event.from_json(first.to_json()).id == first.id
    assert analytics.counts("cam")[0] == {"walkway": {"in": 1, "out": 1}}


def test_touching_the_line_without_crossing_counts_nothing() -> None:
    analytics = scene_analytics()
    events = feed(analytics, [(0.3, 0.3), (0.3, 0.5), (0.3, 0.5), (0.3, 0.4)])
    assert [e for e in events if e.type == "line_cross"] == []
    # ... and touching it then going on is one crossing
    events = feed(analytics, [(0.3, 0.3), (0.3, 0.5), (0.3, 0.6)], track=2, t0=1.0)
    assert [e.direction for e in events if e.type == "line_cross"] == ["in"]


def test_passing_beside_the_end_of_a_line_is_no_crossing() -> None:
    short = Line("gate", (0.4, 0.5), (0.6, 0.5))
    analytics = SceneAnalytics({"cam": Scene((), (short,))}, window_s=2, max_tracks=8)
    assert feed(analytics, [(0.2, 0.3), (0.2, 0.7)]) == []


def test_zone_enter_exit_and_loiter_once_per_stay() -> None:
    analytics = scene_analytics()
    inside = [(0.7, 0.7)] * 25  # 2.4 s inside, loiter_s is 1
    events = feed(analytics, [(0.5, 0.2), *inside, (0.5, 0.2), (0.7, 0.7)], step=0.1)
    kinds = [e.type for e in events if e.zone]
    assert kinds == ["zone_enter", "loiter", "zone_exit", "zone_enter"]
    enter, loiter, leave, back = (e for e in events if e.zone)
    assert dict(enter.counts) == {"inside": 1, "entered": 1}
    assert loiter.dwell_s == pytest.approx(1.1, abs=0.01)
    assert leave.dwell_s == pytest.approx(2.5, abs=0.01) and dict(leave.counts) == {
        "inside": 0,
        "entered": 1,
    }
    assert dict(back.counts) == {"inside": 1, "entered": 2}


def test_a_track_lost_inside_a_zone_exits_it_after_the_window() -> None:
    analytics = scene_analytics(window_s=1.0)
    feed(analytics, [(0.7, 0.7)] * 3)
    # other tracks go on; track 1 is not seen again
    events = feed(analytics, [(0.1, 0.1)] * 15, track=2, t0=0.3)
    exits = [e for e in events if e.type == "zone_exit"]
    assert [(e.track, dict(e.counts)) for e in exits] == [(1, {"inside": 0, "entered": 1})]


def test_streams_without_a_scene_raise_nothing_and_a_new_scene_starts_afresh() -> None:
    analytics = scene_analytics()
    info = FrameInfo("other", 0, 1)
    assert analytics.update(info, tracked((1, box_at(0.3, 0.3)))) == []
    feed(analytics, [(0.3, 0.3), (0.3, 0.7)])
    assert analytics.counts("cam")[0]["walkway"]["in"] == 1
    analytics.set_scenes({"cam": Scene((), (Line("other", (0.5, 0.0), (0.5, 1.0)),))})
    assert analytics.counts("cam") == ({}, {})
    analytics.forget("cam")


def test_the_annotated_frame_shows_zones_lines_counts_and_track_ids() -> None:
    image = np.full((360, 640, 3), 60, np.uint8)
    results = tracked((42, box_at(0.3, 0.8)))
    counts = SceneCounts({"walkway": {"in": 3, "out": 1}}, {"room": (1, 4)})
    before = image.copy()
    FrameAnnotator().annotate(image, results, "cam #1", Scene((ROOM,), (ACROSS,)), counts)
    # the line's colour across the middle row, the zone's outline on its left edge
    assert (np.abs(image[180, 20:620].astype(int) - (255, 0, 255)).sum(axis=1) < 60).mean() > 0.5
    x = round(0.6 * 639)
    assert (np.abs(image[240:320, x].astype(int) - (0, 215, 255)).sum(axis=1) < 60).mean() > 0.5
    assert not np.array_equal(before, image)
    ok, _ = cv2.imencode(".jpg", image)
    assert ok


def test_tracking_settings() -> None:
    from pydantic import ValidationError

    from kva.consumer.config import ConsumerSettings

    url = "http://127.0.0.1:8501/v1/models/"
    settings = ConsumerSettings(consume_models=[f"face={url}face"], consume_track_models=["face"])
    assert settings.consume_track and settings.consume_track_window == 3.0
    assert settings.consume_events_topic == "events"
    with pytest.raises(ValidationError, match="--track-model names model 'nope'"):
        ConsumerSettings(consume_models=[f"face={url}face"], consume_track_models=["nope"])


def test_a_streams_frames_are_tracked_oldest_first_whatever_order_the_models_answer() -> None:
    import threading

    from kva.consumer.ordering import StreamOrder
    from kva.consumer.work import FrameWork
    from kva.frame import Frame

    order = StreamOrder(reorder_wait=10.0)
    work = FrameWork(
        [],
        jpeg_quality=80,
        request_quality=80,
        tracking=Tracking(TrackerSettings()),
        track_order=order,
    )
    older, newer = (Frame("cam", seq, 10**9 * (seq + 1), 64, 64, b"") for seq in (1, 2))
    for frame in (older, newer):
        order.register(frame)  # both at the models
    box = box_at(0.5, 0.5)
    results: dict[int, list[ModelResult]] = {}
    done = threading.Event()

    def track_newer() -> None:
        results[2] = work.track_in_order(newer, [ModelResult("p", "ok", dets(box))], None)[0]
        done.set()

    thread = threading.Thread(target=track_newer)
    thread.start()  # the newer frame's answer came first: it waits for the older one
    assert not done.wait(0.3)
    results[1] = work.track_in_order(older, [ModelResult("p", "ok", dets(box))], None)[0]
    assert done.wait(10)
    thread.join()
    first, second = (results[i][0].prediction for i in (1, 2))
    assert isinstance(first, Detections) and first.tracks == (NO_TRACK,)  # seen once
    assert isinstance(second, Detections) and second.tracks[0] >= 0  # confirmed: seen twice


def test_events_are_counted_in_metrics_and_forgotten_with_the_stream() -> None:
    from kva.consumer.metrics import ConsumerMetrics

    metrics = ConsumerMetrics()
    analytics = scene_analytics()
    events = feed(analytics, [(0.7, 0.3), (0.7, 0.7), (0.7, 0.3)])  # down into the room, up
    for event in events:
        metrics.count_event(event)
    sample = metrics.registry.get_sample_value
    line = {"stream": "cam", "line": "walkway"}
    assert sample("kva_consume_line_crossings_total", {**line, "direction": "in"}) == 1
    assert sample("kva_consume_line_crossings_total", {**line, "direction": "out"}) == 1
    assert sample("kva_consume_zone_entries_total", {"stream": "cam", "zone": "room"}) == 1
    assert sample("kva_consume_zone_occupancy", {"stream": "cam", "zone": "room"}) == 0
    assert sample("kva_consume_events_total", {"stream": "cam", "type": "zone_exit"}) == 1
    metrics.forget("cam")
    assert sample("kva_consume_line_crossings_total", {**line, "direction": "in"}) is None
    assert sample("kva_consume_zone_occupancy", {"stream": "cam", "zone": "room"}) is None
