"""SASL to a real broker: right credentials work (PLAIN, SCRAM), wrong ones fail clearly, secrets stay out of logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from kva.kafka import KafkaUnavailable, wait_for_broker
from kva.settings import KafkaSettings
from kva.zookeeper.cluster import ClusterSpec, KafkaCluster
from tests.support.kafka import round_trip
from tests.support.process import run_kva

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
    assert round_trip(settings, f"sasl-{mechanism.lower()}", 5) == 5
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
    result = run_kva(
        "produce",
        "--source", "testsrc",
        "--log-level", "DEBUG",
        "--bootstrap-server", sasl_cluster.bootstrap_server,
        "--security-protocol", "SASL_PLAINTEXT",
        "--sasl-mechanism", "PLAIN",
        "--sasl-username", "alice",
        "--broker-timeout", "5",
        env={"KVA_SASL_PASSWORD": WRONG_SECRET},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "authentication" in output.lower()
    assert WRONG_SECRET not in output


def test_the_password_has_no_command_line_flag() -> None:
    result = run_kva("produce", "--sasl-password", "x", timeout=30)
    assert result.returncode == 2 and "unrecognized arguments: --sasl-password" in result.stderr
