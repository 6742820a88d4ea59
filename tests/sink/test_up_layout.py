"""``kva up`` runs the sink only when a destination is configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from kva.cliargs import settings_from_args
from kva.launcher.cli import build_parser
from kva.launcher.config import UpSettings
from kva.launcher.layout import plan
from kva.launcher.supervisor import ServiceSpec
from kva.sink.config import EventsSettings


def _services(tmp_path: Path, **values: object) -> dict[str, ServiceSpec]:
    settings = UpSettings(
        kafka_port=0, serve_port=0, up_port=0, up_metrics_port=0, models_dir=tmp_path, **values
    )
    layout = plan(settings, tmp_path)
    return {spec.name: spec for stage in layout.stages for spec in stage}


def _argv(spec: ServiceSpec) -> list[str]:
    return list(spec.argv)[list(spec.argv).index("kva") + 1 :]


def test_no_destination_no_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KVA_EVENTS_MQTT", raising=False)
    monkeypatch.delenv("KVA_EVENTS_WEBHOOK", raising=False)
    assert "events" not in _services(tmp_path)


def test_a_destination_flag_starts_the_sink_with_the_consumer(tmp_path: Path) -> None:
    services = _services(
        tmp_path, up_events_mqtt="mqtt://127.0.0.1:1883", up_events_webhook="http://h/x"
    )
    argv = _argv(services["events"])
    assert argv[:3] == ["events", "--topic", "events"]
    assert argv[argv.index("--mqtt") + 1] == "mqtt://127.0.0.1:1883"
    assert argv[argv.index("--webhook") + 1] == "http://h/x"
    consumer_port = _argv(services["consumer"])[
        _argv(services["consumer"]).index("--metrics-port") + 1
    ]
    assert argv[argv.index("--metrics-port") + 1] != consumer_port
    settings = settings_from_args(EventsSettings, build_parser().parse_args(argv))
    assert settings.destination_names() == ["mqtt", "webhook"]


def test_the_sinks_own_variable_starts_it_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KVA_EVENTS_WEBHOOK", "https://example.org/hook")
    argv = _argv(_services(tmp_path)["events"])
    assert "--webhook" in argv and "--mqtt" not in argv
