"""A real browser: headless Chromium opens the page and shows the live stream."""

from __future__ import annotations

import re
import time

import cv2
import numpy as np
import pytest

from kva.video.app import create_app
from kva.video.state import viewer_state
from tests.video.browser import dump_dom, find_photo, have_chromium, screenshot
from tests.video.frames import live_photo, photo

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
