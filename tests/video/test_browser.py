"""A real browser: headless Chromium opens the page and shows the live stream, and the
counts and the event feed updating as events arrive on Kafka (with ``KVA_SAVE_SCREENSHOT=1``
that page is saved to docs/viewer-events.png)."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from kva.events import Event
from kva.frame import Frame
from kva.kafka import FrameProducer
from kva.video.app import create_app
from kva.video.event_reader import EventReader
from kva.video.state import viewer_state
from testbed.browser import DevToolsPage, dump_dom, find_photo, have_chromium, screenshot
from tests.support.frames import make_frame
from tests.support.wait import wait_for
from tests.video.events import HOSTILE_LABEL, LineCounter, zone_event
from tests.video.frames import LABELS, annotate, encode_jpeg, live_photo, photo

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "browser-token"  # noqa: S105 - a test token

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not have_chromium(), reason="chromium is not installed (apt-get install chromium)"
    ),
]


def test_the_page_shows_the_live_stream(make_settings, serve, feed, tmp_path) -> None:
    app = create_app(make_settings(video_token=TOKEN))
    store = viewer_state(app).store
    feed(store.put_frame, live_photo("chelsea", "cat"), fps=15)
    server = serve(app)
    url = f"{server.url}/?token={TOKEN}"
    first = screenshot(url, tmp_path / "first.png")
    second = screenshot(url, tmp_path / "second.png")

    cat = photo("chelsea", 640, 360)
    score, (x, y, w, h) = find_photo(first, cat)
    assert score > 0.7, f"the cat photo is not on the page (best match {score:.2f})"
    assert w > 200, f"the stream is shown too small ({w}x{h})"
    area_first = first[y : y + h, x : x + w].astype(np.int16)
    area_second = second[y : y + h, x : x + w].astype(np.int16)
    assert area_first.std() > 20, "the image area is blank"
    changed = (np.abs(area_first - area_second).max(axis=2) > 40).sum()
    assert changed > 50, f"the image did not change between the screenshots ({changed} pixels)"
    # the card says it is live, with its fps
    assert score == pytest.approx(find_photo(second, cat)[0], abs=0.2)


def test_the_page_needs_the_token(make_settings, serve, tmp_path) -> None:
    server = serve(create_app(make_settings(video_token=TOKEN)))
    image = screenshot(f"{server.url}/", tmp_path / "denied.png", wait_ms=1500)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert gray.mean() > 200  # Chromium's white text page, not the dark viewer


def test_many_streams_show_as_snapshots(make_settings, serve, feed) -> None:
    """Browsers open six connections per server: beyond four streams the grid polls snapshots."""
    app = create_app(make_settings())
    store = viewer_state(app).store
    for i in range(6):
        feed(store.put_frame, live_photo("coffee", f"cam{i}", 320, 180), fps=5)
    server = serve(app)
    deadline = time.monotonic() + 10
    while len(store) < 6:
        assert time.monotonic() < deadline, "the feeders did not start"
        time.sleep(0.05)
    dom = dump_dom(f"{server.url}/")
    for i in range(6):
        assert re.search(rf'src="[^"]*streams/cam{i}\.jpg\?t=\d+"', dom), f"cam{i} has no snapshot"
    assert ".mjpg" not in dom


def test_few_streams_are_live_mjpeg(make_settings, serve, feed) -> None:
    app = create_app(make_settings())
    store = viewer_state(app).store
    feed(store.put_frame, live_photo("coffee", "cup", 320, 180), fps=5)
    server = serve(app)
    deadline = time.monotonic() + 10
    while store.get("cup") is None:
        assert time.monotonic() < deadline, "the feeder did not start"
        time.sleep(0.05)
    dom = dump_dom(f"{server.url}/")
    assert re.search(r'src="[^"]*streams/cup\.mjpg"', dom)


# -- the events feed and the counts, live from a real Kafka topic ---------------------------------
LINE_BGR = (255, 0, 255)  # the counting line as the consumer draws it on the frame (magenta here)


def _walkway(name: str, stream: str, line: str) -> Callable[[int], Frame]:
    """Annotated frames with a counting line drawn across, as the consumer sends them."""
    base = photo(name, 640, 360)

    def render(sequence: int) -> Frame:
        image = annotate(base, LABELS[name], sequence)
        cv2.line(image, (40, 250), (600, 210), LINE_BGR, 4)
        cv2.putText(image, line, (44, 240), cv2.FONT_HERSHEY_SIMPLEX, 0.7, LINE_BGR, 2)
        return make_frame(stream, sequence, encode_jpeg(image), 640, 360)

    return render


#: Per stream card: {"line:NAME": {"in": n, "out": n}, "zone:NAME": {...}} as the page shows them.
COUNTS_JS = """(() => {
  const out = {};
  for (const row of document.querySelectorAll('.card[data-stream="%s"] .count-row')) {
    const counts = {};
    for (const chip of row.querySelectorAll('.count')) {
      counts[chip.dataset.key] = Number(chip.querySelector('b').textContent);
    }
    out[row.dataset.kind + ':' + row.dataset.name] = counts;
  }
  return out;
})()"""
#: Per stream card: the feed's lines, top to bottom.
FEED_JS = """Array.from(document.querySelectorAll('.card[data-stream="%s"] .feed .what'))
  .map((e) => e.textContent)"""


def test_the_page_shows_the_counts_and_the_feed_updating_live(
    kafka_settings, make_topic, make_settings, serve, feed, tmp_path
) -> None:
    topic = make_topic(suffix="events")
    settings = make_settings(
        bootstrap_server=kafka_settings.bootstrap_server, video_events_topic=topic
    )
    app = create_app(settings)
    state = viewer_state(app)
    feed(state.store.put_frame, _walkway("astronaut", "walkway", "crossing"), fps=10)
    feed(state.store.put_frame, live_photo("coffee", "lobby", 640, 360), fps=5)
    reader = EventReader(settings, state.events, state.metrics).start()
    producer = FrameProducer(kafka_settings)
    line = LineCounter("walkway", "crossing")

    def produce(*events: Event) -> None:
        for event in events:
            producer.send(topic, event.stream.encode(), event.to_json().encode())
        producer.flush(10)

    try:
        produce(
            line.cross("in", 1),
            line.cross("in", 2),
            line.cross("out", 3),
            zone_event("walkway", "bench", "zone_enter", 2, {"inside": 1, "entered": 1}),
        )
        server = serve(app)
        with DevToolsPage(f"{server.url}/", width=1280, height=900) as page:
            first = {
                "line:crossing": {"in": 2, "out": 1},
                "zone:bench": {"inside": 1, "entered": 1},
            }
            wait_for(lambda: page.evaluate(COUNTS_JS % "walkway") == first, 60, "the first counts")
            assert page.evaluate(FEED_JS % "walkway")[0] == "#2 person entered bench"
            page.evaluate("window.kvaSamePage = true")  # gone if the page reloaded
            produce(  # while the page is open
                line.cross("in", 41),
                line.cross("out", 42),
                zone_event(
                    "walkway", "bench", "loiter", 2, {"inside": 1, "entered": 1}, dwell_s=12.5
                ),
                LineCounter("lobby", "door").cross("in", 7, label=HOSTILE_LABEL),
            )
            now = {"line:crossing": {"in": 3, "out": 2}, "zone:bench": {"inside": 1, "entered": 1}}
            wait_for(lambda: page.evaluate(COUNTS_JS % "walkway") == now, 30, "the new counts")
            wait_for(lambda: page.evaluate(FEED_JS % "lobby"), 30, "the lobby's feed")
            assert page.evaluate("window.kvaSamePage") is True  # updated live, not reloaded
            assert page.evaluate(FEED_JS % "walkway")[:4] == [
                "#2 person loitering in bench · 12.5 s",
                "#42 person crossed crossing (out)",
                "#41 person crossed crossing (in)",
                "#2 person entered bench",
            ]
            # the hostile label is text on the page, never an element
            assert page.evaluate(FEED_JS % "lobby") == [f"#7 {HOSTILE_LABEL} crossed door (in)"]
            assert page.evaluate("document.querySelectorAll('.feed img').length") == 0
            assert page.evaluate("document.title") == "kva · live streams"  # no handler ran
            shot = tmp_path / "viewer-events.png"
            image = page.screenshot(shot)
    finally:
        reader.stop()
    magenta = cv2.inRange(image, (200, 0, 200), (255, 60, 255))
    assert cv2.countNonZero(magenta) > 300, "the counting line is not on the page"
    if os.environ.get("KVA_SAVE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "viewer-events.png")
