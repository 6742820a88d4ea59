"""A small text progress bar for the command line (stderr): records of the range read,
frames written, rate. On a terminal it redraws one line; elsewhere (a log file) it
writes a line at each tenth of the way."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 30


class ProgressBar:
    """Draws ``[#####.....]  50%  450/900 records  450 frames  120 frames/s``."""

    def __init__(
        self,
        out: TextIO,
        *,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._tty = out.isatty()
        self._interval = interval
        self._clock = clock
        self._started: float | None = None  # the rate is counted from the first update
        self._last_draw = -interval
        self._last_tenth = -1

    def update(self, done: int, total: int, frames: int, final: bool = False) -> None:
        """Show the progress: ``done`` of ``total`` records read, ``frames`` written."""
        now = self._clock()
        if self._started is None:
            self._started = now
        tenth = 10 if final or total <= 0 else min(10, done * 10 // total)
        if self._tty:
            if not final and now - self._last_draw < self._interval:
                return
            self._out.write("\r" + self.line(done, total, frames, now) + ("\n" if final else ""))
        elif tenth > self._last_tenth:
            self._out.write(self.line(done, total, frames, now) + "\n")
        self._last_draw, self._last_tenth = now, max(self._last_tenth, tenth)
        self._out.flush()

    def line(self, done: int, total: int, frames: int, now: float) -> str:
        """The bar's text."""
        share = 1.0 if total <= 0 else min(1.0, done / total)
        filled = round(share * BAR_WIDTH)
        elapsed = max(now - (now if self._started is None else self._started), 1e-3)
        return (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%}  {done}/{total} records"
            f"  {frames} frames  {frames / elapsed:.0f} frames/s"
        )
