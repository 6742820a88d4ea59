"""`kva broker` and the launcher: both modes serve real traffic and stop without leftovers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kva.ports import free_port
from kva.process import is_running, parent_pids
from kva.settings import KafkaSettings
from kva.zookeeper.cluster import BrokerStartError, ClusterSpec, KafkaCluster
from tests.support.kafka import round_trip

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _java_pids(parent: int | None = None) -> set[int]:
    """Running (non-zombie) java processes, optionally only the children of ``parent``."""
    return {
        pid
        for pid, ppid in parent_pids().items()
        if (parent is None or ppid == parent) and _name(pid) == "java" and is_running(pid)
    }


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_zookeeper_mode_serves_traffic() -> None:
    spec = ClusterSpec(mode="zookeeper", port=0, zookeeper_port=free_port())
    with KafkaCluster(spec) as cluster:
        assert round_trip(_settings(cluster.bootstrap_server), "zk-mode", 41) == 41
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
def test_cli_starts_serves_and_stops_on_ctrl_c(mode: str, start_kva) -> None:
    port, zk_port = free_port(), free_port()
    process = start_kva(
        "broker",
        "--mode", mode,
        "--port", str(port),
        "--zookeeper-port", str(zk_port),
        "--heap", "384m",
    )  # fmt: skip
    try:
        line = process.wait_line("KAFKA_BOOTSTRAP_SERVER=", 120)
        assert line.strip() == f"KAFKA_BOOTSTRAP_SERVER=127.0.0.1:{port}", process.output()
        assert round_trip(_settings(f"127.0.0.1:{port}"), f"cli-{mode}", 41) == 41
        children = _java_pids(parent=process.pid)
        assert children, "no JVM was started"
    finally:
        code = process.interrupt(60)
    out = process.output()
    assert code == 0, out
    assert "Kafka stopped" in out
    assert not children & _java_pids(), "a JVM outlived `kva broker`"


def _settings(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_server=bootstrap)
