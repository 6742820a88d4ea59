"""Every kva service listens on 127.0.0.1 unless told otherwise.

``kva serve``, ``kva video``, ``kva produce``, ``kva consume`` and ``kva broker`` are started
with their default hosts (only the ports chosen), and every listening TCP socket of each process
(and its children) is read from ``/proc/net/tcp{,6}``: all must be bound to loopback.

That ``kva video --token T`` enforces the token on every route is tested by the viewer's own
suite: ``tests/video/test_routes.py`` (``test_every_route_needs_the_token``,
``test_the_token_opens_every_route``, ``test_wrong_tokens_are_refused``) and, on the real
command, ``tests/video/test_kafka.py::test_kva_video_command_serves_kafka_frames_with_a_token``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from kva.ports import free_port
from kva.settings import KafkaSettings
from kva.tfserving.modelbuild.half_plus_two import build
from tests.support.net import LOOPBACK, listening
from tests.support.process import KvaProcess


def test_proc_parsing_sees_a_wildcard_socket() -> None:
    """The check would notice a socket on all interfaces (so it can fail)."""
    with socket.socket() as wide, socket.socket() as local:
        wide.bind(("0.0.0.0", 0))  # noqa: S104 - the point of the test
        wide.listen()
        local.bind(("127.0.0.1", 0))
        local.listen()
        found = listening(os.getpid())
        assert ("0.0.0.0", wide.getsockname()[1]) in found  # noqa: S104
        assert ("127.0.0.1", local.getsockname()[1]) in found


@pytest.mark.slow
def test_kva_broker_listens_on_localhost_by_default(start_kva) -> None:
    port = free_port()
    proc = start_kva("broker", "--port", str(port), "--heap", "256m")
    proc.wait_until(
        lambda: any(p == port for _h, p in listening(proc.pid)), 120, "kva broker to listen"
    )
    sockets = listening(proc.pid)
    assert len(sockets) >= 2, sockets  # the client and the controller listener
    wider = [s for s in sockets if s[0] not in LOOPBACK]
    assert not wider, f"kva broker listens beyond loopback: {wider}"


@pytest.mark.integration
def test_services_listen_on_localhost_by_default(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    tmp_path: Path,
    start_kva: Callable[..., KvaProcess],
) -> None:
    build(tmp_path / "models")
    frames, annotated = make_topic(suffix="frames"), make_topic(suffix="annotated")
    ports = {name: free_port() for name in ("serve", "video", "produce", "consume")}
    bootstrap = ["--bootstrap-server", kafka_settings.bootstrap_server]
    commands = {
        "serve": [
            "serve",
            "--rest_api_port",
            str(ports["serve"]),
            "--model_name",
            "half_plus_two",
            "--model_base_path",
            str(tmp_path / "models" / "half_plus_two"),
        ],
        "video": ["video", *bootstrap, "--topic", annotated, "--port", str(ports["video"])],
        "produce": [
            "produce",
            *bootstrap,
            "--topic",
            frames,
            "--source",
            "cam0=testsrc",
            "--metrics-port",
            str(ports["produce"]),
        ],
        "consume": [
            "consume",
            *bootstrap,
            "--input-topic",
            frames,
            "--output-topic",
            annotated,
            "--metadata-topic",
            "",
            "--passthrough",
            "--metrics-port",
            str(ports["consume"]),
        ],
    }
    started = {name: start_kva(*args) for name, args in commands.items()}
    urls = {
        "serve": f"http://127.0.0.1:{ports['serve']}/v1/models/half_plus_two",
        "video": f"http://127.0.0.1:{ports['video']}/healthz",
        "produce": f"http://127.0.0.1:{ports['produce']}/healthz",
        "consume": f"http://127.0.0.1:{ports['consume']}/healthz",
    }
    for name, proc in started.items():
        proc.wait_http(urls[name], 90)
    for name, proc in started.items():
        sockets = listening(proc.pid)
        assert ("127.0.0.1", ports[name]) in sockets, (name, sockets)
        wider = [s for s in sockets if s[0] != "127.0.0.1"]
        assert not wider, f"kva {name} listens beyond 127.0.0.1: {wider}"
