"""What one camera costs on disk per hour: real frames on a real topic, measured.

Runs the demo video (``vtest.avi``, people walking) scaled to ``--width`` x
``--height`` (default 1280x720) through the real camera runner, encoder and Kafka
sink at the default JPEG quality, unpaced, into a fresh one-partition topic of a
throw-away Kafka whose data folder this script owns. It then prints the bytes per
frame (JPEG alone, and the partition's log on disk per record: headers, key and
Kafka's record overhead included) and that times ``--fps`` x 3600: the disk cost
of one camera-hour, and how long the default retention (1 GiB per partition)
holds such a camera.

    python bench/disk_cost.py [--width 1280 --height 720] [--fps 15] [--quality 80]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kva import retention  # noqa: E402
from kva.kafka import FrameProducer, TopicSpec, ensure_topics  # noqa: E402
from kva.paths import demo_video  # noqa: E402
from kva.producer.camera import CameraRunner, CameraState, RunnerTiming  # noqa: E402
from kva.producer.config import CameraConfig  # noqa: E402
from kva.producer.metrics import ProducerMetrics  # noqa: E402
from kva.producer.sink import KafkaFrameSink  # noqa: E402
from kva.settings import KafkaSettings  # noqa: E402
from kva.zookeeper.cluster import ClusterSpec, KafkaCluster  # noqa: E402


def record(bootstrap: str, topic: str, camera: CameraConfig) -> tuple[float, float]:
    """Send the whole video once; (frames acknowledged, JPEG bytes acknowledged)."""
    settings = KafkaSettings(bootstrap_server=bootstrap)
    ensure_topics(settings, [TopicSpec(topic, partitions=1)])
    metrics = ProducerMetrics(process=False)
    producer = FrameProducer(settings)
    sink = KafkaFrameSink(producer, topic, metrics)
    runner = CameraRunner(camera, sink, metrics, RunnerTiming(progress_interval=3600)).start()
    while runner.is_alive():
        sink.poll(0.05)
    if runner.state is not CameraState.ENDED:
        raise SystemExit(f"the camera did not finish the video: {runner.state} {runner.error}")
    if producer.flush(60):
        raise SystemExit("frames left undelivered")
    sent = metrics.value("kva_producer_frames_sent_total", stream=camera.id)
    return sent, metrics.value("kva_producer_bytes_sent_total", stream=camera.id)


def log_bytes(data_dir: Path, topic: str) -> int:
    """Bytes of the partition's ``.log`` segments on disk (indexes left out)."""
    return sum(p.stat().st_size for p in data_dir.rglob(f"{topic}-0/*.log"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--quality", type=int, default=80)
    args = parser.parse_args()
    video = demo_video()
    if not video.is_file():
        raise SystemExit(f"{video} is missing: run scripts/fetch-demo-video.sh")
    camera = CameraConfig(
        id="cam0", source=str(video), fps=1000, width=args.width, height=args.height,
        quality=args.quality,
    )  # fmt: skip
    topic = f"bench-disk-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="kva-disk-") as folder:
        spec = ClusterSpec(mode="kraft", port=0, data_dir=Path(folder))
        with KafkaCluster(spec) as cluster:
            started = time.monotonic()
            frames, jpeg_bytes = record(cluster.bootstrap_server, topic, camera)
            on_disk = log_bytes(Path(folder), topic)
    per_hour = args.fps * 3600
    jpeg, disk = jpeg_bytes / frames, on_disk / frames
    hour = disk * per_hour
    held = retention.FRAMES.bytes / (disk * args.fps)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    print(f"{video.name} at {args.width}x{args.height}, JPEG quality {args.quality}: "
          f"{frames:.0f} frames in {time.monotonic() - started:.1f}s")  # fmt: skip
    print(f"  JPEG per frame            {jpeg / 1000:8.1f} kB")
    print(f"  on disk per frame         {disk / 1000:8.1f} kB (log segment / records)")
    print(f"  one camera-hour at {args.fps:g} fps {hour / 1e9:8.2f} GB ({hour / 2**30:.2f} GiB)")
    print(f"  1 GiB per partition holds {held / 60:8.1f} minutes of this camera")


if __name__ == "__main__":
    main()
