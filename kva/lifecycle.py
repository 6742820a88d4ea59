"""Graceful shutdown: the first SIGINT/SIGTERM sets a stop event, a second one exits hard.

A repeat within half a second is taken as the same request (tools such as
``timeout`` signal both the process and its group), not as a second Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType

logger = logging.getLogger(__name__)

_REPEAT_WINDOW = 0.5


def install_stop_handlers(stop: threading.Event | None = None) -> threading.Event:
    """Route SIGINT and SIGTERM to ``stop`` (created if not given) and return it."""
    event = stop or threading.Event()
    first_at: list[float] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        now = time.monotonic()
        if first_at and now - first_at[0] < _REPEAT_WINDOW:
            return
        if event.is_set():
            logger.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        logger.info("%s received: stopping (again to force)", signal.Signals(signum).name)
        first_at.append(now)
        event.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return event
