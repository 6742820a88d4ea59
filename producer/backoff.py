"""Bounded, jittered exponential backoff for reconnecting cameras."""

from __future__ import annotations

import random


class Backoff:
    """Delays ``minimum·2^n`` capped at ``maximum``, each scaled by a random 0.8–1.0.

    The downward jitter spreads cameras that fail together (a switch reboot)
    without ever waiting longer than ``maximum``.
    """

    def __init__(
        self,
        minimum: float,
        maximum: float,
        factor: float = 2.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError("need 0 < minimum <= maximum")
        self.minimum, self.maximum, self.factor, self.jitter = minimum, maximum, factor, jitter
        self.attempts = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto

    def next_delay(self) -> float:
        """The delay before the next attempt (and count the attempt)."""
        base = min(self.maximum, self.minimum * self.factor ** min(self.attempts, 60))
        self.attempts += 1
        return base * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """The source works again: start over from ``minimum``."""
        self.attempts = 0
