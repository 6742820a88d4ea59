"""`kva broker` and the launcher: both modes serve real traffic and stop without leftovers."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kva.frame import Frame
from kva.kafka import FrameProducer, LatestFrameConsumer, TopicSpec, ensure_topics
from kva.ports import free_port
from kva.settings import KafkaSettings
from kva.zookeeper.cluster import BrokerStartError, ClusterSpec, KafkaCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _java_pids(parent: int | None = None) -> set[int]:
    """Running (non-zombie) java processes, optionally only the children of ``parent``."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            if name == "java" and state != "Z" and (parent is None or int(ppid) == parent):
                pids.add(int(entry.name))
    return pids


def _round_trip(bootstrap: str, topic: str) -> int:
    settings = KafkaSettings(bootstrap_server=bootstrap)
    ensure_topics(settings, [TopicSpec(topic, partitions=1)])
    consumer = LatestFrameConsumer(settings, [topic], f"g-{topic}", max_lag=None)
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment and time.monotonic() < deadline:
            consumer.poll(0.1)
        producer = FrameProducer(settings)
        producer.send_frame(topic, Frame("cam0", 41, time.time_ns(), 2, 2, b"jpeg"))
        assert producer.flush(20) == 0
        while time.monotonic() < deadline:
            record = consumer.poll(0.5)
            if record is not None:
                return record.frame().sequence
    finally:
        consumer.close()
    raise AssertionError("no message came back")


def test_zookeeper_mode_serves_traffic() -> None:
    spec = ClusterSpec(mode="zookeeper", port=0, zookeeper_port=free_port())
    with KafkaCluster(spec) as cluster:
        assert _round_trip(cluster.bootstrap_server, "zk-mode") == 41
        pids = {b.popen.pid for b in cluster.brokers if b} | {cluster._zookeeper.popen.pid}  # type: ignore[union-attr]
    assert not pids & _java_pids(), "a JVM outlived the cluster"


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(BrokerStartError, match=f"port {port} on 127.0.0.1 is already in use"):
            KafkaCluster(ClusterSpec(port=port)).start()


@pytest.mark.parametrize("mode", ["kraft", "zookeeper"])
def test_cli_starts_serves_and_stops_on_ctrl_c(mode: str, tmp_path: Path) -> None:
    port, zk_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kva",
            "broker",
            "--mode",
            mode,
            "--port",
            str(port),
            "--zookeeper-port",
            str(zk_port),
            "--heap",
            "384m",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("KAFKA_BOOTSTRAP_SERVER="):
                break
        assert lines and lines[-1].strip() == f"KAFKA_BOOTSTRAP_SERVER=127.0.0.1:{port}", "".join(
            lines
        )
        assert _round_trip(f"127.0.0.1:{port}", f"cli-{mode}") == 41
        children = _java_pids(parent=process.pid)
        assert children, "no JVM was started"
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    assert "Kafka stopped" in out
    assert not children & _java_pids(), "a JVM outlived `kva broker`"
