"""Nothing a test starts outlives the test session.

At the start of the session the test process becomes a *child subreaper*
(``PR_SET_CHILD_SUBREAPER``): a process whose parent dies is re-parented to the
test process instead of to init, so an escaped grandchild (the issue-15 ``kva serve``
that was still alive 57 minutes after ``make test``) stays a descendant and is
found here. At the end (after the session fixtures, the broker among them, are torn
down) :func:`leftover_processes` waits a bounded time for the descendants to exit
and returns those still alive; ``tests/conftest.py`` fails the run with their command
lines, then kills them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

from kva.process import descendant_pids, is_running

_PR_SET_CHILD_SUBREAPER = 36
#: How long the descendants get to exit at the end of the session (Chromium's zygotes,
#: the broker's JVMs after their SIGTERM).
GRACE_S = 10.0


def become_subreaper() -> None:
    """Orphaned descendants of this process get it as their parent (Linux)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)


def reap_zombies() -> None:
    """Collect the exit status of re-parented children that already exited."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:300]


def leftover_processes(grace: float = GRACE_S) -> dict[int, str]:
    """Descendants of this process still alive after ``grace`` seconds: pid -> command line."""
    deadline = time.monotonic() + grace
    while True:
        reap_zombies()
        alive = {pid for pid in descendant_pids(os.getpid()) if is_running(pid)}
        if not alive or time.monotonic() >= deadline:
            return {pid: command_line(pid) for pid in sorted(alive)}
        time.sleep(0.1)  # polling /proc: there is nothing to wait on for grandchildren


def kill_all(pids: dict[int, str]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
