"""Settings of ``kva replay``: which stream, which time range, which output, how fast.

Every flag is also a ``KVA_REPLAY_*`` variable. Times are what
:mod:`kva.timerange` reads: ``-5m``, ``-1h30m``, ``now``, ``2026-12-07T12:00:00Z``
(naive ISO times are local time), epoch milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from kva.frame import is_valid_stream_id
from kva.settings import KafkaSettings, topic_setting

#: Video containers the file output writes, and the OpenCV codec of each.
FILE_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}

Pace = Literal["original", "fast"]


class ReplaySettings(KafkaSettings):
    """Everything ``kva replay`` can be told (flags or ``KVA_REPLAY_*`` variables)."""

    command: ClassVar[str] = "replay"

    replay_stream: str = Field(
        description="the stream (camera id) to replay",
        json_schema_extra={"flag": "--stream", "metavar": "ID"},
    )
    replay_from: str = Field(
        description="start of the range: -5m, -1h30m, an ISO time (2026-12-07T12:00:00Z; "
        "without an offset: local time) or epoch ms",
        json_schema_extra={"flag": "--from", "metavar": "TIME"},
    )
    replay_to: str = Field(
        "now",
        description="end of the range (excluded), like --from",
        json_schema_extra={"flag": "--to", "metavar": "TIME"},
    )
    replay_to_file: Path | None = Field(
        None,
        description="output: write an .mp4 or .avi file, with the original timing",
        json_schema_extra={"flag": "--to-file", "metavar": "PATH"},
    )
    replay_to_topic: str | None = topic_setting(
        None,
        "output: re-publish the records to this topic, key and headers kept (for re-processing)",
        "--to-topic",
    )
    replay_to_viewer: bool = Field(
        False,
        description="output: publish to --annotated-topic under a new stream id "
        "(--viewer-stream), so the viewer shows the replay as a stream of its own",
        json_schema_extra={"flag": "--to-viewer"},
    )
    replay_viewer_stream: str | None = Field(
        None,
        description="stream id of the replay in the viewer (default: <stream>.replay-<n>, "
        "the first n the topic does not have yet)",
        json_schema_extra={"flag": "--viewer-stream", "metavar": "ID"},
    )
    replay_pace: Pace | None = Field(
        None,
        description="original: the frames' own capture-time gaps; fast: as fast as possible "
        "(default: original with --to-viewer, fast otherwise)",
        json_schema_extra={"flag": "--pace"},
    )
    replay_annotated: bool = Field(
        False,
        description="replay the annotated frames (--annotated-topic) instead of the raw frames",
        json_schema_extra={"flag": "--annotated"},
    )
    replay_frames_topic: str = topic_setting("frames", "topic of the raw frames", "--frames-topic")
    replay_annotated_topic: str = topic_setting(
        "annotated",
        "topic of the annotated frames (read with --annotated; --to-viewer publishes there)",
        "--annotated-topic",
    )
    replay_fps: float | None = Field(
        None,
        gt=0,
        le=1000,
        description="frame rate of the file (default: the stream's own, from its first "
        "capture times); frames are repeated or dropped to keep real time",
        json_schema_extra={"flag": "--fps", "metavar": "FPS"},
    )
    replay_max_gap: float = Field(
        5.0,
        gt=0,
        le=86400,
        description="a gap between two capture times longer than this (seconds: the camera "
        "was off) is cut to one frame, in the file and in the pacing",
        json_schema_extra={"flag": "--max-gap", "metavar": "SECONDS"},
    )
    replay_progress: bool = Field(
        True,
        description="show a progress bar on stderr (records read of the range, frames "
        "written, rate)",
        json_schema_extra={"flag": "--progress"},
    )

    @field_validator("replay_stream", "replay_viewer_stream")
    @classmethod
    def _check_stream(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_stream_id(value):
            raise ValueError(f"{value!r} is not a stream id (letters, digits, '_', '.', '-')")
        return value

    @field_validator("replay_to_file")
    @classmethod
    def _check_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if value.suffix.lower() not in FILE_CODECS:
            raise ValueError(f"{value}: the file must end in {' or '.join(FILE_CODECS)}")
        if not value.parent.is_dir():
            raise ValueError(f"{value}: folder {value.parent} does not exist")
        return value

    @model_validator(mode="after")
    def _check_output(self) -> ReplaySettings:
        chosen = [
            flag
            for flag, given in (
                ("--to-file", self.replay_to_file is not None),
                ("--to-topic", self.replay_to_topic is not None),
                ("--to-viewer", self.replay_to_viewer),
            )
            if given
        ]
        if len(chosen) != 1:
            told = f" (got {', '.join(chosen)})" if chosen else ""
            raise ValueError(
                f"choose one output: --to-file PATH, --to-topic TOPIC or --to-viewer{told}"
            )
        if self.replay_viewer_stream is not None and not self.replay_to_viewer:
            raise ValueError("--viewer-stream names the replay's stream in --to-viewer")
        if self.replay_to_topic is not None and self.replay_to_topic == self.source_topic:
            raise ValueError(f"--to-topic {self.replay_to_topic} is the topic the replay reads")
        return self

    @property
    def source_topic(self) -> str:
        """The topic read: the annotated frames with ``--annotated``, else the raw frames."""
        return self.replay_annotated_topic if self.replay_annotated else self.replay_frames_topic

    @property
    def pace(self) -> Pace:
        """The pacing asked for, or the output's default."""
        if self.replay_pace is not None:
            return self.replay_pace
        return "original" if self.replay_to_viewer else "fast"
