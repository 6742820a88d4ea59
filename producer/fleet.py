"""The set of running cameras: start new ones, stop removed ones, restart changed ones."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from kva.producer.camera import CameraRunner, CameraState
from kva.producer.config import CameraConfig
from kva.redact import redact_url

logger = logging.getLogger(__name__)

RunnerFactory = Callable[[CameraConfig, int], CameraRunner]


class CameraFleet:
    """Keeps one :class:`CameraRunner` per configured camera.

    Sequence numbers continue across a restart of the same camera id, so a
    stream never goes back in sequence while the process lives.
    """

    def __init__(self, make_runner: RunnerFactory, stop_timeout: float = 10.0) -> None:
        self._make_runner = make_runner
        self._stop_timeout = stop_timeout
        self.runners: dict[str, CameraRunner] = {}
        self._sequences: dict[str, int] = {}

    def apply(self, cameras: Iterable[CameraConfig]) -> None:
        """Make the running set match ``cameras``."""
        wanted = {camera.id: camera for camera in cameras}
        for camera_id, runner in list(self.runners.items()):
            if wanted.get(camera_id) != runner.camera:
                reason = "removed" if camera_id not in wanted else "changed"
                logger.info("camera %s %s: stopping it", camera_id, reason)
                self._stop([runner])
                del self.runners[camera_id]
        for camera_id, camera in wanted.items():
            if camera_id not in self.runners:
                logger.info(
                    "camera %s: starting (%s, %g fps)",
                    camera_id,
                    redact_url(camera.source),
                    camera.fps,
                )
                runner = self._make_runner(camera, self._sequences.get(camera_id, 0))
                self.runners[camera_id] = runner.start()

    def _stop(self, runners: list[CameraRunner]) -> None:
        for runner in runners:
            runner.stop()
        for runner in runners:
            if not runner.join(self._stop_timeout):
                logger.warning(
                    "camera %s did not stop within %.0fs", runner.stream, self._stop_timeout
                )
            self._sequences[runner.stream] = runner.next_sequence

    def stop_all(self) -> None:
        """Stop every camera (in parallel) and wait for them."""
        self._stop(list(self.runners.values()))

    def finished(self) -> bool:
        """True when every camera has ended or failed for good (or there are none)."""
        return all(not runner.is_alive() for runner in self.runners.values())

    def failed(self) -> list[CameraRunner]:
        """Cameras that stopped with a permanent error."""
        return [r for r in self.runners.values() if r.state is CameraState.FAILED]

    def any_up(self) -> bool:
        return any(r.state is CameraState.UP for r in self.runners.values())
