"""Shared pieces of the consumer benchmarks: a broker, frames, a feeder, a reader,
``kva consume`` and model-server subprocesses.

Uses ``KVA_BOOTSTRAP_SERVER`` when set, else starts a real Kafka (KRaft) for the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from kva.frame import Frame  # noqa: E402
from kva.kafka import FrameProducer, LatestFrameConsumer, TopicSpec, ensure_topics  # noqa: E402
from kva.settings import KafkaSettings  # noqa: E402
from testbed.kafka import broker as kafka_broker  # noqa: E402

#: Process ids of the brokers started here (for CPU accounting).
BROKER_PIDS: list[int] = []


@contextlib.contextmanager
def broker() -> Iterator[KafkaSettings]:
    """Settings of a real broker for the benchmark (its JVMs' pids in ``BROKER_PIDS``)."""
    with kafka_broker(BROKER_PIDS) as bootstrap:
        yield KafkaSettings(bootstrap_server=bootstrap)


def topics(settings: KafkaSettings, prefix: str, partitions: int = 1) -> tuple[str, str, str]:
    """Fresh input, output and metadata topics."""
    tag = uuid.uuid4().hex[:6]
    names = (f"{prefix}-{tag}-in", f"{prefix}-{tag}-out", f"{prefix}-{tag}-meta")
    ensure_topics(settings, [TopicSpec(n, partitions=partitions) for n in names])
    return names


def photo_jpegs(width: int, height: int, count: int = 8, quality: int = 85) -> list[bytes]:
    """``count`` different JPEG frames of scikit-image photos at ``width`` x ``height``."""
    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()]
    frames = []
    for i in range(count):
        image = cv2.cvtColor(photos[i % len(photos)], cv2.COLOR_RGB2BGR)
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        image = np.roll(image, i * 7, axis=1)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        frames.append(data.tobytes())
    return frames


class Feeder(threading.Thread):
    """Produces frames of one stream at ``fps`` (0 = as fast as possible) until stopped."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        frames: list[bytes],
        size: tuple[int, int],
        fps: float,
        limit: int = 0,
        stream: str = "cam0",
    ) -> None:
        super().__init__(daemon=True)
        self.producer = FrameProducer(settings, linger_ms=1)
        self.topic, self.frames, self.size, self.fps = topic, frames, size, fps
        self.limit, self.stream = limit, stream
        self.sent = 0
        self.first_sent = 0.0
        self.stop_event = threading.Event()

    def run(self) -> None:
        interval = 1.0 / self.fps if self.fps else 0.0
        next_at = time.monotonic()
        self.first_sent = time.time()
        while not self.stop_event.is_set() and (not self.limit or self.sent < self.limit):
            data = self.frames[self.sent % len(self.frames)]
            frame = Frame(self.stream, self.sent, time.time_ns(), *self.size, data)
            self.producer.send_frame(self.topic, frame)
            self.sent += 1
            if interval:
                next_at += interval
                self.stop_event.wait(max(0.0, next_at - time.monotonic()))
        self.producer.flush(30)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(30)


class Reader(threading.Thread):
    """Counts messages on a topic (from its start); keeps the metadata documents if asked."""

    def __init__(self, settings: KafkaSettings, topic: str, keep_json: bool = False) -> None:
        super().__init__(daemon=True)
        self.consumer = LatestFrameConsumer(
            settings, [topic], f"bench-reader-{uuid.uuid4().hex[:6]}", max_lag=None
        )
        self.keep_json = keep_json
        self.count = 0
        self.docs: list[dict[str, object]] = []
        self.stamps: list[float] = []
        self.stop_event = threading.Event()
        deadline = time.monotonic() + 30
        while not self.consumer.assignment and time.monotonic() < deadline:
            self.consumer.poll(0.1)

    def run(self) -> None:
        while not self.stop_event.is_set():
            record = self.consumer.poll(0.1)
            if record is None:
                continue
            self.count += 1
            self.stamps.append(time.time())
            if self.keep_json:
                self.docs.append(json.loads(record.value or b"{}"))
        self.consumer.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)


class Process:
    """A subprocess with its log in a file; stopped with SIGTERM."""

    def __init__(self, args: list[str], log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KVA_")}
        self.log = log
        self._file = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=self._file, stderr=subprocess.STDOUT
        )

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def wait_line(self, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if needle in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.log}: no line with {needle!r}:\n" + "\n".join(self.lines()[-20:])
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._file.close()


def fixed_latency_servers(count: int, latency: float, log: Path) -> tuple[Process, list[str]]:
    """``count`` fixed-latency replicas in one subprocess; returns it and the replica URLs."""
    proc = Process(
        ["-m", "testbed.model_server", "--count", str(count), "--latency", str(latency)],
        log,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        urls = [line for line in proc.lines() if line.startswith("http://")]
        if len(urls) == count:
            return proc, urls
        time.sleep(0.1)
    raise RuntimeError("fixed-latency servers did not start")


def fixed_latency_pipeline(
    settings: KafkaSettings, replicas: int, latency: float, inflight: int, work: Path, tag: str
) -> tuple[Process, tuple[str, str, str], Process]:
    """``replicas`` fixed-latency servers and a ``kva consume`` using them on fresh topics:
    (the servers' process, the topics, the consumer's process)."""
    servers, urls = fixed_latency_servers(replicas, latency, work / f"servers-{tag}.log")
    names = topics(settings, f"bench-{tag}")
    consumer = consume(
        settings,
        names,
        ["--model", "mobilenet_v2=" + ",".join(urls), "--max-inflight", str(inflight)],
        work / f"consume-{tag}.log",
    )
    return servers, names, consumer


def consume(
    settings: KafkaSettings, names: tuple[str, str, str], args: list[str], log: Path
) -> Process:
    """``kva consume`` as a subprocess, ready (partition assigned) when this returns."""
    inp, out, meta = names
    proc = Process(
        [
            "-m",
            "kva",
            "consume",
            "--bootstrap-server",
            settings.bootstrap_server,
            "--input-topic",
            inp,
            "--output-topic",
            out,
            "--metadata-topic",
            meta,
            "--group-id",
            f"bench-{uuid.uuid4().hex[:6]}",
            "--metrics-port",
            "0",
            "--status-interval",
            "5",
            *args,
        ],  # fmt: skip
        log,
    )
    proc.wait_line("assigned [(", timeout=60)
    return proc
