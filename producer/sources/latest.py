"""A one-frame mailbox between a capture thread and its reader: the newest frame wins."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; ``put`` replaces an unread item and counts it as dropped."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._error: BaseException | None = None
        self.dropped = 0

    def put(self, item: T) -> None:
        """Store ``item``, replacing (and counting) an item nobody took yet."""
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """The producer side stopped with ``error``; :meth:`take` raises it once drained."""
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def take(self, timeout: float) -> T | None:
        """The newest item, waiting up to ``timeout``; None if none came.

        Raises:
            BaseException: the error given to :meth:`fail`, when no item is left.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._error is not None, timeout)
            item, self._item = self._item, None
            if item is None and self._error is not None:
                raise self._error
            return item
