"""Fixtures of the model-server tests: model repositories and running ``kva serve`` processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.process import starts_processes
from tests.support.serve import ServeProcess


@pytest.fixture(scope="session")
@starts_processes
def server(
    conformance_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """One ``kva serve`` for the session, serving the conformance models."""
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    proc = ServeProcess(
        ["--model_config_file", str(conformance_repo / "models.config"),
         "--max_request_bytes", str(1024 * 1024)],
        log,
    ).start()  # fmt: skip
    yield proc
    proc.close()


@pytest.fixture
@starts_processes
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Factory: start a dedicated ``kva serve`` with the given flags (stopped after the test)."""
    started: list[ServeProcess] = []

    def start(*args: str, ready_timeout: float = 60.0, wait_ready: bool = True) -> ServeProcess:
        proc = ServeProcess(args, tmp_path / f"serve-{len(started)}.log")
        started.append(proc)
        return proc.start(ready_timeout, "ready" if wait_ready else "live")

    yield start
    for proc in started:
        proc.close()
