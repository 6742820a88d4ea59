"""The camera file's change watch: what counts as a new version of the file."""

from __future__ import annotations

import os
from pathlib import Path

from kva.camerafile import CameraFileWatch


def _write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_an_edit_of_the_same_size_and_time_is_still_a_change(tmp_path: Path) -> None:
    """Two saves within the file system's time granularity keep the mtime; the size of a
    one-character edit stays too. Only the content tells them apart."""
    path = tmp_path / "cameras.yaml"
    _write(path, "- {id: a, source: demo}\n", 1_000_000_000)
    watch = CameraFileWatch(path, "cameras")
    assert watch.changed()
    assert not watch.changed()
    _write(path, "- {id: b, source: demo}\n", 1_000_000_000)
    assert watch.changed()
    assert not watch.changed()


def test_a_touch_without_an_edit_is_read_again_and_then_quiet(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    _write(path, "[]\n", 1_000_000_000)
    watch = CameraFileWatch(path, "cameras")
    watch.mark()
    assert not watch.changed()
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert watch.changed()
    assert not watch.changed()


def test_a_missing_or_empty_file_is_not_worth_reading(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    watch = CameraFileWatch(path, "cameras")
    assert not watch.changed()
    path.write_text("")
    assert not watch.changed()
    path.write_text("[]\n")
    assert watch.changed()
