"""Every viewer response forbids MIME sniffing and framing (issue 15, defect 11a)."""

from __future__ import annotations

import pytest

from kva.video.app import create_app
from kva.video.config import VideoSettings


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/healthz",
        "/api/streams",
        "/metrics",
        "/static/viewer.js",
        "/no-such-page",
        "/stream/nope.mjpg",
    ],  # fmt: skip
)
@pytest.mark.parametrize("token", [None, "s3cret"])
def test_every_response_has_the_security_headers(path: str, token: str | None) -> None:
    app = create_app(VideoSettings(bootstrap_server="localhost:1", video_token=token))
    response = app.test_client().get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    response.close()
