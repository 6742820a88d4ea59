"""The optional access token, checked on every request (timing-safe)."""

from __future__ import annotations

import hmac

from flask import Flask, Response, request

TOKEN_QUERY = "token"  # noqa: S105 - the query parameter name, not a secret


def install_token_check(app: Flask, token: str | None) -> None:
    """Reject every request without ``Authorization: Bearer <token>`` or ``?token=<token>``."""
    if not token:
        return
    expected = token.encode("utf-8")

    @app.before_request
    def _check_token() -> Response | None:
        if _presented_ok(expected):
            return None
        response = Response("401 unauthorized: a valid access token is required\n", 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="kva video"'
        response.mimetype = "text/plain"
        return response


def _presented_ok(expected: bytes) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    candidates = [request.args.get(TOKEN_QUERY, "")]
    if scheme.lower() == "bearer":
        candidates.append(value.strip())
    ok = False
    for candidate in candidates:  # compare all, so timing does not tell which one was tried
        ok |= hmac.compare_digest(candidate.encode("utf-8"), expected)
    return ok
