"""Settings of ``kva produce`` and the camera list they describe.

Cameras come from ``--source [ID=]SRC`` (repeatable) and/or a camera file
(YAML or JSON). Each camera may override the global ``fps``, ``width``,
``height`` and ``quality``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import NoDecode

from kva.camerafile import CameraFileError, parse_camera_entries, read_camera_entries
from kva.frame import MAX_DIMENSION, is_valid_stream_id
from kva.producer.demo import PHOTOS_SOURCE
from kva.redact import redact_url
from kva.retention import (
    FRAMES,
    Retention,
    RetentionBytes,
    RetentionMs,
    retention_bytes_field,
    retention_ms_field,
)
from kva.scene import SCENE_KEYS, SceneError, parse_scene
from kva.settings import KafkaSettings, listen_host, listen_port, split_list

#: The camera when neither --source nor --camera-file is given: the photo demo (nothing to fetch).
DEFAULT_SOURCE = PHOTOS_SOURCE


class CameraConfigError(ValueError):
    """A camera list or camera file that cannot be used (message says why)."""

    #: A bad camera list is a usage error, like a bad flag.
    exit_code = 2


class ProducerSettings(KafkaSettings):
    """Everything ``kva produce`` can be told (flags or ``KVA_*`` variables)."""

    command: ClassVar[str] = "produce"

    source: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="a camera: [ID=]SRC with SRC one of webcam:N, rtsp://..., http(s)://..., "
        "a video file, testsrc, demo (repeatable; ids default to cam0, cam1, ...; "
        f"'{DEFAULT_SOURCE}' when neither --source nor --camera-file is given)",
        json_schema_extra={"metavar": "[ID=]SRC"},
    )
    camera_file: Path | None = Field(
        None,
        description="YAML/JSON camera list (id, source, fps, width, height, quality); "
        "reloaded when it changes",
        json_schema_extra={"metavar": "FILE"},
    )
    frames_topic: str = Field(
        "frames",
        min_length=1,
        max_length=249,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Kafka topic the frames go to",
        json_schema_extra={"flag": "--topic", "metavar": "TOPIC"},
    )
    topic_partitions: int = Field(
        4, ge=1, le=1000, description="partitions when the producer creates the topic"
    )
    produce_retention_ms: RetentionMs = retention_ms_field(FRAMES.ms, "frames", "--retention-ms")
    produce_retention_bytes: RetentionBytes = retention_bytes_field(
        FRAMES.bytes, "frames", "--retention-bytes"
    )
    camera_fps: float = Field(
        10.0,
        gt=0,
        le=1000,
        description="frames per second sent per camera, paced to wall-clock",
        json_schema_extra={"flag": "--fps", "metavar": "FPS"},
    )
    camera_width: int | None = Field(
        None,
        ge=16,
        le=MAX_DIMENSION,
        description="resize frames to this width (keeps the aspect ratio without --height)",
        json_schema_extra={"flag": "--width", "metavar": "PIXELS"},
    )
    camera_height: int | None = Field(
        None,
        ge=16,
        le=MAX_DIMENSION,
        description="resize frames to this height (keeps the aspect ratio without --width)",
        json_schema_extra={"flag": "--height", "metavar": "PIXELS"},
    )
    jpeg_quality: int = Field(80, ge=1, le=100, description="JPEG quality 1-100")
    loop: bool = Field(False, description="restart video files at their end")
    producer_acks: Literal["0", "1", "all"] = Field(
        "1", description="Kafka acks for frames", json_schema_extra={"flag": "--acks"}
    )
    reconnect_min: float = Field(
        0.5, gt=0, le=60, description="first reconnect delay after a camera failure, seconds"
    )
    reconnect_max: float = Field(
        3.0, gt=0, le=600, description="longest reconnect delay (exponential backoff cap), seconds"
    )
    watchdog_timeout: float = Field(
        5.0, gt=0, le=600, description="reconnect a camera that delivers no frame this long"
    )
    open_timeout: float = Field(
        5.0, gt=0, le=600, description="seconds to wait when opening a network camera"
    )
    flush_timeout: float = Field(
        5.0, ge=0, le=600, description="seconds to wait for queued frames at shutdown"
    )
    progress_interval: float = Field(
        5.0, gt=0, le=3600, description="seconds between per-camera progress lines"
    )
    camera_file_poll: float = Field(
        1.0, gt=0, le=3600, description="seconds between checks of the camera file for changes"
    )
    producer_metrics_host: str = listen_host(
        "address of /metrics, /healthz, /readyz", "--metrics-host"
    )
    producer_metrics_port: int = listen_port(
        9101, "port of /metrics, /healthz, /readyz (0 = any free port)", "--metrics-port"
    )

    _split_source = field_validator("source", mode="before")(split_list)

    def frames_retention(self) -> Retention:
        """What the frames topic keeps (applied by the producer at every start)."""
        return Retention(self.produce_retention_ms, self.produce_retention_bytes)


class CameraConfig(BaseModel):
    """One camera: where to read, and how to send it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=4096)
    fps: float = Field(gt=0, le=1000)
    width: int | None = Field(None, ge=16, le=MAX_DIMENSION)
    height: int | None = Field(None, ge=16, le=MAX_DIMENSION)
    quality: int = Field(80, ge=1, le=100)
    loop: bool = False

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not is_valid_stream_id(value):
            raise ValueError(f"camera id {value!r} may only use letters, digits, '_', '.', '-'")
        return value


