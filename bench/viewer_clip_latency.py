"""Time to the first frame of a clip: from the request (HTTP) and from a click (Chromium).

Records ``--seconds`` of ``--streams`` cameras (720p JPEGs at ``--fps``) into a fresh
topic of ``--partitions`` partitions on a real Kafka (``KVA_BOOTSTRAP_SERVER`` or a
throw-away broker), starts the viewer on it and then, ``--runs`` times each:

- ``http``: GET ``/clips/cam0.mjpg`` of a 10 s clip at a random point of the recording,
  time to the response headers and to the first complete frame;
- ``click``: in headless Chromium, a click on cam0's timeline at a random point, time
  from the click to the first frame decoded in the clip panel (``window.kvaClip``).

    python bench/viewer_clip_latency.py [--runs 20] [--seconds 60] [--partitions 4]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import cv2
import skimage.data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kva.frame import Frame  # noqa: E402
from kva.kafka import FrameProducer, TopicSpec, ensure_topics  # noqa: E402
from kva.video.app import create_app  # noqa: E402
from kva.video.config import VideoSettings  # noqa: E402
from kva.video.server import ViewerServer  # noqa: E402
from kva.video.state import viewer_state  # noqa: E402
from testbed.browser import DevToolsPage, click_across  # noqa: E402
from testbed.kafka import broker  # noqa: E402

W, H = 1280, 720
CLIP_MS = 10_000
TIMELINE_SHOWN_JS = "!!document.querySelector('.card[data-stream=\"cam0\"] .tl-bar:not([hidden])')"
TIMELINE = '.card[data-stream="cam0"] .tl-bar'


def record(bootstrap: str, topic: str, args: argparse.Namespace) -> tuple[int, int, int]:
    """Write the recording; (first capture ms, last capture ms, bytes of JPEG)."""
    base = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (W, H))
    settings = VideoSettings(bootstrap_server=bootstrap)
    config = {"retention.ms": str(3_600_000), "segment.ms": str(3_600_000)}
    ensure_topics(settings, [TopicSpec(topic, partitions=args.partitions, config=config)])
    producer = FrameProducer(settings)
    count = int(args.seconds * args.fps)
    t0_ms = int(time.time() * 1000) - int(args.seconds * 1000) - 5000
    size = 0
    for seq in range(count):
        image = base.copy()
        cv2.putText(image, f"#{seq}", (40, 680), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
        at_ns = (t0_ms + round(seq * 1000 / args.fps)) * 1_000_000
        for camera in range(args.streams):
            producer.send_frame(topic, Frame(f"cam{camera}", seq, at_ns, W, H, data))
            size += len(data)
    assert producer.flush(60) == 0, "the recording was not delivered"
    return t0_ms, t0_ms + round((count - 1) * 1000 / args.fps), size


def http_first_frame(host: str, port: int, path: str) -> tuple[float, float]:
    """Seconds to the response headers and to the end of the first part's JPEG."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        headers_at = time.perf_counter() - started
        assert response.status == 200, response.read()[:300]
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += response.read1(1 << 16)
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        fields = dict(ln.split(b":", 1) for ln in head.split(b"\r\n")[1:])
        length = int({k.strip().lower(): v for k, v in fields.items()}[b"content-length"])
        while len(buffer) < length:
            buffer += response.read1(1 << 20)
        return headers_at, time.perf_counter() - started
    finally:
        connection.close()


def summary(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    median = statistics.median(ms)
    return f"| {name} | {len(ms)} | {ms[0]:.0f} | {median:.0f} | {p90:.0f} | {ms[-1]:.0f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--fps", type=float, default=15)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(18)
    with broker() as bootstrap:
        topic = f"bench-clips-{uuid.uuid4().hex[:8]}"
        first_ms, last_ms, size = record(bootstrap, topic, args)
        print(
            f"recorded {args.streams} x {args.seconds:g} s at {args.fps:g} fps of {W}x{H} "
            f"({size / 1e6:.0f} MB) into {topic} ({args.partitions} partitions)"
        )
        settings = VideoSettings(
            bootstrap_server=bootstrap, video_topic=topic, video_port=0,
            video_metadata_topic="", video_events_topic="", video_frames_topic="",
        )  # fmt: skip
        app = create_app(settings)
        state = viewer_state(app)
        state.retention.refresh()
        state.store.put_frame(Frame("cam0", 0, time.time_ns(), W, H, b"\xff\xd8live\xff\xd9"))
        server = ViewerServer(app, port=0).start()
        try:
            span = last_ms - first_ms - CLIP_MS
            http_times: list[float] = []
            first_times: list[float] = []
            for _ in range(args.runs):
                start = first_ms + rng.randrange(max(1, span))
                path = f"/clips/cam0.mjpg?from_ms={start}&to_ms={start + CLIP_MS}"
                headers_at, first_at = http_first_frame(server.host, server.port, path)
                http_times.append(headers_at)
                first_times.append(first_at)
            clicks = browser_clicks(server.url, args.runs, rng, span / (last_ms - first_ms))
        finally:
            server.stop()
    print(f"load average (1, 5, 15 min): {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| measure | runs | min ms | median ms | p90 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(summary("HTTP: request → response headers", http_times))
    print(summary("HTTP: request → first frame received", first_times))
    print(summary("browser: click → first frame shown", clicks))
    return 0


def browser_clicks(url: str, runs: int, rng: random.Random, within: float) -> list[float]:
    """Seconds from a timeline click to the first frame decoded in the clip panel."""
    times: list[float] = []
    done = threading.Event()
    with DevToolsPage(f"{url}/", width=1280, height=900) as page:
        deadline = time.monotonic() + 30
        while not page.evaluate(TIMELINE_SHOWN_JS):
            if time.monotonic() > deadline:
                raise RuntimeError("the timeline did not appear")
            done.wait(0.1)
        for _ in range(runs):
            page.evaluate("window.kvaClip.first_frame_ms = null")
            page.evaluate(click_across(TIMELINE, rng.random() * within))
            deadline = time.monotonic() + 30
            while (first := page.evaluate("window.kvaClip.first_frame_ms")) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no first frame: {page.evaluate('window.kvaClip')}")
                done.wait(0.02)
            times.append(first / 1000)
            page.evaluate("document.getElementById('clip-close').click()")
    return times


if __name__ == "__main__":
    raise SystemExit(main())
