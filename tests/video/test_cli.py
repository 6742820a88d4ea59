"""`kva video` fails clearly: bad settings and an unreachable broker (no broker needed)."""

from __future__ import annotations

import pytest

from kva.ports import free_port
from tests.support.process import run_kva

pytestmark = pytest.mark.subprocess  # every test runs a `kva` command


def test_kva_video_fails_clearly_without_a_broker() -> None:
    proc = run_kva(
        "video", "--bootstrap-server", f"127.0.0.1:{free_port()}", "--broker-timeout", "2"
    )
    output = proc.stderr
    assert proc.returncode == 1
    assert "cannot reach Kafka at 127.0.0.1:" in output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--port", "70000"], "KVA_VIDEO_PORT: Input should be less than or equal to 65535"),
        (["--max-fps", "0"], "KVA_VIDEO_MAX_FPS: Input should be greater than 0"),
        (["--topic", "bad topic"], "'bad topic' is not a valid Kafka topic name"),
    ],
)
def test_kva_video_rejects_bad_settings(args, message) -> None:
    proc = run_kva("video", *args)
    output = proc.stderr
    assert proc.returncode == 2
    assert message in output
