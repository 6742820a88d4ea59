"""Docker Compose for real on a machine without a Docker engine: Podman's Docker API.

:class:`PodmanApi` starts ``podman system service`` on a socket of its own (settings
from ``containers.conf`` here, through ``CONTAINERS_CONF``; runc, cgroupfs) and, since
Podman cannot run healthchecks by itself without systemd, a loop that runs ``podman
healthcheck run`` on every container that has one: every few seconds while it is
starting, less often once it is healthy. :meth:`PodmanApi.compose` runs the Docker
Compose v2 binary that ``scripts/setup-containers.sh`` builds into ``~/.cache/kva/bin``
against that socket, with the classic builder (``DOCKER_BUILDKIT=0``: BuildKit would
pull ``moby/buildkit``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from kva.paths import cache_root
from kva.process import ChildProcess
from tests.support.wait import wait_for

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CONTAINERS_CONF = HERE / "containers.conf"
PODMAN = "podman"
#: Found on the PATH of :attr:`PodmanApi.env`, which starts with :func:`compose_bin_dir`.
COMPOSE = "docker-compose"
#: Seconds between two healthchecks of a container that is starting / already healthy.
CHECK_STARTING = 3.0
CHECK_HEALTHY = 20.0


def compose_bin_dir() -> Path:
    """Where ``scripts/setup-containers.sh`` builds Docker Compose (its ``CACHE_BIN_TOOLS``)."""
    return cache_root() / "bin"


def podman_environment() -> dict[str, str]:
    """This environment with Podman's settings file (nothing system-wide is changed)."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = 60, check: bool = True) -> str:
    """Output of one ``podman`` command (CalledProcessError with its stderr on failure)."""
    done = subprocess.run(
        [PODMAN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=podman_environment(),
    )
    if check and done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, ["podman", *args], done.stdout, done.stderr
        )
    return done.stdout


def project_leftovers(project: str) -> dict[str, list[str]]:
    """Containers, networks and volumes of a compose project that still exist."""
    label = f"label=com.docker.compose.project={project}"
    return {
        kind: [name for name in podman(*command).split() if name]
        for kind, command in {
            "containers": ("ps", "-a", "--filter", label, "--format", "{{.Names}}"),
            "networks": ("network", "ls", "--filter", label, "--format", "{{.Name}}"),
            "volumes": ("volume", "ls", "--filter", label, "--format", "{{.Name}}"),
        }.items()
    }


class HealthcheckLoop:
    """Runs each container's healthcheck, as the Docker engine would, until stopped."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._last: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="healthchecks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self._check_due()
            except (subprocess.SubprocessError, OSError) as error:
                logger.warning("healthcheck loop: %s", error)

    def _containers(self, health: str) -> list[str]:
        return podman("ps", "-q", "--filter", f"health={health}", timeout=30).split()

    def _check_due(self) -> None:
        now = time.monotonic()
        due = [
            (container, health)
            for health in ("starting", "unhealthy", "healthy")
            for container in self._containers(health)
            if now - self._last.get(container, 0.0)
            >= (CHECK_HEALTHY if health == "healthy" else CHECK_STARTING)
        ]
        for container, _health in due:
            if self._stop.is_set():
                return
            self._last[container] = time.monotonic()
            # Exit 1 is "unhealthy", which Podman records; a container that went away
            # meanwhile is an error here and of no interest.
            podman("healthcheck", "run", container, timeout=60, check=False)


class PodmanApi:
    """``podman system service`` on a socket of its own, with the healthcheck loop.

    Use as a context manager; :meth:`compose` runs ``docker-compose`` against it.
    """

    def __init__(self) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="kva-podman-"))
        self.socket = self._tmp / "podman.sock"
        self._service: ChildProcess | None = None
        self._health = HealthcheckLoop()
        self.env: dict[str, str] = {
            **podman_environment(),
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_BUILDKIT": "0",
            # A config folder of its own: no credentials or contexts of this machine.
            "DOCKER_CONFIG": str(self._tmp / "docker-config"),
            "COMPOSE_PROGRESS": "plain",
            "COMPOSE_ANSI": "never",
            "PATH": f"{compose_bin_dir()}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        }

    def __enter__(self) -> PodmanApi:
        self._service = ChildProcess(
            "podman-service",
            [PODMAN, "system", "service", "--time=0", f"unix://{self.socket}"],
            env=podman_environment(),
            on_line=lambda line: logger.debug("podman: %s", line),
        )
        wait_for(lambda: self.socket.exists() or not self._alive(), 30, "the Podman API socket")
        assert self._alive(), self._service.last_lines()
        self._health.start()
        return self

    def _alive(self) -> bool:
        return self._service is not None and self._service.alive()

    def __exit__(self, *_exc: object) -> None:
        self._health.stop()
        if self._service is not None:
            self._service.stop(timeout=30)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def compose(
        self,
        *args: str,
        timeout: float = 600,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker-compose ARGS`` (output captured; AssertionError with it on failure)."""
        started = time.monotonic()
        done = subprocess.run(  # noqa: S603 - our own binary, argv from the test
            [COMPOSE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**self.env, **(env or {})},
            cwd=ROOT,
        )
        logger.info(
            "docker-compose %s: exit %d in %.1fs", " ".join(args), done.returncode,
            time.monotonic() - started,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker-compose {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
            )
        return done
