"""The zones and lines of every camera, from the producer's camera file, kept up to date.

The consumer reads the same camera file as ``kva produce`` (:mod:`kva.camerafile`)
and takes each camera's ``zones`` and ``lines`` (:mod:`kva.scene`); the camera id is
the stream id. When the file changes it is read again; an edit that cannot be used
(unreadable, or a malformed zone or line: the message names the camera) is logged and
the running zones and lines stay.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from kva.camerafile import CameraFileError, CameraFileWatch, read_camera_entries
from kva.scene import Scene, SceneError, parse_scene

logger = logging.getLogger(__name__)


class SceneConfigError(ValueError):
    """The camera file's zones and lines cannot be used (at start: a usage error)."""

    exit_code = 2


def load_scenes(path: Path) -> dict[str, Scene]:
    """Camera id -> its zones and lines (cameras without any are left out).

    Raises:
        SceneConfigError: the file cannot be read, or a zone or line is malformed.
    """
    try:
        entries = read_camera_entries(path)
    except CameraFileError as exc:
        raise SceneConfigError(str(exc)) from None
    scenes: dict[str, Scene] = {}
    for index, entry in enumerate(entries):
        camera = str(entry["id"])[:128]
        try:
            scene = parse_scene(entry, camera)
        except SceneError as exc:
            raise SceneConfigError(f"camera file {path}, entry {index}: {exc}") from None
        if scene:
            scenes[camera] = scene
    return scenes


class SceneFile:
    """The camera file's scenes; :meth:`poll` re-reads it when it changed."""

    def __init__(
        self,
        path: Path,
        poll_s: float,
        on_change: Callable[[dict[str, Scene]], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.poll_s = poll_s
        self._on_change = on_change
        self._clock = clock
        self._watch = CameraFileWatch(path, "zones and lines")
        self._next = 0.0
        self.scenes: dict[str, Scene] = {}

    def load(self) -> dict[str, Scene]:
        """Read the file now (raises :class:`SceneConfigError`) and apply it."""
        self._watch.mark()
        self.scenes = load_scenes(self.path)
        self._next = self._clock() + self.poll_s
        self._on_change(self.scenes)
        return self.scenes

    def poll(self) -> bool:
        """Re-read the file when due and changed; True when new scenes were applied."""
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self.poll_s
        if not self._watch.changed():
            return False
        try:
            scenes = load_scenes(self.path)
        except SceneConfigError as exc:
            logger.error("%s: keeping the current zones and lines", exc)
            return False
        except Exception as exc:  # noqa: BLE001 - an edited file must never stop the consumer
            logger.error(
                "camera file %s: cannot use it (%s: %s): keeping the current zones and lines",
                self.path,
                type(exc).__name__,
                exc,
            )
            return False
        self.scenes = scenes
        self._on_change(scenes)
        logger.info(
            "camera file %s changed: zones/lines for %d camera(s): %s",
            self.path,
            len(scenes),
            ", ".join(sorted(scenes)) or "none",
        )
        return True
