"""Run a real Apache Kafka cluster (KRaft, or ZooKeeper + Kafka) on this machine.

:class:`KafkaCluster` writes the configs from the templates in ``config/``,
formats KRaft storage, starts one JVM per node with ``java``, waits until the
brokers answer, and stops them cleanly (SIGTERM, then SIGKILL after a
timeout). The JVMs are also told to die with the process that started them,
so a crashed launcher leaves no ``java`` behind.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import shutil
import socket
import string
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from kva.kafka import MAX_MESSAGE_BYTES, KafkaUnavailable, wait_for_broker
from kva.ports import free_port, port_is_free
from kva.process import ChildProcess
from kva.settings import KafkaSettings
from kva.zookeeper.jars import jar_dir, require_tool

logger = logging.getLogger(__name__)

Mode = Literal["kraft", "zookeeper"]


class BrokerStartError(RuntimeError):
    """The cluster could not be started (port taken, JVM died, timeout)."""


@dataclass(frozen=True)
class ClusterSpec:
    """What to run. ``port=0`` picks free ports (tests)."""

    mode: Mode = "kraft"
    brokers: int = 1
    host: str = "127.0.0.1"
    port: int = 9092
    zookeeper_port: int = 2181
    data_dir: Path | None = None
    heap: str = "512m"
    broker_log_level: str = "INFO"
    #: AlwaysPreTouch commits the whole heap at start, so RSS is flat from then on.
    jvm_options: tuple[str, ...] = (
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-XX:+AlwaysPreTouch",
    )
    min_insync_replicas: int = field(default=1)
    #: ``(user, password)`` pairs: the client listener then requires SASL
    #: (PLAIN or SCRAM-SHA-256, KRaft only); the first user is the brokers' own.
    sasl_users: tuple[tuple[str, str], ...] = ()


def _template(name: str) -> string.Template:
    return string.Template(resources.files("kva.zookeeper").joinpath("config", name).read_text())


def java_process(name: str, argv: list[str], cwd: Path) -> ChildProcess:
    """One JVM whose output is logged under ``kva.zookeeper.<name>`` at the level its lines say."""
    log = logging.getLogger(f"kva.zookeeper.{name}")

    def log_line(line: str) -> None:
        if " ERROR " in line or " FATAL " in line:
            log.error("%s", line)
        elif " WARN " in line:
            log.warning("%s", line)
        else:
            log.debug("%s", line)

    return ChildProcess(name, argv, on_line=log_line, cwd=cwd)


class KafkaCluster:
    """A local Kafka cluster; use as a context manager or call start()/stop()."""

    def __init__(self, spec: ClusterSpec) -> None:
        if spec.brokers < 1:
            raise ValueError("brokers must be >= 1")
        if spec.sasl_users and spec.mode != "kraft":
            raise ValueError("SASL users are supported in KRaft mode only")
        self.spec = spec
        self._own_data_dir = spec.data_dir is None
        self.data_dir = Path(spec.data_dir or tempfile.mkdtemp(prefix="kva-kafka-"))
        self.ports = self._broker_ports()
        self.controller_ports = [free_port(spec.host) for _ in range(spec.brokers)]
        self.zookeeper_port = (
            (spec.zookeeper_port or free_port(spec.host)) if spec.mode == "zookeeper" else 0
        )
        self._java = require_tool(
            "java",
            "install a Java 17+ runtime (Debian: apt-get install -y openjdk-17-jre-headless)",
        )
        self._classpath = ""
        self._zookeeper: ChildProcess | None = None
        self.brokers: list[ChildProcess | None] = [None] * spec.brokers

    def _broker_ports(self) -> list[int]:
        spec = self.spec
        if spec.port == 0:
            return [free_port(spec.host) for _ in range(spec.brokers)]
        return [spec.port + i for i in range(spec.brokers)]

    @property
    def bootstrap_server(self) -> str:
        """``host:port[,host:port...]`` for clients."""
        return ",".join(f"{self.spec.host}:{port}" for port in self.ports)

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 90.0) -> KafkaCluster:
        """Resolve jars, write configs, start every JVM and wait until all brokers answer."""
        self._check_ports()
        self._classpath = str(jar_dir() / "*")
        started = time.monotonic()
        try:
            if self.spec.mode == "zookeeper":
                self._start_zookeeper(timeout)
            else:
                self._format_kraft_storage()
            for index in range(self.spec.brokers):
                self.start_broker(index)
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        logger.info(
            "Kafka (%s, %d broker%s) ready at %s in %.1fs",
            self.spec.mode,
            self.spec.brokers,
            "" if self.spec.brokers == 1 else "s",
            self.bootstrap_server,
            time.monotonic() - started,
        )
        return self

    def _check_ports(self) -> None:
        wanted = list(self.ports) + ([self.zookeeper_port] if self.zookeeper_port else [])
        for port in wanted:
            if not port_is_free(self.spec.host, port):
                raise BrokerStartError(
                    f"port {port} on {self.spec.host} is already in use (another Kafka or "
                    "ZooKeeper?): stop it or choose other ports with --port / --zookeeper-port"
                )

    def _jvm(self, name: str, main: str, *args: str, heap: str | None = None) -> ChildProcess:
        log4j = self.data_dir / "log4j.properties"
        if not log4j.exists():
            log4j.write_text(
                _template("log4j.properties").substitute(log_level=self.spec.broker_log_level)
            )
        size = heap or self.spec.heap
        argv = [
            self._java,
            f"-Xms{size}",
            f"-Xmx{size}",
            *self.spec.jvm_options,
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
            "-cp",
            self._classpath,
            main,
            *args,
        ]
        return java_process(name, argv, self.data_dir)

    def _common_properties(self) -> str:
        replication = min(3, self.spec.brokers)
        return _template("common.properties").substitute(
            max_message_bytes=MAX_MESSAGE_BYTES,
            socket_request_max_bytes=max(104857600, 4 * MAX_MESSAGE_BYTES),
            replication_factor=replication,
            min_insync_replicas=min(self.spec.min_insync_replicas, replication),
        )

    def _broker_config(self, index: int) -> Path:
        node_dir = self.data_dir / f"broker-{index}"
        node_dir.mkdir(parents=True, exist_ok=True)
        values = {
            "node_id": index + 1,
            "host": self.spec.host,
            "port": self.ports[index],
            "controller_port": self.controller_ports[index],
            "zookeeper_port": self.zookeeper_port,
            "log_dir": node_dir / "data",
            "quorum_voters": ",".join(
                f"{i + 1}@{self.spec.host}:{port}" for i, port in enumerate(self.controller_ports)
            ),
            "common": self._common_properties(),
            "client_protocol": "SASL_PLAINTEXT" if self.spec.sasl_users else "PLAINTEXT",
            "sasl": self._sasl_properties(),
        }
        name = "kraft-server.properties" if self.spec.mode == "kraft" else "zk-server.properties"
        path = node_dir / "server.properties"
        path.write_text(_template(name).substitute(values))
        return path

    def _sasl_properties(self) -> str:
        if not self.spec.sasl_users:
            return ""
        (admin, password), *_ = self.spec.sasl_users
        plain = " ".join(f'user_{user}="{secret}"' for user, secret in self.spec.sasl_users)
        return _template("sasl.properties").substitute(
            admin_user=admin, admin_password=password, plain_users=plain
        )

    def client_settings(self) -> KafkaSettings:
        """Settings a client needs to reach this cluster (as the brokers' own user with SASL)."""
        if not self.spec.sasl_users:
            return KafkaSettings(bootstrap_server=self.bootstrap_server)
        (user, password), *_ = self.spec.sasl_users
        return KafkaSettings(
            bootstrap_server=self.bootstrap_server,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_username=user,
            sasl_password=password,
        )

    def _format_kraft_storage(self) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        for index in range(self.spec.brokers):
            config = self._broker_config(index)
            if (config.parent / "data" / "meta.properties").exists():
                continue
            tool = self._jvm(
                f"format-{index + 1}",
                "kafka.tools.StorageTool",
                "format",
                # One argument: an id may start with "-", which a separate value would not survive.
                f"--cluster-id={cluster_id}",
                "-c",
                str(config),
                *(
                    arg
                    for user, secret in self.spec.sasl_users
                    for arg in ("--add-scram", f"SCRAM-SHA-256=[name={user},password={secret}]")
                ),
                heap="128m",
            )
            if tool.popen.wait(timeout=60) != 0:
                tool.stop(1)
                raise BrokerStartError("formatting KRaft storage failed:\n" + tool.last_lines())
            tool.stop(1)

    def _start_zookeeper(self, timeout: float) -> None:
        zk_dir = self.data_dir / "zookeeper"
        zk_dir.mkdir(parents=True, exist_ok=True)
        config = zk_dir / "zookeeper.properties"
        config.write_text(
            _template("zookeeper.properties").substitute(
                data_dir=zk_dir / "data",
                zookeeper_port=self.zookeeper_port,
                host=self.spec.host,
            )
        )
        self._zookeeper = self._jvm(
            "zookeeper",
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(config),
            heap="256m",
        )
        deadline = time.monotonic() + timeout
        while not _zookeeper_ok(self.spec.host, self.zookeeper_port):
            if not self._zookeeper.alive():
                raise BrokerStartError("ZooKeeper exited:\n" + self._zookeeper.last_lines())
            if time.monotonic() > deadline:
                raise BrokerStartError(f"ZooKeeper did not answer within {timeout:.0f}s")
            time.sleep(0.1)
        logger.info("ZooKeeper ready at %s:%d", self.spec.host, self.zookeeper_port)

    def start_broker(self, index: int) -> None:
        """Start broker ``index`` (again, after :meth:`kill_broker`)."""
        current = self.brokers[index]
        if current is not None and current.alive():
            return
        config = self._broker_config(index)
        self.brokers[index] = self._jvm(f"kafka-{index + 1}", "kafka.Kafka", str(config))

    def kill_broker(self, index: int) -> None:
        """SIGKILL broker ``index`` (fault injection)."""
        broker = self.brokers[index]
        if broker is not None:
            broker.kill()

    def stop_broker(self, index: int, timeout: float = 30.0) -> None:
        """Stop broker ``index`` cleanly."""
        broker = self.brokers[index]
        if broker is not None:
            broker.stop(timeout)

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until every broker is registered and answers metadata requests."""
        settings = self.client_settings()
        deadline = time.monotonic() + timeout
        while True:
            dead = [b for b in self.brokers if b is not None and not b.alive()]
            if dead:
                raise BrokerStartError(
                    f"{dead[0].name} exited with code {dead[0].exit_code()}:\n"
                    + dead[0].last_lines()
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerStartError(f"Kafka did not become ready within {timeout:.0f}s")
            try:
                if wait_for_broker(settings, timeout=min(2.0, remaining)) >= self.spec.brokers:
                    return
            except KafkaUnavailable:
                pass
            time.sleep(0.2)

    def alive(self) -> bool:
        """True while every JVM of the cluster runs."""
        processes = [*self.brokers, self._zookeeper]
        return all(p.alive() for p in processes if p is not None)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop brokers, then ZooKeeper; remove a temporary data dir."""
        threads = [
            threading.Thread(target=broker.stop, args=(timeout,))
            for broker in self.brokers
            if broker is not None
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._zookeeper is not None:
            self._zookeeper.stop(timeout)
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _zookeeper_ok(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1) as sock:
        sock.sendall(b"ruok")
        return sock.recv(16) == b"imok"
    return False
