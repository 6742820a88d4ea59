"""MQTT in tests and benchmarks: a real Mosquitto on a free localhost port, and a subscriber that keeps
every message.

:class:`Mosquitto` runs Debian's ``mosquitto`` (``scripts/setup.sh`` installs it) as a
child of the test, never a system service, with persistence in a folder of the test:
stopped (SIGTERM, which saves its state) and started again on the same port, it keeps
the subscriber's session, so messages published while the subscriber was away still
reach it. :class:`MqttCollector` is that subscriber: a persistent session (QoS 1,
``clean_session=False``) that reconnects by itself.
"""

from __future__ import annotations

import getpass
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from kva.ports import free_port
from kva.process import ChildProcess

#: Debian's broker and its password tool (package ``mosquitto``).
MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
#: Debian's ``openssl`` (``scripts/setup.sh test`` installs it): the test CA.
OPENSSL = "openssl"


@dataclass(frozen=True)
class TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(folder: Path) -> TlsFiles:
    """Create a CA and a server certificate (subjectAltName IP:127.0.0.1) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.crt", folder / "ca.key"
    cert, key, csr = folder / "server.crt", folder / "server.key", folder / "server.csr"
    san = folder / "san.cnf"
    san.write_text("subjectAltName=IP:127.0.0.1\n")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
         str(ca), "-days", "1", "-subj", "/CN=kva test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(san)],
    ]  # fmt: skip
    for step in steps:
        subprocess.run([OPENSSL, *step], check=True, capture_output=True)
    return TlsFiles(ca, cert, key)


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Mosquitto:
    """A Mosquitto broker on ``127.0.0.1:port`` (a free one unless given)."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        start: bool = True,
        tls: TlsFiles | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.tls = tls
        data_dir.mkdir(parents=True, exist_ok=True)
        self.config = data_dir / "mosquitto.conf"
        security = "allow_anonymous true\n"
        if users:
            passwords = data_dir / "passwords"
            passwords.write_text("")
            for user, password in users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(passwords), user, password],
                    check=True,
                    capture_output=True,
                )
            security = f"allow_anonymous false\npassword_file {passwords}\n"
        if tls:
            security += f"cafile {tls.ca}\ncertfile {tls.cert}\nkeyfile {tls.key}\n"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + security
            # started as root, mosquitto would switch to the user "mosquitto", who cannot
            # write the persistence file into this folder: stay who we are
            + f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {data_dir}/\n"
            "max_queued_messages 100000\n"
            "log_dest stdout\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        self.process: ChildProcess | None = None
        if start:
            self.start()

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        self.process = ChildProcess("mosquitto", [MOSQUITTO, "-c", str(self.config)])
        _wait(
            lambda: _accepts(self.port) or not self.process or not self.process.alive(),
            20,
            f"mosquitto on port {self.port}",
        )
        if not self.process.alive():
            raise AssertionError(f"mosquitto exited:\n{self.process.last_lines()}")
        return self

    def stop(self) -> None:
        """SIGTERM (Mosquitto saves its sessions and queued messages), then gone."""
        if self.process is not None:
            self.process.stop(10)
            self.process = None


@dataclass(frozen=True)
class MqttMessage:
    topic: str
    payload: bytes
    arrived: float


class MqttCollector:
    """Subscribes to ``topic`` at QoS 1 with a persistent session; keeps every message."""

    def __init__(
        self,
        port: int,
        topic: str = "#",
        *,
        ca_file: Path | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.messages: list[MqttMessage] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._topic = topic
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"test-{uuid.uuid4().hex[:12]}",
            clean_session=False,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=1)
        if username is not None:
            client.username_pw_set(username, password)
        if ca_file is not None:
            client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_args: self._subscribed.set()
        client.on_message = self._on_message
        self._client = client
        client.connect("127.0.0.1", port, keepalive=10)
        client.loop_start()
        _wait(self._subscribed.is_set, 20, "the MQTT subscription")

    def _on_connect(self, client: mqtt.Client, *_args: object) -> None:
        client.subscribe(self._topic, qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(MqttMessage(msg.topic, msg.payload, time.monotonic()))

    def snapshot(self) -> list[MqttMessage]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
