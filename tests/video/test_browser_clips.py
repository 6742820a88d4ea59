"""The Done-means browser test of event clips: headless Chromium opens the viewer, clicks an
event's ▶ clip in the feed, and the clip panel plays that clip straight from a real Kafka topic
at its original timing, the scrubber on each frame's capture time; the timeline marks the
events and plays from where it is clicked; an expired clip says from when the stream can be
replayed. With ``KVA_SAVE_SCREENSHOT=1`` the playing clip is saved to docs/viewer-clip.png.
The time from the click to the first frame shown is printed (``-s`` shows it)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from kva.events import Event, FrameRef
from kva.frame import Frame
from kva.kafka import FrameProducer, TopicSpec, ensure_topics
from kva.video.app import create_app
from kva.video.event_reader import EventReader
from kva.video.state import viewer_state
from testbed.browser import DevToolsPage, click_across, find_photo, have_chromium
from tests.support.wait import wait_for
from tests.video.events import HOSTILE_LABEL
from tests.video.frames import annotate, encode_jpeg, live_photo, photo

ROOT = Path(__file__).resolve().parents[2]
HOUR_MS = 3_600_000
FPS = 10
#: The recording: 12 s of 'walkway' at 10 fps, from 40 s ago (whole seconds).
T0_MS = (int(time.time()) - 40) * 1000
FRAMES = 120
EVENT_AT_MS = T0_MS + 6000
BOX_BGR = (60, 200, 255)  # the marker annotate() draws, moving with the sequence

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not have_chromium(), reason="chromium is not installed (apt-get install chromium)"
    ),
]


def _recorded_frame(seq: int) -> Frame:
    image = annotate(photo("astronaut", 640, 360), "recorded", seq)
    at_ns = (T0_MS + seq * 1000 // FPS) * 1_000_000
    return Frame("walkway", seq, at_ns, 640, 360, encode_jpeg(image))


def _event(at_ms: int, track: int, label: str = "person") -> Event:
    return Event(
        type="line_cross",
        stream="walkway",
        seq=max(0, (at_ms - T0_MS) // 100),
        capture_ns=at_ms * 1_000_000,
        track=track,
        label=label,
        box=(0.4, 0.3, 0.5, 0.8),
        line="crossing",
        direction="in",
        counts={"in": track, "out": 0},
        frame=FrameRef("frames", 0, track),
    )


def _topic(settings, name: str) -> str:
    config = {"retention.ms": str(HOUR_MS), "segment.ms": str(HOUR_MS)}
    ensure_topics(settings, [TopicSpec(name, partitions=1, config=config)])
    return name


@pytest.fixture
def recorded_viewer(kafka_settings, unique_name, make_settings, serve, feed):
    """A viewer whose annotated topic holds the recording and whose events topic holds three
    events of it: one at T0 + 6 s, one with a hostile label at T0 + 9 s, and one from long
    before the recording (its clip has expired)."""
    # Recorded 40 s before *this test*, not before the module was imported: in a whole-suite
    # run collection is minutes earlier, and the timeline (oldest kept .. now) then squeezed
    # the two events into a few pixels, so "halfway between them" landed on a mark.
    global T0_MS, EVENT_AT_MS  # noqa: PLW0603 - the module's helpers read the recording's times
    T0_MS = (int(time.time()) - 40) * 1000
    EVENT_AT_MS = T0_MS + 6000
    annotated = _topic(kafka_settings, f"{unique_name}-annotated")
    events = _topic(kafka_settings, f"{unique_name}-events")
    producer = FrameProducer(kafka_settings)
    for seq in range(FRAMES):
        producer.send_frame(annotated, _recorded_frame(seq))
    for event in (
        _event(T0_MS - 600_000, 1),
        _event(EVENT_AT_MS, 2),
        _event(T0_MS + 9000, 3, HOSTILE_LABEL),
    ):
        producer.send(
            events, b"walkway", event.to_json().encode(), timestamp_ms=event.capture_ns // 1_000_000
        )
    assert producer.flush(30) == 0
    settings = make_settings(
        bootstrap_server=kafka_settings.bootstrap_server,
        video_topic=annotated,
        video_events_topic=events,
        video_frames_topic="",
        video_clip_before=2,
        video_clip_after=2,
    )
    app = create_app(settings)
    state = viewer_state(app)
    feed(state.store.put_frame, live_photo("coffee", "walkway", 640, 360), fps=5)
    reader = EventReader(settings, state.events, state.metrics).start()
    state.retention.start()
    try:
        wait_for(lambda: len(state.events.newest(10, "walkway")) == 3, 30, "the three events")
        wait_for(lambda: state.retention.retention(annotated), 30, "the first look at Kafka")
        yield serve(app)
    finally:
        reader.stop()
        state.retention.stop()


#: The clip panel as the page shows it.
CLIP_JS = """(() => ({
  ...window.kvaClip,
  hidden: document.getElementById('clip').hidden,
  title: document.getElementById('clip-title').textContent,
  time: document.getElementById('clip-time').textContent,
  status: document.getElementById('clip-status').textContent,
  scrub: Number(document.getElementById('clip-scrub').value),
  download: document.getElementById('clip-download').getAttribute('href'),
}))()"""
CLICK_CLIP_JS = """(() => {
  const rows = document.querySelectorAll('.card[data-stream="walkway"] .feed .event');
  const row = Array.from(rows).find((r) => r.querySelector('.what').textContent === %r);
  row.querySelector('.clip-link').click();
  return true;
})()"""
TIMELINE = '.card[data-stream="walkway"] .tl-bar'
MARKS_JS = """Array.from(document.querySelectorAll('.card[data-stream="walkway"] .tl-mark'))
  .map((m) => parseFloat(m.style.left))"""


def _wait_for_clip_links(page: DevToolsPage) -> None:
    links = "document.querySelectorAll('.card[data-stream=\"walkway\"] .feed .clip-link').length"
    wait_for(lambda: page.evaluate(links) == 3, 30, "the feed's three clip links")


def _clock(ns: int) -> str:
    """The page's clock text of a capture time (local time, to the millisecond)."""
    seconds = ns / 1e9
    return (
        time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{int(ns // 1_000_000 % 1000):03d}"
    )


def _captures() -> dict[int, int]:
    return {(T0_MS + s * 100) * 1_000_000: s for s in range(FRAMES)}


def test_an_events_clip_plays_in_the_page_from_kafka(recorded_viewer, tmp_path) -> None:
    server = recorded_viewer
    captures = _captures()
    with DevToolsPage(f"{server.url}/", width=1280, height=900) as page:
        clip = lambda: page.evaluate(CLIP_JS)  # noqa: E731 - read often below
        _wait_for_clip_links(page)
        label = page.evaluate(
            "document.querySelector('.card[data-stream=\"walkway\"] .tl-label').textContent"
        )
        assert label.startswith("replayable: last ")
        page.evaluate(CLICK_CLIP_JS % "#2 person crossed crossing (in)")
        playing = wait_for(lambda: (c := clip())["frames"] >= 12 and c, 30, "the clip playing")
        assert playing["hidden"] is False and playing["error"] is None
        assert playing["title"] == "walkway · #2 person crossed crossing (in)"
        current = playing["current_ns"]
        assert current in captures, "the scrubber is not on a recorded frame's capture time"
        assert EVENT_AT_MS - 2000 <= current // 1_000_000 < EVENT_AT_MS + 2000
        assert playing["time"].startswith(_clock(current))
        assert playing["scrub"] == current // 1_000_000
        # the panel's timeline: the stream's two replayable events, the clip's window shaded
        assert page.evaluate("document.querySelectorAll('#clip-timeline .tl-mark').length") == 2
        shade = page.evaluate(
            "(() => { const w = document.querySelector('#clip-timeline .tl-window');"
            " return w && [parseFloat(w.style.left), parseFloat(w.style.width)]; })()"
        )
        assert shade is not None and 0 < shade[0] < 100 and 0 < shade[1] < 100
        shot = tmp_path / "viewer-clip.png"
        image = page.screenshot(shot)
        first_ms = wait_for(lambda: clip()["first_frame_ms"], 10, "the first frame's time")
        print(
            f"\nclip: first frame {first_ms:.0f} ms after the click (load {os.getloadavg()[0]:.2f})"
        )
        ended = wait_for(lambda: (c := clip())["state"] == "ended" and c, 30, "the clip's end")
        assert ended["frames"] == 40  # 2 s before and after at 10 fps: every frame of the range
        assert ended["status"] == "40 frames · drag the scrubber to look back, or replay"
        assert ended["download"] == (
            f"clips/walkway.avi?from_ms={EVENT_AT_MS - 2000}&to_ms={EVENT_AT_MS + 2000}"
            "&source=annotated"
        )
        # dragging back shows a frame already received, without asking the server again
        page.evaluate(
            f"(() => {{ const s = document.getElementById('clip-scrub'); s.value = '{EVENT_AT_MS - 1000}';"
            " s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); })()"
        )
        back = clip()
        assert back["current_ns"] == (EVENT_AT_MS - 1000) * 1_000_000 and back["state"] == "ended"
    # the screenshot shows the recorded frames (the astronaut), not the live stream (coffee)
    score, (x, y, w, h) = find_photo(image, photo("astronaut", 1280, 720))  # shown > 640 wide
    assert score > 0.6, f"the clip's frame is not on the page (best match {score:.2f})"
    assert w > 500, f"the clip is shown too small ({w}x{h})"
    marker = cv2.inRange(image[y : y + h, x : x + w], (40, 180, 235), (80, 220, 255))
    assert cv2.countNonZero(marker) > 50, "the recorded frame's moving marker is not shown"
    if os.environ.get("KVA_SAVE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "viewer-clip.png")


def test_the_timeline_marks_events_and_plays_from_a_click(recorded_viewer) -> None:
    server = recorded_viewer
    captures = _captures()
    with DevToolsPage(f"{server.url}/", width=1280, height=900) as page:
        clip: Callable[[], dict] = lambda: page.evaluate(CLIP_JS)  # noqa: E731
        marks = wait_for(lambda: page.evaluate(MARKS_JS), 30, "the timeline's marks")
        assert len(marks) == 2, marks  # the expired event is before the replayable range
        # the hostile label's event, clicked on its mark: its clip, the label as text
        page.evaluate(click_across(TIMELINE, max(marks) / 100))
        marked = wait_for(lambda: (c := clip())["frames"] >= 3 and c, 30, "the marked event's clip")
        assert marked["title"] == f"walkway · #3 {HOSTILE_LABEL} crossed crossing (in)"
        assert page.evaluate("document.querySelectorAll('#clip img').length") == 1
        assert page.evaluate("document.title") == "kva · live streams"  # no handler ran
        page.evaluate("document.getElementById('clip-close').click()")
        assert clip()["hidden"] is True
        # a point that is not an event: a clip starting there
        point = (min(marks) + max(marks)) / 200  # halfway between the two events
        page.evaluate(click_across(TIMELINE, point))
        started = wait_for(lambda: (c := clip())["frames"] >= 1 and c, 30, "a clip from the click")
        assert started["title"].startswith("walkway · from ")
        first = min(captures, key=lambda ns: abs(ns - started["current_ns"]))
        assert first == started["current_ns"]
        assert EVENT_AT_MS < first // 1_000_000 < T0_MS + 9000


def test_an_expired_clip_says_from_when_the_stream_can_be_replayed(recorded_viewer) -> None:
    server = recorded_viewer
    with DevToolsPage(f"{server.url}/", width=1280, height=900) as page:
        _wait_for_clip_links(page)
        page.evaluate(CLICK_CLIP_JS % "#1 person crossed crossing (in)")
        failed = wait_for(
            lambda: (c := page.evaluate(CLIP_JS))["state"] == "error" and c, 30, "the refusal"
        )
        assert "has expired: stream 'walkway' (annotated) can be replayed from " in failed["status"]
        assert failed["frames"] == 0
