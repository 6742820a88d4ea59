"""``kva consume`` as a user runs it: clear errors, graceful shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.consumer.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVA_")}
    return subprocess.run(
        [sys.executable, "-m", "kva", "consume", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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
    kafka_settings, topics, unique_name, model_servers, tmp_path
) -> None:
    server = model_servers(latency=0)
    log = tmp_path / "consume.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVA_")}
    env["KVA_CONSUME_MODEL"] = f"mobilenet_v2={server.url('v2')}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kva",
                "consume",
                "--bootstrap-server",
                kafka_settings.bootstrap_server,
                "--input-topic",
                topics.input,
                "--output-topic",
                topics.output,
                "--metadata-topic",
                topics.metadata,
                "--metrics-port",
                "0",
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "assigned [(" in log.read_text(), 30, "consumer did not start")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert time.monotonic() - started < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    text = log.read_text()
    assert "model mobilenet_v2: classifier" in text
    assert "consumer stopped" in text
