"""Child processes: they never outlive their parent, and can be listed (Linux /proc).

:class:`ChildProcess` is the one way kva runs a long-lived child (``kva up``'s
services, the broker's JVMs): it dies with its parent, its output is read line
by line, its last lines are kept for error messages, and stopping it is
SIGTERM, a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import functools
import logging
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


def dying_with_parent(argv: Sequence[str], signum: int = signal.SIGTERM) -> list[str]:
    """``argv`` run under ``setpriv --pdeathsig``: ``signum`` to it when its parent dies.

    Linux only (util-linux's ``setpriv``, part of every Debian install). The signal
    follows the *thread* that started the child, so start long-lived children from
    the main thread. Without ``setpriv`` (logged once), ``argv`` is returned as it is.

    Why not a ``preexec_fn`` calling ``prctl``: a ``preexec_fn`` makes
    :mod:`subprocess` use ``fork()`` instead of ``vfork()``, and ``fork()`` runs the
    ``pthread_atfork`` handlers of every library loaded. gRPC's handlers, in a process
    that has used gRPC (the consumer, the tests), now and then left the child dead
    before its ``exec`` with "epoll_wait error: Bad file descriptor".
    """
    setpriv = _setpriv()
    if setpriv is None:
        return list(argv)
    return [setpriv, f"--pdeathsig={signal.Signals(signum).name}", "--", *argv]


@functools.cache
def _setpriv() -> str | None:
    found = shutil.which("setpriv")
    if found is None:
        logger.warning(
            "setpriv (util-linux) not found: child processes will not stop when kva dies"
        )
    return found


def _process_stats() -> Iterator[tuple[int, list[str]]]:
    """``(pid, fields of /proc/<pid>/stat after the command name)`` of every process."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            yield int(entry.name), stat[stat.rindex(")") + 2 :].split()


def group_pids(pgid: int) -> set[int]:
    """Every live (not zombie) process of process group ``pgid`` (from /proc)."""
    return {pid for pid, fields in _process_stats() if int(fields[2]) == pgid and fields[0] != "Z"}


def parent_pids() -> dict[int, int]:
    """``pid -> parent pid`` of every process on this machine (from /proc)."""
    return {pid: int(fields[1]) for pid, fields in _process_stats()}


def descendant_pids(root: int) -> set[int]:
    """Every process below ``root`` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parent_pids().items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class ChildProcess:
    """A started child: output handed to ``on_line`` line by line, the last lines kept in ``tail``.

    Args:
        name: how logs name the child.
        argv: the program and its arguments (no shell).
        on_line: called with each output line (stdout and stderr merged), without its newline.
        env: the whole environment of the child (None: this process's).
        cwd: the child's working folder.
        tail_lines: how many of the last output lines ``tail`` keeps.
        process_group: the process group to join (0: a new one; None: the parent's), so that
            a terminal's Ctrl-C reaches only the parent, which stops its children in order.
        death_signal: what the child gets when the thread that started it dies.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        on_line: Callable[[str], None] = lambda _line: None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        tail_lines: int = 40,
        process_group: int | None = None,
        death_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self._on_line = on_line
        self.popen = subprocess.Popen(  # noqa: S603 - argv built by kva, no shell
            dying_with_parent(argv, death_signal),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            process_group=process_group,
        )
        self._pump = threading.Thread(target=self._read_output, name=f"{name}-output", daemon=True)
        self._pump.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read_output(self) -> None:
        if self.popen.stdout is None:
            return
        for raw in self.popen.stdout:
            line = raw.rstrip("\n")
            self.tail.append(line.rstrip())
            self._on_line(line)

    def exit_code(self) -> int | None:
        """None while running, else the exit code (negative: killed by that signal)."""
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send_signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def drain_output(self, timeout: float = 2.0) -> None:
        """After the child exited: wait until its last lines are read."""
        self._pump.join(timeout)

    def last_lines(self, count: int | None = None) -> str:
        """The last output lines, joined; after an exit, read to the end first (bounded)."""
        if not self.alive():
            self.drain_output()
        lines = list(self.tail)
        return "\n".join(lines[-count:] if count else lines)

    def stop(self, timeout: float) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0fs: killing it", self.name, timeout)
                self.popen.kill()
                self.popen.wait()
        self.drain_output(timeout=5)

    def kill(self) -> None:
        """SIGKILL at once (fault injection, or a second Ctrl-C)."""
        if self.alive():
            self.popen.kill()
            self.popen.wait()
