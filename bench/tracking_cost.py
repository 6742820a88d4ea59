"""Extra CPU per frame of tracking and the zone/line logic in the consumer.

Runs the consumer's own code on synthetic detections (``--objects`` people walking
across a 768x576 frame at 10 fps, some missed by the detector), without a broker or
model server, and prints the CPU milliseconds per frame of each stage: the tracker
(``Tracking.update``), the zone and line events (``SceneAnalytics.update``) and
drawing the zones and lines with their counts (``SceneAnnotator``).

python bench/tracking_cost.py [--frames 2000] [--objects 6]    (--frames 50 to try it)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from kva.consumer.analytics import FrameInfo, SceneAnalytics
from kva.consumer.annotate import SceneAnnotator, SceneCounts
from kva.consumer.tracking import TrackerSettings, Tracking
from kva.predictions import Detections, ModelResult
from kva.scene import Line, Scene, Zone

SCENE = Scene(
    zones=(
        Zone("left", ((0.05, 0.4), (0.45, 0.4), (0.45, 0.95), (0.05, 0.95))),
        Zone("right", ((0.55, 0.4), (0.95, 0.4), (0.95, 0.95), (0.55, 0.95))),
    ),
    lines=(Line("walkway", (0.0, 0.6), (1.0, 0.6)), Line("gate", (0.5, 0.0), (0.5, 1.0))),
)


def detections(frame: int, objects: int, rng: np.random.Generator) -> Detections:
    boxes = []
    for k in range(objects):
        phase = (frame * 0.004 * (1 + k % 3) + k / objects) % 1.0
        x = 0.05 + 0.9 * phase if k % 2 else 0.95 - 0.9 * phase
        y = 0.3 + 0.6 * ((k * 0.37 + frame * 0.002) % 1.0)
        if rng.random() < 0.1:
            continue  # missed by the detector
        jitter = rng.normal(0, 0.003, 4)
        box = (x - 0.03, y - 0.15, x + 0.03, y)
        boxes.append(tuple(float(np.clip(v + j, 0, 1)) for v, j in zip(box, jitter, strict=True)))
    scores = tuple(float(rng.uniform(0.5, 0.95)) for _ in boxes)
    return Detections(tuple(boxes), scores, "person")  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--objects", type=int, default=6)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    frames = [detections(i, args.objects, rng) for i in range(args.frames)]
    tracking = Tracking(TrackerSettings())
    analytics = SceneAnalytics({"cam": SCENE}, window_s=3.0, max_tracks=256)
    annotator = SceneAnnotator()
    image = np.zeros((576, 768, 3), np.uint8)
    spent = {"track": 0.0, "events": 0.0, "draw": 0.0}
    events = 0
    for i, found in enumerate(frames):
        capture_ns = 1_000_000_000 + i * 100_000_000
        t0 = time.process_time()
        tracked = tracking.update("cam", "person", capture_ns / 1e9, found)
        t1 = time.process_time()
        info = FrameInfo("cam", i, capture_ns)
        events += len(analytics.update(info, [ModelResult("person", "ok", tracked)]))
        t2 = time.process_time()
        annotator.annotate(image, SCENE, SceneCounts(*analytics.counts("cam")))
        t3 = time.process_time()
        spent["track"] += t1 - t0
        spent["events"] += t2 - t1
        spent["draw"] += t3 - t2
    n = max(1, len(frames))
    total = sum(spent.values())
    print(f"{args.frames} frames, {args.objects} objects, {events} events")
    for stage, seconds in spent.items():
        print(f"{stage:<8} {seconds / n * 1000:7.3f} ms CPU per frame")
    print(f"{'total':<8} {total / n * 1000:7.3f} ms CPU per frame (tracking + zones/lines)")


if __name__ == "__main__":
    main()
