"""The Compose files validate offline, and the checks catch broken copies."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest
import yaml

from kva.launcher.cli import build_parser
from tests.deploy.validate import (
    ROOT,
    compose_kva_commands,
    compose_schema_errors,
    compose_semantic_errors,
    load_compose,
)

COMPOSE = ROOT / "compose"
VARIANTS = {
    "kraft": [COMPOSE / "docker-compose.yml"],
    "zookeeper": [COMPOSE / "docker-compose.yml", COMPOSE / "docker-compose.zookeeper.yml"],
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.subprocess
def test_compose_files_match_the_compose_spec(variant: str) -> None:
    assert compose_schema_errors(*VARIANTS[variant]) == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_compose_references_resolve(variant: str) -> None:
    assert compose_semantic_errors(load_compose(*VARIANTS[variant]), COMPOSE) == []


def test_compose_runs_the_whole_pipeline() -> None:
    services = load_compose(*VARIANTS["kraft"])["services"]
    commands = compose_kva_commands(load_compose(*VARIANTS["kraft"]))
    assert {
        "kafka",
        "models",
        "serve-1",
        "serve-2",
        "producer",
        "consumer",
        "video",
        "prometheus",
        "grafana",
    } <= set(services)
    assert {argv[0] for argv in commands.values()} == {
        "models",
        "serve",
        "produce",
        "consume",
        "video",
        "events",
    }
    assert {"mqtt", "events"} <= set(services)
    assert services["mqtt"]["image"].startswith("eclipse-mosquitto:")
    assert services["events"]["profiles"] == services["mqtt"]["profiles"] == ["events"]
    assert services["video"]["ports"] == ["127.0.0.1:8080:8080"]


def _require_commands(argvs: list[list[str]]) -> None:
    """Skip (naming them) while some services' sub-commands have not landed yet."""
    parser = build_parser()
    known = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    missing = sorted({argv[0] for argv in argvs} - known)
    if missing:
        pytest.skip(f"kva sub-commands not implemented yet: {missing}")


def _parse_error(argv: list[str]) -> str | None:
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = build_parser().parse_args(argv)
    except SystemExit:
        return stderr.getvalue().strip().splitlines()[-1]
    return None if hasattr(args, "run") else "not a runnable kva command"


def test_compose_commands_are_kva_commands_the_cli_accepts() -> None:
    commands = compose_kva_commands(load_compose(*VARIANTS["kraft"]))
    _require_commands(list(commands.values()))
    errors = {name: err for name, argv in commands.items() if (err := _parse_error(argv))}
    assert errors == {}


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (
            lambda d: d["services"]["consumer"]["depends_on"].update(
                {"kafak": {"condition": "service_healthy"}}
            ),
            "depends_on 'kafak', which is not a service",
        ),
        (
            lambda d: d["services"]["serve-1"]["volumes"].append("modles:/x"),
            "volume 'modles' is not defined",
        ),
        (
            lambda d: d["services"]["video"].update(ports=["127.0.0.1:eighty:8080"]),
            "is not a number",
        ),
        (
            lambda d: d["services"]["consumer"].setdefault("deploy", {}).update(replicas="two"),
            "deploy.replicas 'two' is not an integer",
        ),
        (
            lambda d: d["services"]["video"].update(networks=["backend"]),
            "network 'backend' is not defined",
        ),
        (
            lambda d: d["services"]["consumer"]["depends_on"].update(
                {"ovms": {"condition": "service_healthy"}}
            ),
            "waits for 'ovms' to be healthy, which has no healthcheck",
        ),
    ],
)
def test_semantic_check_catches_a_broken_copy(tmp_path: Path, breakage, expected: str) -> None:  # type: ignore[no-untyped-def]
    shutil.copytree(COMPOSE, tmp_path / "compose")
    shutil.copytree(
        ROOT / "tfserving", tmp_path / "tfserving", ignore=shutil.ignore_patterns("__pycache__")
    )
    for service in ("producer", "consumer", "video"):
        (tmp_path / service).mkdir()
        shutil.copy(ROOT / service / "Dockerfile", tmp_path / service / "Dockerfile")
    path = tmp_path / "compose" / "docker-compose.yml"
    project = yaml.safe_load(path.read_text())
    breakage(project)
    path.write_text(yaml.safe_dump(project))
    errors = compose_semantic_errors(load_compose(path), path.parent)
    assert any(expected in e for e in errors), errors


@pytest.mark.subprocess
def test_schema_check_catches_a_broken_copy(tmp_path: Path) -> None:
    project = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    project["services"]["kafka"]["healthcheck"]["intervall"] = "5s"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(project))
    errors = compose_schema_errors(broken)
    assert errors and "$.services.kafka" in errors[0] and "healthcheck" in errors[0]
