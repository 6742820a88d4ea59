"""How fast one producer process pushes 720p ``testsrc`` into a real Kafka.

Runs one camera (``testsrc`` at 1280x720) unpaced (``--fps 1000``) through the
real camera runner, encoder and Kafka sink for ``--seconds``, then prints
frames/s acknowledged by Kafka and CPU per frame split into capture
(generating the frame), encode (resize + JPEG) and produce (queueing to
librdkafka), plus the whole process's CPU per frame (librdkafka's threads
included). Finally it encodes the same frames with the producer's encoder and
with raw ``cv2.imencode`` (the limit) and prints both.

Uses ``KVA_BOOTSTRAP_SERVER`` when set, else starts a throw-away Kafka.

    python bench/producer_throughput.py [--seconds 10] [--quality 80] [--cameras 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from kva.kafka import FrameProducer, TopicSpec, ensure_topics  # noqa: E402
from kva.producer.camera import CameraRunner, RunnerTiming  # noqa: E402
from kva.producer.config import CameraConfig  # noqa: E402
from kva.producer.encoder import JpegEncoder  # noqa: E402
from kva.producer.metrics import ProducerMetrics  # noqa: E402
from kva.producer.sink import KafkaFrameSink  # noqa: E402
from kva.producer.sources import TestPatternSource  # noqa: E402
from kva.settings import KafkaSettings  # noqa: E402
from testbed.kafka import broker  # noqa: E402

WIDTH, HEIGHT = 1280, 720


def run_pipeline(bootstrap: str, seconds: float, quality: int, cameras: int) -> None:
    settings = KafkaSettings(bootstrap_server=bootstrap)
    topic = f"bench-producer-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [TopicSpec(topic, partitions=1)])
    metrics = ProducerMetrics(process=False)
    sink = KafkaFrameSink(FrameProducer(settings), topic, metrics)
    runners = [
        CameraRunner(
            CameraConfig(
                id=f"bench{i}",
                source="testsrc",
                fps=1000,
                width=WIDTH,
                height=HEIGHT,
                quality=quality,
            ),
            sink,
            metrics,
            RunnerTiming(progress_interval=3600),
        )
        for i in range(cameras)
    ]
    cpu0, wall0 = time.process_time(), time.monotonic()
    for runner in runners:
        runner.start()
    while time.monotonic() - wall0 < seconds:
        sink.poll(0.05)
    for runner in runners:
        runner.stop()
    for runner in runners:
        runner.join(10)
    left = sink.flush(30)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0

    def value(name: str, **labels: str) -> float:
        return sum(metrics.value(name, stream=r.stream, **labels) for r in runners)

    encoded = value("kva_producer_frames_encoded_total")
    sent = value("kva_producer_frames_sent_total")
    size = value("kva_producer_bytes_sent_total") / max(1.0, sent)
    print(f"720p testsrc, quality {quality}, {wall:.1f}s, {cameras} camera thread(s), acks=1")
    print(f"  frames encoded      {encoded:8.0f}   ({encoded / wall:6.1f} frames/s)")
    rate = sent / wall
    print(f"  frames acknowledged {sent:8.0f}   ({rate:6.1f} frames/s, {size / 1000:.0f} kB/frame)")
    print(f"  not delivered       {left:8d}")
    print("  CPU per frame (camera threads):")
    total = 0.0
    for stage in ("capture", "encode", "produce"):
        ms = value("kva_producer_stage_cpu_seconds_total", stage=stage) / encoded * 1000
        total += ms
        print(f"    {stage:<8} {ms:6.2f} ms")
    print(f"    {'sum':<8} {total:6.2f} ms")
    print(f"  CPU per frame, whole process (librdkafka threads too): {cpu / encoded * 1000:.2f} ms")
    count = value("kva_producer_encode_seconds_count")
    wall_encode = value("kva_producer_encode_seconds_sum") / count
    print(f"  encode wall time per frame (histogram): {wall_encode * 1000:.2f} ms")


def compare_encoders(quality: int, count: int = 200) -> None:
    source = TestPatternSource(WIDTH, HEIGHT)
    frames = [source.read(0).image for _ in range(count)]
    encoder = JpegEncoder(quality)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    for _ in range(10):  # warm up both
        encoder.encode(frames[0])
        cv2.imencode(".jpg", frames[0], params)
    # Interleaved, per-frame medians: a busy machine slows both alike.
    walls: dict[str, list[float]] = {"ours": [], "raw": []}
    cpus: dict[str, list[float]] = {"ours": [], "raw": []}
    encoders = [
        ("ours", encoder.encode),
        ("raw", lambda img: cv2.imencode(".jpg", img, params)),
    ]
    for index, image in enumerate(frames):
        # Alternate who goes first: the second encode finds the image in the CPU cache.
        for name, encode in encoders if index % 2 else encoders[::-1]:
            wall0, cpu0 = time.perf_counter(), time.thread_time()
            encode(image)
            walls[name].append((time.perf_counter() - wall0) * 1000)
            cpus[name].append((time.thread_time() - cpu0) * 1000)
    print(f"Encoding the same {count} 720p frames, quality {quality} (median per frame):")
    labels = {"ours": "producer JpegEncoder.encode", "raw": "raw cv2.imencode (the limit)"}
    for name, label in labels.items():
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"  {label:<30} {wall:6.2f} ms wall  {cpu:6.2f} ms CPU")
    ours, raw = (statistics.median(walls[name]) for name in labels)
    print(f"  overhead over raw imencode: {(ours / raw - 1) * 100:+.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--cameras", type=int, default=1, help="camera threads (default 1)")
    args = parser.parse_args()
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads, {os.cpu_count()} CPUs")
    with broker() as bootstrap:
        run_pipeline(bootstrap, args.seconds, args.quality, args.cameras)
    compare_encoders(args.quality)


if __name__ == "__main__":
    main()
