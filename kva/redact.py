"""Passwords out of URLs: the one place that makes text safe to log or to put in an error.

``rtsp://admin:Pa55w0rd@10.0.0.5/live`` becomes ``rtsp://admin:***@10.0.0.5/live``.
:func:`redact_url` is for a value known to be a URL; :func:`redact_text` finds every
``scheme://user:password@`` in free text (a log line, an exception message, FFmpeg's
output). The log formatters of :mod:`kva.logs` apply :func:`redact_text` to every line,
so a URL that reaches a log by any path is redacted there too.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: ``scheme://user:password@``: the password runs to the last ``@`` before the host part.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(?P<secret>[^\s/]*)@")
MASK = "***"


def redact_url(url: str) -> str:
    """``rtsp://user:secret@host/x`` -> ``rtsp://user:***@host/x`` (safe to log)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is None:
        return redact_text(url)
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    return redact_text(parts._replace(netloc=netloc).geturl())


def redact_text(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with the password masked."""
    if "://" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@", text)
