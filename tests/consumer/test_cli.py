"""``kva consume`` as a user runs it: clear errors, graceful shutdown."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.support.process import run_kva

pytestmark = pytest.mark.subprocess  # every test runs a `kva` command


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_kva("consume", *args, timeout=timeout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give at least one --model"),
        (["--model", "m=http://h:1/v3/models/m"], "--model / KVA_CONSUME_MODEL"),
        (["--passthrough", "--max-frame-age", "-1"], "--max-frame-age"),
        (["--passthrough", "--bootstrap-server", "nohost"], "is not HOST:PORT"),
    ],
)
def test_bad_flags_exit_2_with_a_message(args, message) -> None:
    result = _run(args)
    assert result.returncode == 2
    assert message in result.stderr


def test_unreachable_broker_is_a_clear_error() -> None:
    result = _run(["--passthrough", "--bootstrap-server", "127.0.0.1:1", "--broker-timeout", "1"])
    assert result.returncode == 1
    assert "cannot reach Kafka at 127.0.0.1:1" in result.stderr


@pytest.mark.integration
def test_missing_model_and_dead_server_are_clear_errors(
    kafka_bootstrap, model_servers, unique_name
) -> None:
    server = model_servers(latency=0)
    common = ["--bootstrap-server", kafka_bootstrap, "--metrics-port", "0"]
    missing = _run([*common, "--model", f"nope=http://127.0.0.1:{server.port}/v1/models/nope"])
    assert missing.returncode == 1
    assert "model nope" in missing.stderr and "does not serve it" in missing.stderr
    server.stop()
    dead = _run([*common, "--model", f"m={server.url()}", "--start-timeout", "1"])
    assert dead.returncode == 1
    assert "model m: no replica answered" in dead.stderr


@pytest.mark.integration
def test_sigterm_stops_gracefully(
    kafka_settings, topics, unique_name, model_servers, tmp_path, start_kva
) -> None:
    server = model_servers(latency=0)
    log = tmp_path / "consume.log"
    proc = start_kva(
        "consume",
        "--bootstrap-server", kafka_settings.bootstrap_server,
        "--input-topic", topics.input,
        "--output-topic", topics.output,
        "--metadata-topic", topics.metadata,
        "--metrics-port", "0",
        env={"KVA_CONSUME_MODEL": f"mobilenet_v2={server.url('v2')}"},
        log=log,
    )  # fmt: skip
    proc.wait_line("assigned [(", 30)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert time.monotonic() - started < 15
    text = log.read_text()
    assert "model mobilenet_v2: classifier" in text
    assert "consumer stopped" in text
