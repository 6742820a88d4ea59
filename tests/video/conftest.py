"""Fixtures of the viewer tests: settings, an app, a real waitress server, frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from kva.frame import Frame
from kva.video.app import create_app
from kva.video.config import VideoSettings
from kva.video.server import ViewerServer
from kva.video.state import ViewerState, viewer_state
from tests.video.frames import Feeder, photo_frames


@pytest.fixture
def make_settings(monkeypatch: pytest.MonkeyPatch) -> Callable[..., VideoSettings]:
    """Settings for tests: port 0, no token unless given; ``KVA_VIDEO_*`` from outside ignored."""
    monkeypatch.delenv("KVA_VIDEO_TOKEN", raising=False)

    def make(**values: object) -> VideoSettings:
        return VideoSettings(**({"video_port": 0, "video_threads": 32} | values))  # type: ignore[arg-type]

    return make


@pytest.fixture
def app(make_settings) -> Flask:
    return create_app(make_settings())


@pytest.fixture
def state(app: Flask) -> ViewerState:
    return viewer_state(app)


@pytest.fixture
def cat_frames() -> list[Frame]:
    return photo_frames("chelsea", "cam0", 8)


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], ViewerServer]]:
    """Factory: run an app on waitress on a free port; stopped after the test."""
    servers: list[ViewerServer] = []

    def start(app: Flask) -> ViewerServer:
        server = ViewerServer(app, port=0).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def feed() -> Iterator[Callable[..., Feeder]]:
    """Factory: feed frames into a store at some fps on a thread; stopped after the test."""
    feeders: list[Feeder] = []

    def start(put: Callable[[Frame], object], frames: list[Frame], fps: float) -> Feeder:
        feeder = Feeder(put, frames, fps).start()
        feeders.append(feeder)
        return feeder

    yield start
    for feeder in feeders:
        feeder.stop()
