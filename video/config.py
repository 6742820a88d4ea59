"""Settings of ``kva video`` (flags and ``KVA_VIDEO_*`` environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from kva.frame import DEFAULT_MAX_FRAME_BYTES
from kva.settings import KafkaSettings, listen_host, listen_port

#: The upper bound of every clip length setting (seconds).
MAX_CLIP_SECONDS = 600.0


class VideoSettings(KafkaSettings):
    """Everything the viewer needs: where the frames come from and how it serves them."""

    command: ClassVar[str] = "video"

    video_topic: str = Field(
        "annotated",
        min_length=1,
        description="topic of the (annotated) frames to show",
        json_schema_extra={"flag": "--topic", "metavar": "TOPIC"},
    )
    video_metadata_topic: str = Field(
        "predictions",
        description="topic of the per-frame prediction JSON documents ('' = none)",
        json_schema_extra={"flag": "--metadata-topic", "metavar": "TOPIC"},
    )
    video_events_topic: str = Field(
        "events",
        description="topic of the zone and line events shown in the feed and counts ('' = none; "
        "a topic that does not exist yet is read once it does)",
        json_schema_extra={"flag": "--events-topic", "metavar": "TOPIC"},
    )
    video_max_events: int = Field(
        50,
        ge=1,
        le=1000,
        description="newest events kept per stream (also read back from each partition on start)",
        json_schema_extra={"flag": "--max-events", "metavar": "N"},
    )
    video_host: str = listen_host("address to listen on", "--host")
    video_port: int = listen_port(8080, "port to listen on (0 = any free port)", "--port")
    video_max_fps: float = Field(
        30.0,
        gt=0,
        le=240,
        description="highest frame rate sent to one MJPEG client",
        json_schema_extra={"flag": "--max-fps", "metavar": "FPS"},
    )
    video_token: SecretStr | None = Field(
        None,
        description=(
            "access token required on every route (Authorization: Bearer T or ?token=T); "
            "pass it as KVA_VIDEO_TOKEN: a flag is visible in ps"
        ),
        json_schema_extra={"flag": "--token", "metavar": "TOKEN"},
    )
    video_threads: int = Field(
        256,
        ge=8,
        le=4096,
        description="WSGI worker threads; MJPEG clients at once: all but 4 (kept for the page "
        "and the API; a playing clip holds a thread, a live stream does not)",
        json_schema_extra={"flag": "--threads", "metavar": "N"},
    )
    video_max_streams: int = Field(
        64,
        ge=1,
        le=4096,
        description="most streams kept in memory",
        json_schema_extra={"flag": "--max-streams", "metavar": "N"},
    )
    video_max_frame_bytes: int = Field(
        DEFAULT_MAX_FRAME_BYTES,
        ge=1024,
        le=DEFAULT_MAX_FRAME_BYTES,
        description="largest frame accepted from Kafka, in bytes",
        json_schema_extra={"flag": "--max-frame-bytes", "metavar": "BYTES"},
    )
    video_max_metadata_bytes: int = Field(
        256 * 1024,
        ge=256,
        le=4 * 1024 * 1024,
        description="largest prediction JSON document accepted, in bytes",
        json_schema_extra={"flag": "--max-metadata-bytes", "metavar": "BYTES"},
    )
    video_stale_after: float = Field(
        5.0,
        gt=0,
        description="seconds without frames before a stream shows as stale",
        json_schema_extra={"flag": "--stale-after", "metavar": "SECONDS"},
    )
    video_forget_after: float = Field(
        600.0,
        gt=0,
        description="seconds without frames before a stream may be dropped to make room",
        json_schema_extra={"flag": "--forget-after", "metavar": "SECONDS"},
    )
    video_max_lag: int = Field(
        100,
        ge=0,
        description="messages a partition may be behind before the reader jumps to the newest",
        json_schema_extra={"flag": "--max-lag", "metavar": "MESSAGES"},
    )
    video_client_buffer_bytes: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
        description="output buffered per client of a clip or a page before its thread waits "
        "(bounds memory for slow clients; a live stream holds one shared frame, never a copy)",
        json_schema_extra={"flag": "--client-buffer-bytes", "metavar": "BYTES"},
    )

    video_frames_topic: str = Field(
        "frames",
        description="topic of the raw frames, for clips of the raw video (?source=frames; "
        "'' = annotated clips only)",
        json_schema_extra={"flag": "--frames-topic", "metavar": "TOPIC"},
    )
    video_clip_before: float = Field(
        5.0,
        ge=0,
        le=MAX_CLIP_SECONDS,
        description="seconds of video before an event in its clip",
        json_schema_extra={"flag": "--clip-before", "metavar": "SECONDS"},
    )
    video_clip_after: float = Field(
        5.0,
        ge=0,
        le=MAX_CLIP_SECONDS,
        description="seconds of video after an event in its clip",
        json_schema_extra={"flag": "--clip-after", "metavar": "SECONDS"},
    )
    video_max_clip_seconds: float = Field(
        60.0,
        gt=0,
        le=MAX_CLIP_SECONDS,
        description="longest clip served (a longer range is refused)",
        json_schema_extra={"flag": "--max-clip-seconds", "metavar": "SECONDS"},
    )
    video_max_clip_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        le=1024 * 1024 * 1024,
        description="most bytes of JPEG in one clip: a longer clip stream ends there, a "
        "larger download is refused (a download is built in memory)",
        json_schema_extra={"flag": "--max-clip-bytes", "metavar": "BYTES"},
    )
    video_clip_readers: int = Field(
        4,
        ge=1,
        le=64,
        description="clips played or downloaded at once (each reads Kafka with its own "
        "consumer); one more is refused with 503",
        json_schema_extra={"flag": "--clip-readers", "metavar": "N"},
    )
    video_retention_refresh: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="seconds between two looks at how far back each stream can be replayed "
        "(the oldest record Kafka still keeps)",
        json_schema_extra={"flag": "--retention-refresh", "metavar": "SECONDS"},
    )

    @field_validator(
        "video_topic", "video_metadata_topic", "video_events_topic", "video_frames_topic"
    )
    @classmethod
    def _check_topic(cls, value: str) -> str:
        if value and not all(c.isalnum() or c in "._-" for c in value):
            raise ValueError(f"{value!r} is not a valid Kafka topic name")
        return value

    @model_validator(mode="after")
    def _check_clip_window(self) -> VideoSettings:
        window = self.video_clip_before + self.video_clip_after
        if window > self.video_max_clip_seconds:
            raise ValueError(
                f"--clip-before + --clip-after ({window:g} s) is longer than "
                f"--max-clip-seconds ({self.video_max_clip_seconds:g} s)"
            )
        return self

    @field_validator("video_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        return value
