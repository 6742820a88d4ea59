"""How fast ``kva replay --pace fast`` reads a recorded range out: to a file and to the viewer.

Records ``--seconds`` of 720p ``testsrc`` at 15 fps (capture times stamped on a
regular clock, through the producer's runner, encoder and Kafka sink) into a
throw-away Kafka, then replays the whole range with :class:`ReplayService` in this
process, each output in turn: an MP4 (decode + mp4v encode), an AVI (decode + MJPG
encode) and the viewer (re-published to an annotated topic under a new stream id).
Prints frames/s of each (``run`` alone, and start-to-end with the range resolved)
with the load average, which the numbers depend on.

Uses ``KVA_BOOTSTRAP_SERVER`` when set, else starts a throw-away Kafka.

    python bench/replay_throughput.py [--seconds 60] [--width 1280 --height 720]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kva.kafka import TopicSpec, ensure_topics  # noqa: E402
from kva.replay.config import ReplaySettings  # noqa: E402
from kva.replay.service import ReplayService  # noqa: E402
from kva.settings import KafkaSettings  # noqa: E402
from kva.timerange import format_ms  # noqa: E402
from testbed.kafka import broker  # noqa: E402
from testbed.recording import record_testsrc, whole_seconds_ago  # noqa: E402

FPS = 15.0


def replay_once(settings: KafkaSettings, **values: object) -> tuple[int, float, float]:
    """(frames, seconds of run, seconds from start to end) of one replay."""
    service = ReplayService(
        ReplaySettings(
            bootstrap_server=settings.bootstrap_server,
            replay_progress=False,
            replay_pace="fast",
            **values,  # type: ignore[arg-type]
        )
    )
    stop = threading.Event()
    began = time.monotonic()
    try:
        service.start(stop)
        ran = time.monotonic()
        status = service.run(stop)
    finally:
        service.close()
    if status != 0:
        raise SystemExit(f"replay failed with status {status}")
    end = time.monotonic()
    return service.frames, end - ran, end - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="kva-replay-") as folder:
        settings = KafkaSettings(bootstrap_server=bootstrap)
        frames_topic = f"bench-replay-{uuid.uuid4().hex[:8]}"
        annotated = f"{frames_topic}-annotated"
        ensure_topics(settings, [TopicSpec(frames_topic, 1), TopicSpec(annotated, 1)])
        t0 = whole_seconds_ago(int(args.seconds) + 60)
        count = record_testsrc(
            settings, frames_topic, t0_ns=t0, fps=FPS, seconds=args.seconds,
            size=(args.width, args.height),
        )  # fmt: skip
        span = {
            "replay_frames_topic": frames_topic,
            "replay_stream": "cam0",
            "replay_from": format_ms(t0 // 1_000_000),
            "replay_to": format_ms(t0 // 1_000_000 + int(args.seconds * 1000) + 1000),
        }
        print(f"{count} frames of {args.width}x{args.height} testsrc ({args.seconds:g}s at 15 fps)")
        outputs = {
            "file .mp4": {"replay_to_file": Path(folder) / "out.mp4"},
            "file .avi": {"replay_to_file": Path(folder) / "out.avi"},
            "viewer topic": {"replay_to_viewer": True, "replay_annotated_topic": annotated},
        }
        for name, output in outputs.items():
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            frames, run_s, whole_s = replay_once(settings, **span, **output)
            print(
                f"  to {name:<13} {frames} frames: {frames / run_s:7.1f} frames/s "
                f"({frames / whole_s:6.1f} start to end)  [load average before: {load}]"
            )


if __name__ == "__main__":
    main()
