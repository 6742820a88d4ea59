"""The guard of one ``kva up``: when the supervisor is gone, nothing it started stays.

``kva up`` starts this first, as the leader of a new process group that every service
then joins, with a pipe on its stdin. The guard reads the pipe until it ends, which
happens however the supervisor ends (a clean exit, a crash, ``kill -9``). Then it
stops what is left of the group (SIGTERM, a short wait, SIGKILL: a service whose broker
is gone may hang in its own shutdown, so the grandchildren go too) and removes the work
folder.

Usage: ``python -m kva.launcher.guard WORKDIR``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time

from kva.process import group_pids

#: How long the services get to stop after SIGTERM before SIGKILL.
GRACE_S = 2.0


def _others(pgid: int) -> set[int]:
    return group_pids(pgid) - {os.getpid()}


def _signal_all(pids: set[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def clean_up(workdir: str, pgid: int, grace: float = GRACE_S) -> None:
    """Stop every other process of group ``pgid`` and remove ``workdir``."""
    left = _others(pgid)
    if left:
        _signal_all(left, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while left and time.monotonic() < deadline:
            time.sleep(0.05)  # polling /proc: there is nothing to wait on for non-children
            left = _others(pgid)
        _signal_all(left, signal.SIGKILL)
    shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides, not the terminal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    clean_up(argv[0], os.getpgid(0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
