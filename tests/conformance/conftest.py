"""Fixtures of the conformance suite: one ``kva serve`` with REST and gRPC for the real clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import starts_processes
from tests.support.serve import ServeProcess


@pytest.fixture(scope="session")
@starts_processes
def kva_serve(
    conformance_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """``kva serve`` with REST and gRPC, serving the conformance models."""
    log = tmp_path_factory.mktemp("conformance-serve") / "serve.log"
    proc = ServeProcess(
        ["--model_config_file", str(conformance_repo / "models.config")], log, grpc=True
    ).start()
    yield proc
    proc.close()


@pytest.fixture(scope="session")
@starts_processes
def kva_serve_models(
    built_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """``kva serve`` with REST and gRPC, serving every model kva builds (mobilenet_v2, ...)."""
    folder = tmp_path_factory.mktemp("conformance-built-serve")
    config = folder / "models.config"
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "{built_models / name}" }}\n'
        for name in ("mobilenet_v2", "blazeface", "half_plus_two")
    )
    config.write_text(f"model_config_list {{\n{entries}}}\n")
    proc = ServeProcess(["--model_config_file", str(config)], folder / "serve.log", grpc=True)
    yield proc.start()
    proc.close()
