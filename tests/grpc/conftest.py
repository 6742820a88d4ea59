"""Fixtures of the gRPC tests: ``kva serve --port`` subprocesses and client stubs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kva import grpc_api as api_module
from tests.support.process import starts_processes
from tests.support.serve import ServeProcess

if not api_module.available():  # pragma: no cover - CI installs the [grpc] extra
    pytest.skip("the [grpc] extra is not installed", allow_module_level=True)


@dataclass
class GrpcServe:
    """A ``kva serve`` with REST on ``rest.url`` and gRPC on ``target``, and stubs to call it."""

    rest: ServeProcess
    target: str
    api: Any
    channel: Any
    predictions: Any
    models: Any

    def close(self) -> None:
        self.channel.close()
        self.rest.close()


def start_grpc_serve(args: list[str], log: Path) -> GrpcServe:
    """Start ``kva serve --port P`` with ``args``; wait until REST says ready."""
    api = api_module.load()
    rest = ServeProcess(args, log, grpc=True).start()
    channel = api.grpc.insecure_channel(rest.grpc_target)
    return GrpcServe(
        rest,
        rest.grpc_target,
        api,
        channel,
        api.prediction_service_pb2_grpc.PredictionServiceStub(channel),
        api.model_service_pb2_grpc.ModelServiceStub(channel),
    )


@pytest.fixture(scope="session")
@starts_processes
def grpc_server(
    conformance_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GrpcServe]:
    """One ``kva serve --port`` for the session, serving the conformance models."""
    log = tmp_path_factory.mktemp("grpc-serve-log") / "serve.log"
    serve = start_grpc_serve(
        ["--model_config_file", str(conformance_repo / "models.config"),
         "--max_request_bytes", str(1024 * 1024)],
        log,
    )  # fmt: skip
    yield serve
    serve.close()


@pytest.fixture
@starts_processes
def start_grpc(tmp_path: Path) -> Iterator[Callable[..., GrpcServe]]:
    """Factory: a dedicated ``kva serve --port`` with the given flags (stopped after the test)."""
    started: list[GrpcServe] = []

    def start(*args: str) -> GrpcServe:
        serve = start_grpc_serve(list(args), tmp_path / f"serve-{len(started)}.log")
        started.append(serve)
        return serve

    yield start
    for serve in started:
        serve.close()
