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
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from kva.ports import free_port
from kva.settings import KafkaSettings
from kva.tfserving.modelbuild.half_plus_two import build

ROOT = Path(__file__).resolve().parents[2]
LISTEN = "0A"
#: Loopback as /proc shows it (Java listens on the IPv4-mapped IPv6 address).
LOOPBACK = ("127.0.0.1", "::ffff:127.0.0.1", "::1")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _address(hex_address: str) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # /proc prints IPv6 as four little-endian 32-bit words
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        ip = socket.inet_ntop(socket.AF_INET6, words)
    return ip, int(port, 16)


def listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket of ``pid`` and its children."""
    inodes: set[str] = set()
    for member in _tree(pid):
        inodes |= _socket_inodes(member)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN and fields[9] in inodes:
                found.append(_address(fields[1]))
    return found


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
def test_kva_broker_listens_on_localhost_by_default(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kva", "broker", "--port", str(port), "--heap", "256m"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(p == port for _h, p in listening(proc.pid)):
            if proc.poll() is not None:
                pytest.fail(f"kva broker exited: {proc.communicate()[0][-3000:]}")
            assert time.monotonic() < deadline, "kva broker did not listen"
            time.sleep(0.2)
        sockets = listening(proc.pid)
        assert len(sockets) >= 2, sockets  # the client and the controller listener
        wider = [s for s in sockets if s[0] not in LOOPBACK]
        assert not wider, f"kva broker listens beyond loopback: {wider}"
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture
def started() -> Iterator[list[tuple[str, subprocess.Popen[str]]]]:
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    yield procs
    for _name, proc in procs:
        proc.terminate()
    for _name, proc in procs:
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.mark.integration
def test_services_listen_on_localhost_by_default(
    kafka_settings: KafkaSettings,
    make_topic: Callable[..., str],
    tmp_path: Path,
    started: list[tuple[str, subprocess.Popen[str]]],
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
    for name, args in commands.items():
        proc = subprocess.Popen(
            [sys.executable, "-m", "kva", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append((name, proc))
    urls = {
        "serve": f"http://127.0.0.1:{ports['serve']}/v1/models/half_plus_two",
        "video": f"http://127.0.0.1:{ports['video']}/healthz",
        "produce": f"http://127.0.0.1:{ports['produce']}/healthz",
        "consume": f"http://127.0.0.1:{ports['consume']}/healthz",
    }
    deadline = time.monotonic() + 90
    for name, proc in started:
        while True:
            try:
                if requests.get(urls[name], timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"kva {name} exited: {proc.communicate()[0][-3000:]}")
            assert time.monotonic() < deadline, f"kva {name} did not answer {urls[name]}"
            time.sleep(0.2)
    for name, proc in started:
        sockets = listening(proc.pid)
        assert ("127.0.0.1", ports[name]) in sockets, (name, sockets)
        wider = [s for s in sockets if s[0] != "127.0.0.1"]
        assert not wider, f"kva {name} listens beyond 127.0.0.1: {wider}"
