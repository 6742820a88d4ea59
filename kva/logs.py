"""One logging set-up for every entry point, and rate-limited logging.

Every line goes through :func:`kva.redact.redact_text` (no passwords of URLs in logs).
Text lines look like ``2026-11-25T08:40:12.123Z INFO  kva.producer.camera: message key=value``;
with ``json`` each line is one JSON object. Fields passed as ``extra={...}``
appear in both.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Hashable

from kva.redact import redact_text

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """Human-readable line with ``key=value`` extras."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname:<5} {record.name}: {record.getMessage()}"
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        if extras:
            line = f"{line} {extras}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return redact_text(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update(_extras(record))
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact_text(json.dumps(payload, default=str))


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once, at an entry point."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "waitress.queue"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class RateLimitedLog:
    """Logs a message at most once per ``interval`` seconds per key.

    Suppressed occurrences are counted and reported with the next line of
    that key, so a flood of bad messages costs one log line per interval.
    """

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._logger = logger
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[Hashable, float] = {}
        self._suppressed: dict[Hashable, int] = {}

    def log(self, key: Hashable, level: int, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``interval`` ago."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg = f"{msg} (and {suppressed} more like it since the last report)"
        self._logger.log(level, msg, *args)
        return True

    def failure(self, key: Hashable, what: str, exc: BaseException) -> bool:
        """A bug met while handling one item (``what``, e.g. a Kafka record): logged at
        ERROR with its traceback, at most once per interval per key; the caller goes on."""
        trace = "".join(traceback.format_exception(exc)).rstrip()
        kind = type(exc).__name__
        return self.log(
            key, logging.ERROR, "handling %s raised %s (skipped):\n%s", what, kind, trace
        )
