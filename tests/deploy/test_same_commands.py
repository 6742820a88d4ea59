"""What the containers run is what `kva up` runs: the same kva sub-commands, topics and models."""

from __future__ import annotations

from pathlib import Path

import pytest

from kva.launcher.layout import (
    consumer_args,
    events_args,
    models_build_args,
    producer_args,
    serve_args,
    video_args,
)
from tests.deploy.validate import (
    ROOT,
    compose_kva_commands,
    kubernetes_kva_commands,
    kustomize_build,
    load_compose,
)

LOCAL = {
    "models": models_build_args(Path("/models")),
    "serve": serve_args(8501, Path("/etc/kva/models.config")),
    "produce": producer_args(["cam0=demo"], 15, 9100),
    "consume": consumer_args(["http://a:8501", "http://b:8501"], 9100),
    "video": video_args("0.0.0.0", 8080),  # noqa: S104 - a command line, nothing binds here
    "events": events_args(9100, mqtt="mqtt://mqtt:1883"),
}
#: Flags whose values must agree (topics, what is served); ports and hosts may differ.
SHARED_FLAGS = ("--topic", "--input-topic", "--output-topic", "--metadata-topic", "--events-topic")


def _flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def _model_names(argv: list[str]) -> set[str]:
    return {value.split("=", 1)[0] for value in _flag_values(argv, "--model")}


def _assert_same(where: str, argv: list[str]) -> None:
    local = LOCAL[argv[0]]
    if argv[0] == "models":
        assert argv[:3] == local[:3], where  # models build --all
    for flag in SHARED_FLAGS:
        if flag in argv:
            assert _flag_values(argv, flag) == _flag_values(local, flag), f"{where} {flag}"
    assert _model_names(argv) == _model_names(local), f"{where} --model"


def test_compose_runs_the_local_commands() -> None:
    commands = compose_kva_commands(load_compose(ROOT / "compose/docker-compose.yml"))
    assert {argv[0] for argv in commands.values()} == set(LOCAL)
    for name, argv in commands.items():
        _assert_same(f"compose service {name}", argv)


@pytest.mark.subprocess
def test_kubernetes_runs_the_local_commands() -> None:
    commands = dict(kubernetes_kva_commands(kustomize_build(ROOT / "k8s/base")))
    assert {argv[0] for argv in commands.values()} == set(LOCAL)
    for name, argv in commands.items():
        if argv[0] != "produce":  # the k8s producer reads its cameras from a ConfigMap file
            _assert_same(name, argv)
    producer = next(argv for argv in commands.values() if argv[0] == "produce")
    assert _flag_values(producer, "--topic") == ["frames"] and "--camera-file" in producer