_ID_PREFIX = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*)=(.+)$", re.DOTALL)


def split_source_arg(text: str) -> tuple[str | None, str]:
    """``"ID=SRC"`` -> (ID, SRC); ``"SRC"`` -> (None, SRC).

    A prefix counts as an id only if it is a valid stream id, so URLs with
    ``=`` in the query (``rtsp://h/s?a=b``) stay whole.
    """
    match = _ID_PREFIX.match(text.strip())
    if match and is_valid_stream_id(match.group(1)):
        return match.group(1), match.group(2).strip()
    return None, text.strip()


def _defaults(settings: ProducerSettings) -> dict[str, Any]:
    return {
        "fps": settings.camera_fps,
        "width": settings.camera_width,
        "height": settings.camera_height,
        "quality": settings.jpeg_quality,
        "loop": settings.loop,
    }


def cameras_from_sources(settings: ProducerSettings) -> list[CameraConfig]:
    """The cameras named by ``--source`` (ids default to cam0, cam1, ...)."""
    cameras: list[CameraConfig] = []
    for index, text in enumerate(settings.source):
        camera_id, source = split_source_arg(text)
        cameras.append(
            _build(
                {"id": camera_id or f"cam{index}", "source": source},
                settings,
                f"--source {redact_url(text)!r}",
            )
        )
    _check_unique(cameras)
    return cameras


def _build(entry: dict[str, Any], settings: ProducerSettings, where: str) -> CameraConfig:
    values = _defaults(settings) | entry
    try:
        return CameraConfig(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'camera'}: {err['msg']}"
            for err in exc.errors()
        )
        raise CameraConfigError(f"{where}: {problems}") from None


def _check_unique(cameras: list[CameraConfig]) -> None:
    seen: set[str] = set()
    for camera in cameras:
        if camera.id in seen:
            raise CameraConfigError(f"camera id {camera.id!r} is used twice")
        seen.add(camera.id)


def load_camera_file(path: Path, settings: ProducerSettings) -> list[CameraConfig]:
    """Read a camera file: a list of cameras, or ``{"cameras": [...]}``, in YAML or JSON.

    Raises:
        CameraConfigError: missing, too big, unparsable or invalid file.
    """
    try:
        entries = read_camera_entries(path)
    except CameraFileError as exc:
        raise CameraConfigError(str(exc)) from None
    return _cameras_of_entries(entries, settings, str(path))


def parse_camera_text(text: str, settings: ProducerSettings, name: str) -> list[CameraConfig]:
    """Parse the text of a camera file (YAML, which includes JSON)."""
    try:
        entries = parse_camera_entries(text, name)
    except CameraFileError as exc:
        raise CameraConfigError(str(exc)) from None
    return _cameras_of_entries(entries, settings, name)


def _cameras_of_entries(
    entries: list[dict[str, Any]], settings: ProducerSettings, name: str
) -> list[CameraConfig]:
    """The cameras of a camera file's entries. Zones and lines are the consumer's
    (:mod:`kva.scene`); they are checked here too, so a bad one is refused at once."""
    cameras = []
    for index, entry in enumerate(entries):
        try:
            parse_scene(entry, str(entry["id"])[:128])
        except SceneError as exc:
            raise CameraConfigError(f"camera file {name}, entry {index}: {exc}") from None
        source = {key: value for key, value in entry.items() if key not in SCENE_KEYS}
        cameras.append(_build(source, settings, f"camera file {name}, entry {index}"))
    _check_unique(cameras)
    return cameras
