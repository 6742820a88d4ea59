"""How long a dropped camera takes to stream again once it is back (real RTSP and HTTP cameras).

Runs ``kva produce``'s service in-process against a real Kafka with one RTSP
camera (GStreamer's RTSP server, run with Debian's ``/usr/bin/python3``) and
one HTTP MJPEG camera, drops both for a random 1–6 s ``--drops`` times, and
prints for each return the seconds from "camera listening again" to the
capture of the first frame that reached Kafka, with the default backoff
(0.5 s doubling to 3 s, jittered).

    python bench/producer_reconnect.py [--drops 5]

Uses ``KVA_BOOTSTRAP_SERVER`` when set, else starts a throw-away Kafka.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kva.kafka import TopicSpec, ensure_topics  # noqa: E402
from kva.ports import free_port  # noqa: E402
from kva.settings import KafkaSettings  # noqa: E402
from testbed.cameras import MjpegCamera, RtspCamera, gst_rtsp_missing  # noqa: E402
from testbed.kafka import FrameCollector, broker  # noqa: E402
from testbed.producer import producer_settings, running  # noqa: E402


def measure(bootstrap: str, drops: int) -> dict[str, list[float]]:
    settings = KafkaSettings(bootstrap_server=bootstrap)
    topic = f"bench-reconnect-{random.randrange(1 << 30)}"
    ensure_topics(settings, [TopicSpec(topic, partitions=2)])
    collector = FrameCollector(settings, topic, topic)
    rtsp = RtspCamera(free_port()).start()
    http = MjpegCamera(fps=15)
    http_port = http.port
    cameras: dict[str, list] = {"rtsp": [rtsp], "http": [http]}
    produce = producer_settings(
        settings, topic, source=[f"rtsp={rtsp.url}", f"http={http.url}"], camera_fps=10
    )
    results: dict[str, list[float]] = {"rtsp": [], "http": []}
    try:
        with running(produce):
            for stream in results:
                collector.count(stream, 10, timeout=30)
            for drop in range(drops):
                rtsp.stop()
                cameras["http"][-1].stop()
                outage = random.uniform(1, 6)
                time.sleep(outage)  # the outage itself
                rtsp.start()
                back = {"rtsp": time.time_ns()}
                cameras["http"].append(MjpegCamera(port=http_port, fps=15))
                back["http"] = time.time_ns()
                for stream, since in back.items():
                    frames = collector.collect(
                        lambda _f, s=stream, t=since: any(
                            f.capture_ns > t for f in collector.of(s)
                        ),
                        timeout=30,
                    )
                    first = min(
                        f.capture_ns
                        for f in frames
                        if f.stream_id == stream and f.capture_ns > since
                    )
                    results[stream].append((first - since) / 1e9)
                print(
                    f"drop {drop + 1}: outage {outage:.1f}s -> rtsp {results['rtsp'][-1]:.2f}s, "
                    f"http {results['http'][-1]:.2f}s",
                    flush=True,
                )
    finally:
        rtsp.stop()
        for camera in cameras["http"]:
            if not camera.stopped.is_set():
                camera.stop()
        collector.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drops", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="  %(name)s: %(message)s")
    reason = gst_rtsp_missing()
    if reason:
        sys.exit(f"cannot run: {reason}")
    with broker() as bootstrap:
        results = measure(bootstrap, args.drops)
    for stream, times in results.items():
        print(
            f"{stream}: camera back -> first frame in Kafka: "
            f"median {statistics.median(times):.2f}s, max {max(times):.2f}s over {len(times)} drops"
        )


if __name__ == "__main__":
    main()
