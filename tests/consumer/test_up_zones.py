"""``kva up`` gives the consumer zones and lines: ``--zones FILE``, or the video demo's line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kva.cliargs import settings_from_args
from kva.consumer.config import ConsumerSettings
from kva.consumer.scenes import load_scenes
from kva.launcher.cli import build_parser
from kva.launcher.config import UpSettings
from kva.launcher.layout import DEMO_CAMERA, plan


def consumer_argv(tmp_path: Path, **values: object) -> list[str]:
    settings = UpSettings(
        kafka_port=0, serve_port=0, up_port=0, up_metrics_port=0, models_dir=tmp_path, **values
    )
    layout = plan(settings, tmp_path)
    spec = next(s for stage in layout.stages for s in stage if s.name == "consumer")
    argv = list(spec.argv)
    return argv[argv.index("kva") + 1 :]


def camera_file(argv: list[str]) -> Path | None:
    settings = settings_from_args(ConsumerSettings, build_parser().parse_args(argv))
    return settings.consume_camera_file


def test_the_video_demo_counts_people_crossing_the_square(tmp_path: Path, demo_video) -> None:
    path = camera_file(consumer_argv(tmp_path))
    assert path is not None and path.parent == tmp_path
    scenes = load_scenes(path)
    assert list(scenes) == [DEMO_CAMERA]
    assert [line.name for line in scenes[DEMO_CAMERA].lines] == ["across"]


def test_a_zones_file_wins_and_other_cameras_have_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zones = tmp_path / "mine.yaml"
    zones.write_text("[{id: door, zones: [{name: z, points: [[0, 0], [1, 0], [1, 1]]}]}]")
    assert camera_file(consumer_argv(tmp_path, up_zones=zones)) == zones
    assert camera_file(consumer_argv(tmp_path, up_source=["door=testsrc"])) is None
    assert camera_file(consumer_argv(tmp_path, up_demo="photos")) is None
    monkeypatch.setenv("KVA_CACHE_DIR", str(tmp_path / "empty-cache"))  # no demo video
    assert camera_file(consumer_argv(tmp_path)) is None
