"""Waiting in tests: poll a condition until it holds, within a timeout.

A condition is polled, never slept on blindly: the test goes on as soon as
what it waits for has happened, and fails with a message naming it when it
does not happen in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds between two polls unless told otherwise.
STEP = 0.05


def eventually(condition: Callable[[], T], timeout: float, step: float = STEP) -> T | None:
    """The first truthy value of ``condition()`` within ``timeout`` seconds, else None.

    The condition is always checked once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)


def wait_for(condition: Callable[[], T], timeout: float, what: str, step: float = STEP) -> T:
    """The first truthy value of ``condition()``; AssertionError after ``timeout`` seconds.

    Args:
        condition: polled every ``step`` seconds; its first truthy value is returned.
        timeout: seconds to wait at most.
        what: what is awaited, for the failure message ("... waiting for <what>").
        step: seconds between two polls.
    """
    value = eventually(condition, timeout, step)
    if not value:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
    return value
