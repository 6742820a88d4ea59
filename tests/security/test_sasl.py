"""SASL to a real broker: right credentials work (PLAIN, SCRAM), wrong ones fail clearly, secrets stay out of logs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from kva.frame import Frame
from kva.kafka import (
    FrameProducer,
    KafkaUnavailable,
    LatestFrameConsumer,
    TopicSpec,
    ensure_topics,
    wait_for_broker,
)
from kva.settings import KafkaSettings
from kva.zookeeper.cluster import ClusterSpec, KafkaCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ADMIN_SECRET = "admin-Secret-4711"
ALICE_SECRET = "alice-Secret-0815"
WRONG_SECRET = "not-the-Secret-1234"


@pytest.fixture(scope="module")
def sasl_cluster() -> Iterator[KafkaCluster]:
    spec = ClusterSpec(
        port=0, heap="384m", sasl_users=(("admin", ADMIN_SECRET), ("alice", ALICE_SECRET))
    )
    with KafkaCluster(spec) as cluster:
        yield cluster


def _alice(cluster: KafkaCluster, mechanism: str, password: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_server=cluster.bootstrap_server,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username="alice",
        sasl_password=password,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_right_credentials_round_trip(sasl_cluster: KafkaCluster, mechanism: str, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    settings = _alice(sasl_cluster, mechanism, ALICE_SECRET)
    topic = f"sasl-{mechanism.lower()}"
    ensure_topics(settings, [TopicSpec(topic, partitions=1)])
    consumer = LatestFrameConsumer(settings, [topic], f"g-{topic}", max_lag=None)
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment and time.monotonic() < deadline:
            consumer.poll(0.1)
        producer = FrameProducer(settings)
        producer.send_frame(topic, Frame("cam0", 5, time.time_ns(), 2, 2, b"jpeg"))
        assert producer.flush(20) == 0
        record = None
        while record is None and time.monotonic() < deadline:
            record = consumer.poll(0.5)
    finally:
        consumer.close()
    assert record is not None and record.frame().sequence == 5
    assert ALICE_SECRET not in caplog.text


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_wrong_password_fails_clearly(sasl_cluster: KafkaCluster, mechanism: str, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KafkaUnavailable, match="(?i)authentication") as caught:
        wait_for_broker(_alice(sasl_cluster, mechanism, WRONG_SECRET), timeout=5)
    assert WRONG_SECRET not in str(caught.value)
    assert WRONG_SECRET not in caplog.text


def test_a_service_with_wrong_credentials_says_so_without_the_secret(
    sasl_cluster: KafkaCluster,
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kva",
            "produce",
            "--source",
            "testsrc",
            "--log-level",
            "DEBUG",
            "--bootstrap-server",
            sasl_cluster.bootstrap_server,
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--sasl-mechanism",
            "PLAIN",
            "--sasl-username",
            "alice",
            "--broker-timeout",
            "5",
        ],
        env={**os.environ, "KVA_SASL_PASSWORD": WRONG_SECRET},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "authentication" in output.lower()
    assert WRONG_SECRET not in output


def test_the_password_has_no_command_line_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kva", "produce", "--sasl-password", "x"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "unrecognized arguments: --sasl-password" in result.stderr
