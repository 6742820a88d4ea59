"""Graceful shutdown: the first SIGINT/SIGTERM sets a stop event, a second one exits hard."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

logger = logging.getLogger(__name__)


def install_stop_handlers(stop: threading.Event | None = None) -> threading.Event:
    """Route SIGINT and SIGTERM to ``stop`` (created if not given) and return it."""
    event = stop or threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        if event.is_set():
            logger.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        logger.info("%s received: stopping (again to force)", signal.Signals(signum).name)
        event.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return event
