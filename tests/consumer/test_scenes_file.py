"""The consumer's zones and lines from the camera file: load, reload, bad reloads refused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kva.consumer.scenes import SceneConfigError, SceneFile, load_scenes
from kva.producer.config import CameraConfigError, ProducerSettings, load_camera_file
from kva.scene import Scene

GOOD = """
cameras:
  - id: door
    source: demo
    lines:
      - name: walkway
        points: [[0.0, 0.5], [1.0, 0.5]]
  - id: lobby
    source: testsrc
"""

BAD_ZONES = {
    "outside 0..1": "zones: [{name: z, points: [[0.1, 0.1], [1.5, 0.1], [0.5, 0.5]]}]",
    "at least 3 points": "zones: [{name: z, points: [[0.1, 0.1], [0.5, 0.5]]}]",
    "self-intersecting": "zones: [{name: z, points: [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]}]",
    "exactly 2 points": "lines: [{name: l, points: [[0.1, 0.1]]}]",
}


def edit(path: Path, text: str) -> None:
    path.write_text(text)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_scenes_of_the_camera_file(tmp_path) -> None:
    path = tmp_path / "cameras.yaml"
    edit(path, GOOD)
    scenes = load_scenes(path)
    assert list(scenes) == ["door"]  # lobby has neither zones nor lines
    assert [line.name for line in scenes["door"].lines] == ["walkway"]


@pytest.mark.parametrize("problem", sorted(BAD_ZONES))
def test_a_bad_reload_keeps_the_running_zones_and_names_the_camera(
    tmp_path, caplog, problem
) -> None:
    path = tmp_path / "cameras.yaml"
    edit(path, GOOD)
    applied: list[dict[str, Scene]] = []
    clock = Clock()
    scenes = SceneFile(path, 1.0, applied.append, clock=clock)
    first = scenes.load()
    bad = GOOD.replace("  - id: lobby\n", f"  - id: lobby\n    {BAD_ZONES[problem]}\n")
    edit(path, bad)
    clock.now = 0.5
    assert not scenes.poll()  # not due yet
    clock.now = 1.5
    with caplog.at_level(logging.ERROR):
        assert not scenes.poll()
    assert applied == [first] and scenes.scenes == first
    assert "camera 'lobby'" in caplog.text and problem in caplog.text
    assert "keeping the current zones and lines" in caplog.text
    # the producer refuses the same file, for the same reason
    with pytest.raises(CameraConfigError, match=f"camera 'lobby'.*{problem}"):
        load_camera_file(path, ProducerSettings(source=[]))
    # a good edit afterwards is taken
    edit(path, GOOD.replace("walkway", "path"))
    clock.now = 3.0
    assert scenes.poll()
    assert [line.name for line in applied[-1]["door"].lines] == ["path"]


def test_a_bad_file_at_start_is_a_usage_error(tmp_path) -> None:
    path = tmp_path / "cameras.yaml"
    edit(path, GOOD.replace("[1.0, 0.5]", "[1.0, 2.5]"))
    with pytest.raises(SceneConfigError, match="camera 'door', line 0 'walkway': point 1") as error:
        SceneFile(path, 1.0, lambda _s: None).load()
    assert error.value.exit_code == 2
    with pytest.raises(SceneConfigError, match="does not exist"):
        load_scenes(tmp_path / "missing.yaml")


def test_an_emptied_or_removed_file_keeps_the_zones(tmp_path, caplog) -> None:
    path = tmp_path / "cameras.yaml"
    edit(path, GOOD)
    clock = Clock()
    scenes = SceneFile(path, 1.0, lambda _s: None, clock=clock)
    first = scenes.load()
    edit(path, "")
    clock.now = 2.0
    with caplog.at_level(logging.WARNING):
        assert not scenes.poll()
    path.unlink()
    clock.now = 4.0
    assert not scenes.poll()
    assert scenes.scenes == first
    assert "is empty (a save in progress?): keeping the current zones and lines" in caplog.text
    assert "disappeared: keeping the current zones and lines" in caplog.text
