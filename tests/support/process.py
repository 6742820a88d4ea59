"""``kva`` commands as child processes of a test, the way a user runs them.

:class:`KvaProcess` runs ``python -m kva ARGS`` in the background on
:class:`kva.process.ChildProcess` (the one child-process class of kva: it dies
with the test process, its output is read line by line): every line is kept
(and written to a log file when given), waits fail early with the output when
the process exits, and :meth:`KvaProcess.stop` is SIGTERM, a bounded wait,
then SIGKILL. :func:`run_kva` runs a command to its end.

Children get this environment without its ``KVA_*`` variables (a developer's
own settings must not change a test), plus what the test passes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

import requests

from kva.process import ChildProcess
from tests.support.wait import STEP, wait_for

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])
ROOT = Path(__file__).resolve().parents[2]
#: Fixtures that start child processes: ``tests/conftest.py`` marks every test using one
#: ``subprocess``, so ``make test-fast`` (``-m "not subprocess ..."``) leaves it out.
PROCESS_FIXTURES: set[str] = set()


def starts_processes(fixture: F) -> F:
    """Declare that a fixture starts child processes (put it under ``@pytest.fixture``)."""
    PROCESS_FIXTURES.add(fixture.__name__)
    return fixture


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``KVA_*`` variables, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVA_")}
    return env | dict(extra or {})


def run_kva(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m kva ARGS`` to its end; stdout and stderr captured apart (text)."""
    return subprocess.run(
        [sys.executable, "-m", "kva", *args],
        cwd=ROOT,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class KvaProcess:
    """``python -m kva ARGS`` running in the background.

    Args:
        args: the ``kva`` command line (``"video", "--port", "8080"``).
        env: variables added to the (``KVA_``-free) environment.
        log: a file every output line is appended to (it survives restarts of a service).
        name: how failure messages name the process (default: the sub-command).
        command: how ``kva`` is started (default ``python -m kva``; the console script
            ``.venv/bin/kva`` to test what users run).
        cwd: the working folder (default: the repository).
    """

    def __init__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        name: str | None = None,
        command: Sequence[str] = (sys.executable, "-m", "kva"),
        cwd: Path = ROOT,
    ) -> None:
        self.args = args
        self.name = name or f"kva {args[0] if args else ''}".strip()
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._log: IO[str] | None = log.open("a", encoding="utf-8") if log else None
        self.child = ChildProcess(
            self.name,
            [*command, *args],
            on_line=self._line,
            env=clean_env(env),
            cwd=cwd,
        )

    def _line(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)
            if self._log is not None:
                self._log.write(line + "\n")
                self._log.flush()

    @property
    def pid(self) -> int:
        return self.child.pid

    @property
    def returncode(self) -> int | None:
        """None while running, else the exit code (negative: killed by that signal)."""
        return self.child.exit_code()

    def alive(self) -> bool:
        return self.child.alive()

    def output(self) -> str:
        """Every line printed so far (stdout and stderr merged)."""
        with self._lock:
            return "\n".join(self.lines)

    def tail(self, count: int = 40) -> str:
        with self._lock:
            return "\n".join(self.lines[-count:])

    def check_running(self) -> None:
        """AssertionError with the last output lines when the process has exited."""
        code = self.returncode
        if code is not None:
            self.child.drain_output()
            raise AssertionError(f"{self.name} exited with {code}:\n{self.tail()}")

    def wait_until(
        self, condition: Callable[[], T], timeout: float, what: str, step: float = STEP
    ) -> T:
        """:func:`wait_until` while this process runs."""
        return wait_until(condition, timeout, what, processes=[self], step=step)

    def wait_http(self, url: str, timeout: float, headers: Mapping[str, str] | None = None) -> None:
        """Until ``url`` answers 200 (connection errors count as "not yet")."""

        def ok() -> bool:
            return requests.get(url, headers=dict(headers or {}), timeout=2).status_code == 200

        self.wait_until(ok, timeout, f"{self.name} to answer {url}")

    def wait_line(self, needle: str, timeout: float) -> str:
        """The first output line containing ``needle`` (waiting for it while the process runs)."""

        def found() -> str | None:
            with self._lock:
                return next((line for line in self.lines if needle in line), None)

        return self.wait_until(found, timeout, f"{needle!r} in the output of {self.name}")

    def send_signal(self, signum: int) -> None:
        self.child.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the exit (TimeoutExpired after ``timeout``); the exit code, output read."""
        code = self.child.popen.wait(timeout)
        self.child.drain_output()
        return code

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; the exit code."""
        self.child.stop(timeout)
        self._close_log()
        return self.child.popen.returncode

    def interrupt(self, timeout: float = 30) -> int:
        """SIGINT (Ctrl-C) and wait for the exit (then :meth:`stop`); the exit code."""
        if self.alive():
            self.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.wait(timeout)
        return self.stop()

    def kill(self) -> None:
        """SIGKILL at once: the process vanishes mid-work, as a crashed one would."""
        self.child.kill()
        self.child.drain_output()
        self._close_log()

    def _close_log(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> KvaProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    *,
    processes: Iterable[KvaProcess] = (),
    step: float = STEP,
) -> T:
    """:func:`~tests.support.wait.wait_for` that fails at once when one of ``processes`` exits.

    An :class:`OSError` from ``condition`` (a refused connection while a server
    starts) counts as "not yet".
    """
    watched = list(processes)

    def check() -> T | None:
        try:
            value = condition()
        except OSError:
            value = None
        if not value:  # what a process did before it exited still counts
            for process in watched:
                process.check_running()
        return value

    return wait_for(check, timeout, what, step)
