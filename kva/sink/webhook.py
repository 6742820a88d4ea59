"""The webhook destination: each event POSTed as JSON, signed when a secret is set.

Headers: ``X-Kva-Event-Id`` (receivers de-duplicate by it: delivery is at least once),
``X-Kva-Event-Type`` and, with ``KVA_EVENTS_WEBHOOK_SECRET``,
``X-Kva-Signature: sha256=<hex HMAC-SHA256 of the body>``. A 2xx answer is delivered;
408, 429, 5xx, a timeout or no connection is tried again (``Retry-After`` honoured);
any other answer (3xx, 4xx) is refused for good and the event goes to the dead-letter
topic.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence

import requests

from kva import __version__
from kva.redact import redact_text, redact_url
from kva.sink.destination import DELIVERED, Failed, Idle, Item, Outcome, Refused

logger = logging.getLogger(__name__)

#: Answers that mean "not now" rather than "never".
RETRIABLE_STATUS = frozenset({408, 429})
SIGNATURE_HEADER = "X-Kva-Signature"
EVENT_ID_HEADER = "X-Kva-Event-Id"
#: Longest ``Retry-After`` honoured, seconds.
MAX_RETRY_AFTER = 300.0


def signature(secret: bytes, body: bytes) -> str:
    """The ``X-Kva-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookDestination:
    """POSTs events to one URL over one pooled session."""

    name = "webhook"

    def __init__(self, url: str, secret: bytes | None, timeout: float) -> None:
        self.url = url
        self._secret = secret
        self._timeout = timeout
        self._session = requests.Session()
        self._session.headers.update(
            {"Content-Type": "application/json", "User-Agent": f"kva-events/{__version__}"}
        )
        logger.info(
            "webhook: POST to %s (%s)",
            redact_url(url),
            "signed with X-Kva-Signature" if secret else "unsigned",
        )

    def send(self, items: Sequence[Item], idle: Idle) -> list[Outcome]:
        """POST each in order; after the first one that fails the rest are not tried now."""
        outcomes: list[Outcome] = []
        for item in items:
            outcome = self._post(item)
            outcomes.append(outcome)
            if isinstance(outcome, Failed):
                outcomes += [outcome] * (len(items) - len(outcomes))
                break
            if idle(0):
                outcomes += [Failed("stopping")] * (len(items) - len(outcomes))
                break
        return outcomes

    def _post(self, item: Item) -> Outcome:
        headers = {EVENT_ID_HEADER: item.event.id, "X-Kva-Event-Type": item.event.type}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, item.body)
        try:
            response = self._session.post(
                self.url,
                data=item.body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return Failed(redact_text(f"{type(exc).__name__}: {exc}")[:300])
        with response:
            status = response.status_code
            if 200 <= status < 300:
                return DELIVERED
            detail = f"HTTP {status} {response.reason or ''}".strip()
            if status in RETRIABLE_STATUS or status >= 500:
                return Failed(detail, _retry_after(response.headers.get("Retry-After")))
            return Refused(status, detail)

    def close(self) -> None:
        self._session.close()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (the seconds form; dates are ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER) if seconds == seconds else None
