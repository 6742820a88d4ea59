"""Run several kva services as child processes: staged start, readiness, restarts, clean stop.

Used by ``kva up``. Each child's output is echoed line by line with a
coloured ``name |`` prefix; a child that dies is reported with its exit code
and last lines and restarted a bounded number of times; stopping sends
SIGTERM in reverse start order and SIGKILL after a timeout, so nothing is
left behind (children also die with the supervisor, see :mod:`kva.process`).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TextIO

from kva.process import ChildProcess

logger = logging.getLogger(__name__)

Status = Literal["waiting", "starting", "ready", "done", "failed", "stopped"]
#: One lock for every service's echo, so lines of two services never interleave.
_OUTPUT_LOCK = threading.Lock()
_COLOURS = ("36", "33", "35", "32", "34", "91", "96", "93")


@dataclass
class ServiceSpec:
    """One child: its argv, how to tell it is ready, and whether it is a one-shot job."""

    name: str
    argv: Sequence[str]
    ready: Callable[[], bool] = lambda: True
    ready_timeout: float = 60.0
    oneshot: bool = False
    env: dict[str, str] = field(default_factory=dict)


#: What ``stop_all`` keeps for each stage still to stop (a Python service exits in about 1 s).
STOP_RESERVE_S = 1.0


class ServiceFailed(RuntimeError):
    """A service did not become ready, or died more often than allowed."""


class ManagedService:
    """One service of the pipeline: its child process (while started) and its status."""

    def __init__(self, spec: ServiceSpec, colour: str, out: TextIO) -> None:
        self.spec = spec
        self.status: Status = "waiting"
        self.restarts: list[float] = []
        self._out = out
        self._prefix = (
            f"\033[{colour}m{spec.name:<10}|\033[0m " if out.isatty() else f"{spec.name:<10}| "
        )
        self.process: ChildProcess | None = None

    @property
    def tail(self) -> list[str]:
        """The last lines the current (or last) process printed."""
        return [] if self.process is None else list(self.process.tail)

    def start(self, process_group: int | None = None) -> None:
        env = os.environ | {"PYTHONUNBUFFERED": "1"} | self.spec.env
        self.process = ChildProcess(
            self.spec.name,
            self.spec.argv,
            on_line=self._echo,
            env=env,
            tail_lines=20,
            process_group=process_group,
            # Without its supervisor a service is stopped hard: one whose broker died with
            # it can hang in a graceful shutdown (issue 15: an orphaned consumer).
            death_signal=signal.SIGKILL,
        )
        self.status = "starting"

    def _echo(self, line: str) -> None:
        with _OUTPUT_LOCK:
            self._out.write(f"{self._prefix}{line}\n")
            self._out.flush()

    def drain_output(self, timeout: float = 2.0) -> None:
        """After the process exited: wait until its last lines are read."""
        if self.process is not None:
            self.process.drain_output(timeout)

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.exit_code()

    def running(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self, timeout: float) -> None:
        if self.process is None or not self.process.alive():
            self.status = "stopped" if self.status != "done" else "done"
            return
        self.process.stop(timeout)
        self.status = "stopped"


class Supervisor:
    """Starts stages of services in order and keeps them running until ``stop`` is set."""

    def __init__(
        self,
        stages: Sequence[Sequence[ServiceSpec]],
        stop: threading.Event,
        *,
        max_restarts: int = 3,
        restart_window: float = 120.0,
        out: TextIO = sys.stdout,
        process_group: int | None = None,
    ) -> None:
        self._stop = stop
        self._group = process_group
        self._max_restarts = max_restarts
        self._window = restart_window
        self.stages = [
            [ManagedService(spec, _COLOURS[i % len(_COLOURS)], out) for spec in stage]
            for i, stage in enumerate(stages)
        ]
        self.services = [service for stage in self.stages for service in stage]

    def status_line(self) -> str:
        return "  ".join(f"{s.spec.name}={s.status}" for s in self.services)

    def start(self) -> None:
        """Start every stage, each once the previous one is ready. Raises :class:`ServiceFailed`."""
        for stage in self.stages:
            for service in stage:
                service.start(self._group)
            logger.info("status: %s", self.status_line())
            self._wait_ready(stage)
            logger.info("status: %s", self.status_line())

    def _wait_ready(self, stage: list[ManagedService]) -> None:
        deadline = {s.spec.name: time.monotonic() + s.spec.ready_timeout for s in stage}
        pending = list(stage)
        while pending and not self._stop.is_set():
            for service in list(pending):
                if self._check_started(service, deadline[service.spec.name]):
                    pending.remove(service)
            self._stop.wait(0.2)

    def _check_started(self, service: ManagedService, deadline: float) -> bool:
        code = service.exit_code()
        if service.spec.oneshot and code == 0:
            service.status = "done"
            return True
        if code is not None:
            service.status = "failed"
            raise ServiceFailed(self._death_message(service, code))
        if not service.spec.oneshot and _safe(service.spec.ready):
            service.status = "ready"
            return True
        if time.monotonic() > deadline:
            service.status = "failed"
            limit = service.spec.ready_timeout
            raise ServiceFailed(f"{service.spec.name} not ready within {limit:.0f}s")
        return False

    def _death_message(self, service: ManagedService, code: int) -> str:
        service.drain_output()
        last = "\n    ".join(list(service.tail)[-5:]) or "(no output)"
        return f"{service.spec.name} exited with code {code}; last lines:\n    {last}"

    def watch(self) -> None:
        """Until ``stop``: restart services that die (bounded). Raises :class:`ServiceFailed`."""
        while not self._stop.wait(0.5):
            for service in self.services:
                code = service.exit_code()
                if service.spec.oneshot or code is None or service.status == "stopped":
                    continue
                logger.error("%s", self._death_message(service, code))
                now = time.monotonic()
                service.restarts = [t for t in service.restarts if now - t < self._window] + [now]
                if len(service.restarts) > self._max_restarts:
                    service.status = "failed"
                    raise ServiceFailed(
                        f"{service.spec.name} died {len(service.restarts)} times in "
                        f"{self._window:.0f}s: giving up"
                    )
                logger.warning(
                    "restarting %s (%d/%d)",
                    service.spec.name,
                    len(service.restarts),
                    self._max_restarts,
                )
                service.start(self._group)

    def stop_all(self, timeout: float = 4.5) -> None:
        """Stop every service, last started first, all within ``timeout`` seconds.

        A stage may use the time left but :data:`STOP_RESERVE_S` for each live stage
        after it; what has not stopped by then is killed, so the stages it depends on
        (the broker last) are still there while it stops.
        """
        deadline = time.monotonic() + timeout
        live = [stage for stage in reversed(self.stages) if any(s.running() for s in stage)]
        for index, stage in enumerate(live):
            after = len(live) - index - 1
            share = max(0.2, deadline - time.monotonic() - STOP_RESERVE_S * after)
            threads = [threading.Thread(target=s.stop, args=(share,)) for s in stage]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        for service in self.services:
            service.stop(0)  # the status of the stages that had nothing running
        logger.info("status: %s", self.status_line())


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except Exception:  # noqa: BLE001 - a readiness probe that fails means "not ready yet"
        return False
