"""Every deployment keeps the same: compose, Kubernetes and ``kva up`` set each topic's
retention to kva's defaults (kva.retention), by the settings' own variable names."""

from __future__ import annotations

from pathlib import Path

import pytest

import kva.launcher.config  # noqa: F401 - defines kva up's settings (their variable names)
from kva import retention
from kva.cliargs import settings_from_args
from kva.consumer.config import ConsumerSettings
from kva.launcher.cli import build_parser
from kva.launcher.config import UpSettings
from kva.launcher.layout import plan
from kva.producer.config import ProducerSettings
from kva.settings import current_env_names
from kva.sink.config import EventsSettings
from tests.deploy.validate import ROOT, kustomize_build, load_compose

#: Each writer's retention variables and the default they must hold.
EXPECTED = {
    "KVA_PRODUCE_RETENTION_MS": retention.FRAMES.ms,
    "KVA_PRODUCE_RETENTION_BYTES": retention.FRAMES.bytes,
    "KVA_CONSUME_OUTPUT_RETENTION_MS": retention.ANNOTATED.ms,
    "KVA_CONSUME_OUTPUT_RETENTION_BYTES": retention.ANNOTATED.bytes,
    "KVA_CONSUME_METADATA_RETENTION_MS": retention.PREDICTIONS.ms,
    "KVA_CONSUME_METADATA_RETENTION_BYTES": retention.PREDICTIONS.bytes,
    "KVA_CONSUME_EVENTS_RETENTION_MS": retention.EVENTS.ms,
    "KVA_CONSUME_EVENTS_RETENTION_BYTES": retention.EVENTS.bytes,
    "KVA_EVENTS_DEAD_LETTER_RETENTION_MS": retention.EVENTS.ms,
    "KVA_EVENTS_DEAD_LETTER_RETENTION_BYTES": retention.EVENTS.bytes,
}


def _retention_env(env: dict[str, object]) -> dict[str, int]:
    return {k: int(str(v)) for k, v in env.items() if "_RETENTION_" in k}


def test_the_variables_are_the_settings_own_names() -> None:
    assert set(EXPECTED) <= current_env_names()


def test_the_settings_default_to_kva_retention(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EXPECTED:
        monkeypatch.delenv(name, raising=False)
    frames = ProducerSettings().frames_retention()
    consumer = ConsumerSettings(consume_passthrough=True, consume_events_topic="events")
    sink = EventsSettings(events_mqtt="mqtt://127.0.0.1:1883").dead_letter_retention()
    assert frames == retention.FRAMES
    assert consumer.retentions() == {"annotated": retention.ANNOTATED,
                                     "predictions": retention.PREDICTIONS}  # fmt: skip
    assert sink == retention.EVENTS


def test_compose_sets_every_retention_to_the_default() -> None:
    project = load_compose(ROOT / "compose/docker-compose.yml")
    for name in ("producer", "consumer", "events"):
        env = project["services"][name]["environment"]
        assert _retention_env(env) == EXPECTED, name


@pytest.mark.subprocess
def test_kubernetes_sets_every_retention_to_the_default() -> None:
    objects = kustomize_build(ROOT / "k8s/base")
    (env,) = [
        o["data"]
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("kva-env")
    ]
    assert _retention_env(env) == EXPECTED


def test_kva_up_passes_its_retention_to_each_writer(tmp_path: Path) -> None:
    settings = UpSettings(
        up_source=["cam0=testsrc"],
        up_frames_retention_ms="2h",
        up_predictions_retention_bytes="512MiB",
        bootstrap_server="127.0.0.1:9092",
        serve_port=0,
        up_port=0,
        up_metrics_port=0,
    )
    layout = plan(settings, tmp_path)
    argv = {spec.name: spec.argv for stage in layout.stages for spec in stage}

    def flag(name: str, option: str) -> str:
        args = argv[name]
        return args[args.index(option) + 1]

    assert flag("producer", "--retention-ms") == str(2 * retention.HOUR_MS)
    assert flag("producer", "--retention-bytes") == str(retention.FRAMES.bytes)
    assert flag("consumer", "--output-retention-ms") == str(retention.ANNOTATED.ms)
    assert flag("consumer", "--metadata-retention-bytes") == str(512 * retention.MIB)
    assert flag("consumer", "--events-retention-ms") == str(retention.EVENTS.ms)
    # and the children's own parsers take them
    produce = build_parser().parse_args(list(argv["producer"][4:]))
    assert (
        settings_from_args(ProducerSettings, produce).frames_retention().ms == 2 * retention.HOUR_MS
    )
    consume = build_parser().parse_args(list(argv["consumer"][4:]))
    kept = settings_from_args(ConsumerSettings, consume).retentions()
    assert kept["predictions"] == retention.Retention(retention.DAY_MS, 512 * retention.MIB)
