"""Multi-object tracking: a track id per detected object, per stream and model.

The tracker is Roboflow's ``trackers`` (``ByteTrackTracker``, Apache-2.0), a clean-room
ByteTrack: a Kalman filter per track and two association rounds (confident boxes
first, then the weaker ones to revive tracks the detector nearly lost). It was chosen
over the other candidates because it is maintained, works on numpy boxes and
scores, is deterministic (Hungarian assignment, no randomness), needs no torch, and
takes each frame's *time*: the Kalman step and the lost-track budget are measured
in seconds, not in calls. That is what the consumer needs, since the latest-frame
policy skips frames under load: a track survives ``window`` seconds unseen whether
the consumer processed 2 or 20 frames meanwhile. (``supervision`` dropped its
ByteTrack in 0.30 in favour of ``trackers``; ``norfair`` pins numpy < 2; the
single-purpose ``bytetracker``/``ocsort``/``motpy`` packages are unmaintained and
``boxmot`` needs torch.) ``trackers`` declares the GUI build of OpenCV, which would
clash with the headless one kva uses, so ``scripts/setup.sh`` installs it without
its dependencies and ``pyproject.toml`` lists the ones it imports.

Its defaults suit people: on vtest.avi (795 frames at 10 fps, the ``person`` SSDLite
detector's boxes of score >= 0.5 on every frame) it made 59 distinct ids, a median
track of 36 frames, 5 % of tracks shorter than 5 frames; new tracks at score 0.6
instead of 0.7 made 65, 25 and 8 %.

State is bounded: at most ``max_tracks`` tracks per stream and model (the least
recently seen go first), and a stream the consumer forgets drops its trackers.
Frames of one stream must come in capture order; an older or same-time frame is
returned untracked (the consumer publishes a stream in order, so such a frame is
about to be dropped as stale anyway).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, replace

import numpy as np

from kva.predictions import Detections

#: The Kalman filter's unit of time (frames per second): a step of 1/NOMINAL_FPS s is one
#: predict step; longer gaps scale it. Not a limit on the camera's frame rate.
NOMINAL_FPS = 10.0
#: ByteTrack's thresholds: boxes at least this confident match tracks first ...
HIGH_SCORE = 0.6
#: ... and at least this confident start new tracks (``trackers``' defaults, both).
NEW_TRACK_SCORE = 0.7
#: A new track gets its id after this many consecutive frames with its object.
CONFIRM_FRAMES = 2
#: Least overlap (IoU) of a box with a track's predicted box to continue that track.
MIN_IOU = 0.1


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """How long a lost track is kept (seconds) and how many tracks one stream may hold."""

    window_s: float = 3.0
    max_tracks: int = 256


class TrackerMissing(RuntimeError):
    """The tracker library is not installed."""

    exit_code = 2


def require_tracker() -> None:
    """Import the tracker library now (it takes a second), or say how to install it.

    Raises:
        TrackerMissing: ``trackers`` (or what it imports) is not installed.
    """
    try:
        import trackers  # noqa: F401 - a heavy import: only when tracking is on
    except ImportError as exc:
        raise TrackerMissing(
            f"tracking needs the 'trackers' package ({exc}): pip install --no-deps "
            "trackers==2.6.1 (scripts/setup.sh does), or turn tracking off with --no-track"
        ) from None


def preload_tracker() -> threading.Thread:
    """Start importing the tracker library in the background (it takes 1-3 s, mostly
    ``supervision``), so it overlaps the consumer's start; :func:`require_tracker` then
    finds it loaded (or waits for the import to finish)."""

    def load() -> None:
        with contextlib.suppress(ImportError):  # require_tracker() says it, in the open
            import trackers  # noqa: F401

    thread = threading.Thread(target=load, name="kva-import-trackers", daemon=True)
    thread.start()
    return thread


class StreamTracker:
    """ByteTrack for one stream and model. Not thread-safe (see :class:`Tracking`)."""

    def __init__(self, settings: TrackerSettings) -> None:
        from trackers import ByteTrackTracker

        self.settings = settings
        self._tracker = ByteTrackTracker(
            # ``trackers`` counts the buffer in 30 fps frames; with timestamps the budget is
            # lost_track_buffer / 30 seconds
            lost_track_buffer=max(1, round(settings.window_s * 30)),
            frame_rate=NOMINAL_FPS,
            track_activation_threshold=NEW_TRACK_SCORE,
            high_conf_det_threshold=HIGH_SCORE,
            minimum_consecutive_frames=CONFIRM_FRAMES,
            minimum_iou_threshold=MIN_IOU,
        )
        self._last_s: float | None = None

    def __len__(self) -> int:
        return len(self._tracker.tracks)

    def update(self, capture_s: float, detections: Detections) -> Detections:
        """``detections`` of the frame captured at ``capture_s`` with their track ids.

        The boxes may come back in another order. A frame not newer than the last one
        comes back as it is (untracked).
        """
        if self._last_s is not None and capture_s <= self._last_s:
            return detections
        self._last_s = capture_s
        import supervision as sv

        count = len(detections.boxes)
        xyxy = np.asarray(detections.boxes, dtype=np.float64).reshape(count, 4)
        scores = np.asarray(detections.scores, dtype=np.float64).reshape(count)
        result = self._tracker.update(sv.Detections(xyxy=xyxy, confidence=scores), None, capture_s)
        self._bound()
        ids = [] if result.tracker_id is None else [int(i) for i in result.tracker_id]
        confidence = result.confidence if result.confidence is not None else np.ones(len(ids))
        return replace(
            detections,
            boxes=tuple((float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in result.xyxy),
            scores=tuple(float(s) for s in confidence),
            tracks=tuple(ids),
        )

    def _bound(self) -> None:
        """Keep the ``max_tracks`` most recently seen tracks."""
        tracks = self._tracker.tracks
        if len(tracks) > self.settings.max_tracks:
            tracks.sort(key=lambda t: t.time_since_update_seconds)
            del tracks[self.settings.max_tracks :]


class Tracking:
    """The trackers of every stream and tracked model. Thread-safe; one lock per stream,
    so streams are tracked in parallel and one stream's frames one at a time."""

    def __init__(self, settings: TrackerSettings, models: set[str] | None = None) -> None:
        """``models``: the model names to track; None: every detector.

        Raises:
            TrackerMissing: the tracker library is not installed.
        """
        require_tracker()
        self.settings = settings
        self.models = models
        self._lock = threading.Lock()
        self._streams: dict[str, tuple[threading.Lock, dict[str, StreamTracker]]] = {}

    def tracks(self, model: str) -> bool:
        """True when ``model``'s detections are tracked."""
        return self.models is None or model in self.models

    def update(
        self, stream: str, model: str, capture_s: float, detections: Detections
    ) -> Detections:
        """Track ``detections`` of ``model`` in a frame of ``stream`` (see
        :meth:`StreamTracker.update`)."""
        with self._lock:
            entry = self._streams.get(stream)
            if entry is None:
                entry = self._streams[stream] = (threading.Lock(), {})
        lock, trackers = entry
        with lock:
            tracker = trackers.get(model)
            if tracker is None:
                tracker = trackers[model] = StreamTracker(self.settings)
            return tracker.update(capture_s, detections)

    def forget(self, stream: str) -> None:
        """Drop the trackers of a stream the consumer forgot."""
        with self._lock:
            self._streams.pop(stream, None)

    def streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def track_count(self, stream: str) -> int:
        """Tracks held for ``stream`` (all its models)."""
        with self._lock:
            entry = self._streams.get(stream)
        if entry is None:
            return 0
        with entry[0]:
            return sum(len(t) for t in entry[1].values())
