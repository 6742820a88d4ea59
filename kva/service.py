"""The one shape of a kva service (producer, consumer, viewer, model server): start, run, close.

``start`` connects and binds (and raises when it cannot), ``run`` does the
work until the stop event is set and returns the exit status, ``close``
releases everything within a bounded time and is safe after a failed start.
:func:`run_service` is the whole life of one, as each ``kva <command>`` runs it.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

logger = logging.getLogger(__name__)


class Service(Protocol):
    """What every kva service offers its command line (and tests)."""

    def start(self, stop: threading.Event) -> None:
        """Connect and bind; raise when the service cannot start."""

    def run(self, stop: threading.Event) -> int:
        """Work until ``stop`` is set; the exit status."""

    def close(self) -> None:
        """Release everything (bounded in time); safe after a failed or missing start."""


def run_service(
    service: Service,
    stop: threading.Event,
    start_errors: tuple[type[BaseException], ...] = (OSError,),
) -> int:
    """Start, run until ``stop``, close: the exit status.

    One of ``start_errors`` raised by ``start`` is logged, and the status is the error's
    ``exit_code`` attribute when it has one, else 1. ``close`` runs in every case.
    """
    try:
        service.start(stop)
    except start_errors as exc:
        logger.error("cannot start: %s", exc)
        service.close()
        return int(getattr(exc, "exit_code", 1))
    except BaseException:
        service.close()
        raise
    try:
        return service.run(stop)
    finally:
        service.close()
