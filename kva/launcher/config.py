"""Settings of ``kva up``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from kva import retention
from kva.producer.demo import VIDEO_FPS, DemoKind
from kva.retention import (
    Retention,
    RetentionBytes,
    RetentionMs,
    retention_bytes_field,
    retention_ms_field,
)
from kva.settings import KvaSettings, listen_host, listen_port, split_list


class UpSettings(KvaSettings):
    """Settings of ``kva up``. Ports of 0 mean "any free port"."""

    command: ClassVar[str] = "up"

    up_source: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        json_schema_extra={"flag": "--source"},
        description="camera(s) for the producer, [ID=]SRC, repeatable; video files loop "
        "(default: the demo camera cam0, see --demo)",
    )
    up_demo: DemoKind = Field(
        "video",
        json_schema_extra={"flag": "--demo"},
        description="the camera when no --source is given: 'video' (vtest.avi, people "
        "walking, from scripts/fetch-demo-video.sh; 'photos' when it is missing) or 'photos' "
        "(pan and zoom over scikit-image's photos)",
    )
    up_fps: float = Field(
        VIDEO_FPS,
        gt=0,
        le=120,
        json_schema_extra={"flag": "--fps"},
        description="frames per second per camera (the default is the demo video's own rate)",
    )
    broker_mode: Literal["kraft", "zookeeper"] = Field("kraft", description="local broker topology")
    bootstrap_server: str | None = Field(
        None, description="use this existing Kafka instead of starting one"
    )
    kafka_port: int = listen_port(9092, "port of the local broker", "--kafka-port")
    serve_replicas: int = Field(2, ge=1, le=8, description="kva serve replicas")
    serve_port: int = listen_port(
        8501, "REST port of the first replica (others +1)", "--serve-port"
    )
    up_host: str = listen_host("viewer address", "--host")
    up_port: int = listen_port(8080, "viewer port", "--port")
    up_metrics_port: int = listen_port(
        9101, "producer metrics port (consumer: +1, events sink: +2)", "--metrics-port"
    )
    up_events_mqtt: str | None = Field(
        None,
        description="run kva events, publishing the events to this MQTT broker "
        "(mqtt://HOST:PORT; KVA_EVENTS_MQTT works too)",
        json_schema_extra={"flag": "--events-mqtt", "metavar": "URL"},
    )
    up_events_webhook: str | None = Field(
        None,
        description="run kva events, POSTing the events to this URL "
        "(KVA_EVENTS_WEBHOOK works too; the HMAC key from KVA_EVENTS_WEBHOOK_SECRET)",
        json_schema_extra={"flag": "--events-webhook", "metavar": "URL"},
    )
    up_zones: Path | None = Field(
        None,
        json_schema_extra={"flag": "--zones", "metavar": "FILE"},
        description="zones and counting lines per camera, in the camera file's format "
        "(kva consume --camera-file; the camera id is the stream id); default with the "
        "video demo: a counting line down the middle of the square",
    )
    up_frames_retention_ms: RetentionMs = retention_ms_field(
        retention.FRAMES.ms, "frames", "--frames-retention-ms"
    )
    up_frames_retention_bytes: RetentionBytes = retention_bytes_field(
        retention.FRAMES.bytes, "frames", "--frames-retention-bytes"
    )
    up_annotated_retention_ms: RetentionMs = retention_ms_field(
        retention.ANNOTATED.ms, "annotated", "--annotated-retention-ms"
    )
    up_annotated_retention_bytes: RetentionBytes = retention_bytes_field(
        retention.ANNOTATED.bytes, "annotated", "--annotated-retention-bytes"
    )
    up_predictions_retention_ms: RetentionMs = retention_ms_field(
        retention.PREDICTIONS.ms, "predictions", "--predictions-retention-ms"
    )
    up_predictions_retention_bytes: RetentionBytes = retention_bytes_field(
        retention.PREDICTIONS.bytes, "predictions", "--predictions-retention-bytes"
    )
    up_events_retention_ms: RetentionMs = retention_ms_field(
        retention.EVENTS.ms, "events", "--events-retention-ms"
    )
    up_events_retention_bytes: RetentionBytes = retention_bytes_field(
        retention.EVENTS.bytes, "events", "--events-retention-bytes"
    )
    models_dir: Path | None = Field(
        None, description="model repository (default: ~/.cache/kva/models)"
    )
    ready_timeout: float = Field(
        120.0, gt=0, description="seconds each service may take to become ready"
    )

    _split = field_validator("up_source", mode="before")(split_list)

    def retentions(self) -> dict[str, Retention]:
        """Topic -> what it keeps, for the four topics of the pipeline."""
        return {
            "frames": Retention(self.up_frames_retention_ms, self.up_frames_retention_bytes),
            "annotated": Retention(
                self.up_annotated_retention_ms, self.up_annotated_retention_bytes
            ),
            "predictions": Retention(
                self.up_predictions_retention_ms, self.up_predictions_retention_bytes
            ),
            "events": Retention(self.up_events_retention_ms, self.up_events_retention_bytes),
        }
