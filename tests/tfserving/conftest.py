"""Fixtures of the model-server tests: model repositories and running ``kva serve`` processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kva.tfserving.modelbuild.half_plus_two import build
from tests.tfserving.server import CONFORMANCE_CONFIG, ServeProcess


@pytest.fixture(scope="session")
def conformance_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """half_plus_two / half_plus_three under TF Serving's test names, and the config file."""
    base = tmp_path_factory.mktemp("conformance-models")
    build(base, name="saved_model_half_plus_two_2_versions")
    build(base, name="saved_model_half_plus_three", offset=3.0)
    (base / "models.config").write_text(CONFORMANCE_CONFIG)
    return base


@pytest.fixture(scope="session")
def server(
    conformance_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """One ``kva serve`` for the session, serving the conformance models."""
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    proc = ServeProcess(
        ["--model_config_file", str(conformance_repo / "models.config"),
         "--max_request_bytes", str(1024 * 1024)],
        log,
    )  # fmt: skip
    yield proc
    proc.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Factory: start a dedicated ``kva serve`` with the given flags (stopped after the test)."""
    started: list[ServeProcess] = []

    def start(*args: str, ready_timeout: float = 60.0, wait_ready: bool = True) -> ServeProcess:
        log = tmp_path / f"serve-{len(started)}.log"
        proc = ServeProcess(list(args), log, ready_timeout, wait_ready)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
