"""Settings of ``kva consume``: topics, models and their replicas, limits.

Every field is a flag (``--input-topic``) and an environment variable
(``KVA_CONSUME_INPUT_TOPIC``); the ``consume_`` prefix keeps the variables
apart from the other services' when they share one environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode

from kva.consumer.model_input import InputOptions, parse_model_input
from kva.frame import DEFAULT_MAX_FRAME_BYTES
from kva.retention import (
    ANNOTATED,
    EVENTS,
    PREDICTIONS,
    Retention,
    RetentionBytes,
    RetentionMs,
    retention_bytes_field,
    retention_ms_field,
)
from kva.settings import KafkaSettings, listen_host, listen_port, split_list

ListSetting = Annotated[list[str], NoDecode, BeforeValidator(split_list)]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One ``--model NAME=URL[,URL...]``: a model and its replica URLs."""

    name: str
    urls: tuple[str, ...]


def parse_model_spec(text: str) -> ModelSpec:
    """``NAME=URL[,URL...]`` -> :class:`ModelSpec`; raises ``ValueError`` with the reason."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise ValueError(f"{text!r} is not NAME=URL[,URL...]")
    urls = tuple(u.strip() for u in rest.split(",") if u.strip())
    for url in urls:
        check_replica_url(url)
    if len(set(urls)) != len(urls):
        raise ValueError(f"model {name!r} lists the same replica URL twice")
    return ModelSpec(name, urls)


@dataclass(frozen=True, slots=True)
class ReplicaProtocol:
    """One form of replica URL: the protocol it selects and the servers that speak it."""

    scheme: str
    form: str
    protocol: str
    servers: str


#: Every replica URL ``--model NAME=URL`` takes; the README's consumer section shows this table.
REPLICA_PROTOCOLS: tuple[ReplicaProtocol, ...] = (
    ReplicaProtocol(
        "http(s)",
        "http(s)://host:port/v1/models/<m>[/versions/<n>]",
        'TF Serving REST: `:predict` with `{"b64": jpeg}` or a tensor (JSON)',
        "kva serve, TF Serving, OVMS",
    ),
    ReplicaProtocol(
        "http(s)",
        "http(s)://host:port/v2/models/<m>[/versions/<n>]",
        "KServe v2 REST: `/infer`, the JPEG as one BYTES element or a tensor (binary "
        "extension; JSON `data` for a server without it)",
        "kva serve, OVMS, Triton, MLServer (tensors)",
    ),
    ReplicaProtocol(
        "grpc",
        "grpc://host:port/<m>[/versions/<n>]",
        "TF Serving gRPC: `PredictionService/Predict`, a DT_STRING tensor or a numeric one",
        "kva serve, TF Serving, OVMS",
    ),
    ReplicaProtocol(
        "kserve+grpc",
        "kserve+grpc://host:port/<m>[/versions/<n>]",
        "KServe v2 gRPC: `GRPCInferenceService/ModelInfer`, the JPEG as one BYTES element "
        "or a tensor (raw contents)",
        "kva serve, OVMS, Triton, MLServer (tensors)",
    ),
    ReplicaProtocol(
        "openvino",
        "openvino:PATH",
        "in process: OpenVINO runs the model (a base or version folder) in the consumer, "
        "a tensor in, no server",
        "the consumer itself (needs `openvino`, the `[serve]` extra)",
    ),
)
_SCHEMES = (
    ", ".join(
        f"{s}://" for s in dict.fromkeys(p.scheme for p in REPLICA_PROTOCOLS) if s != "openvino"
    )
    + ", openvino:"
)


def _check_openvino_url(url: str, path: str) -> None:
    import importlib.util

    if not path.strip():
        raise ValueError(f"{url!r}: expected openvino:PATH (a model base or version folder)")
    if importlib.util.find_spec("openvino") is None:
        raise ValueError(
            f"{url!r}: the in-process backend needs openvino "
            "(pip install 'kafka-video-analytics[serve]')"
        )


def check_replica_url(url: str) -> None:
    """Check a replica URL against :data:`REPLICA_PROTOCOLS`.

    Raises:
        ValueError: the URL fits none of them, or its protocol's client is not installed.
    """
    parts = urlsplit(url)
    if parts.scheme == "openvino":
        _check_openvino_url(url, parts.path)
        return
    if parts.scheme == "grpc":
        from kva.grpc_api import check_grpc_url

        check_grpc_url(url)
        return
    if parts.scheme == "kserve+grpc":
        _check_kserve_grpc_url(url)
        return
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r}: replica URL must start with {_SCHEMES}")
    if len(segments) not in (3, 5) or segments[0] not in ("v1", "v2") or segments[1] != "models":
        raise ValueError(
            f"{url!r}: replica URL must end in /v1/models/<model> or /v2/models/<model>"
            " (optionally /versions/<n>)"
        )
    if len(segments) == 5 and (segments[3] != "versions" or not segments[4].isdigit()):
        raise ValueError(f"{url!r}: expected .../versions/<positive integer>")


def _check_kserve_grpc_url(url: str) -> None:
    from kva import kserve_grpc_api
    from kva.grpc_api import INSTALL_HINT, parse_grpc_url

    parse_grpc_url(url, scheme="kserve+grpc")
    if not kserve_grpc_api.available():
        raise ValueError(f"{url!r}: KServe gRPC replicas need grpcio and protobuf: {INSTALL_HINT}")


def parse_labels_spec(text: str) -> tuple[str, str]:
    """``NAME=PATH_OR_URL`` -> (name, source)."""
    name, sep, source = text.partition("=")
    if not sep or not name.strip() or not source.strip():
        raise ValueError(f"{text!r} is not NAME=PATH_OR_URL")
    return name.strip(), source.strip()


class ConsumerSettings(KafkaSettings):
    """Everything ``kva consume`` can be told."""

    command: ClassVar[str] = "consume"

    consume_input_topic: str = Field(
        "frames",
        description="topic to read frames from",
        json_schema_extra={"flag": "--input-topic", "metavar": "TOPIC"},
    )
    consume_output_topic: str = Field(
        "annotated",
        description="topic for annotated frames",
        json_schema_extra={"flag": "--output-topic", "metavar": "TOPIC"},
    )
    consume_metadata_topic: str = Field(
        "predictions",
        description="topic for one JSON prediction document per frame ('' = none)",
        json_schema_extra={"flag": "--metadata-topic", "metavar": "TOPIC"},
    )
    consume_group_id: str = Field(
        "kva-consume",
        description="consumer group: consumers in one group share the partitions",
        json_schema_extra={"flag": "--group-id", "metavar": "GROUP"},
    )
    consume_models: ListSetting = Field(
        default_factory=list,
        description="NAME=URL[,URL...]: a model and its replicas, one protocol per URL: "
        "http(s)://host:port/v1/models/<m> (TF Serving REST), .../v2/models/<m> (KServe v2 "
        "REST), grpc://host:port/<m> (TF Serving gRPC), kserve+grpc://host:port/<m> (KServe "
        "v2 gRPC); repeatable",
        json_schema_extra={"flag": "--model", "metavar": "NAME=URL[,URL...]"},
    )
    consume_labels: ListSetting = Field(
        default_factory=list,
        description="NAME=PATH_OR_URL: class names of a model (JSON list, JSON object id->name, "
        "or one name per line); default: the server's /labels endpoint, else numeric ids",
        json_schema_extra={"flag": "--labels", "metavar": "NAME=PATH_OR_URL"},
    )
    consume_model_inputs: ListSetting = Field(
        default_factory=list,
        description="NAME:KEY=VALUE[,KEY=VALUE...]: how frames go into a model: send=auto|jpeg|"
        "tensor (auto: a JPEG for uint8 NHWC inputs, else a tensor), dtype, layout=NHWC|NCHW, "
        "size=WxH (taken from the server's metadata and checked against it), order=RGB|BGR, "
        "scale, mean=a/b/c (the tensor is (pixel - mean) * scale); repeatable",
        json_schema_extra={"flag": "--model-input", "metavar": "NAME:KEY=VALUE,..."},
    )
    consume_passthrough: bool = Field(
        False,
        description="no models: only re-stamp and republish frames (transport benchmark)",
        json_schema_extra={"flag": "--passthrough"},
    )
    consume_max_frame_age: float = Field(
        2.0,
        gt=0,
        description="drop a frame older than this many seconds before inference (reason stale)",
        json_schema_extra={"flag": "--max-frame-age", "metavar": "SECONDS"},
    )
    consume_max_lag: int = Field(
        50,
        ge=0,
        description="messages a partition may hold beyond the newest frame of each of its "
        "streams before the consumer jumps ahead to those newest frames (0 = always jump)",
        json_schema_extra={"flag": "--max-lag", "metavar": "MESSAGES"},
    )
    consume_reorder_wait: float = Field(
        0.1,
        ge=0,
        description="seconds a finished frame may wait for older frames of its stream still "
        "at the models, so both are published in order (0 = publish at once; a later older "
        "frame is then dropped as stale)",
        json_schema_extra={"flag": "--reorder-wait", "metavar": "SECONDS"},
    )
    consume_max_streams: int = Field(
        1024,
        ge=1,
        description="streams one consumer tracks; frames of further streams are dropped "
        "(reason too_many_streams) so state and metric labels stay bounded",
        json_schema_extra={"flag": "--max-streams", "metavar": "N"},
    )
    consume_forget_after: float = Field(
        60.0,
        gt=0,
        description="seconds without frames after which a stream is forgotten, with its "
        "metric series",
        json_schema_extra={"flag": "--forget-after", "metavar": "SECONDS"},
    )
    consume_max_frame_bytes: int = Field(
        DEFAULT_MAX_FRAME_BYTES,
        gt=0,
        description="larger input messages are dropped (reason decode_error)",
        json_schema_extra={"flag": "--max-frame-bytes", "metavar": "BYTES"},
    )
    consume_max_inflight: int = Field(
        2,
        ge=1,
        le=64,
        description="in-flight requests per model-server replica",
        json_schema_extra={"flag": "--max-inflight", "metavar": "N"},
    )
    consume_connect_timeout: float = Field(
        1.0,
        gt=0,
        description="seconds to connect to a replica",
        json_schema_extra={"flag": "--connect-timeout", "metavar": "SECONDS"},
    )
    consume_read_timeout: float = Field(
        2.0,
        gt=0,
        description="seconds to wait for a replica's answer",
        json_schema_extra={"flag": "--read-timeout", "metavar": "SECONDS"},
    )
    consume_retries: int = Field(
        1,
        ge=0,
        le=5,
        description="retries of a failed request, each on another replica",
        json_schema_extra={"flag": "--retries", "metavar": "N"},
    )
    consume_eject_after: int = Field(
        3,
        ge=1,
        description="consecutive failures after which a replica is ejected until a probe passes",
        json_schema_extra={"flag": "--eject-after", "metavar": "FAILURES"},
    )
    consume_probe_interval: float = Field(
        0.5,
        gt=0,
        description="seconds between health probes of an ejected replica",
        json_schema_extra={"flag": "--probe-interval", "metavar": "SECONDS"},
    )
    consume_top_k: int = Field(
        3,
        ge=1,
        le=10,
        description="classes drawn per classifier",
        json_schema_extra={"flag": "--top-k", "metavar": "K"},
    )
    consume_min_score: float = Field(
        0.5,
        ge=0,
        le=1,
        description="detections below this score are not drawn or published",
        json_schema_extra={"flag": "--min-score", "metavar": "SCORE"},
    )
    consume_jpeg_quality: int = Field(
        85,
        ge=10,
        le=100,
        description="JPEG quality of annotated frames",
        json_schema_extra={"flag": "--jpeg-quality", "metavar": "Q"},
    )
    consume_request_quality: int = Field(
        90,
        ge=10,
        le=100,
        description="JPEG quality of the resized image sent to the models",
        json_schema_extra={"flag": "--request-quality", "metavar": "Q"},
    )
    consume_track: bool = Field(
        True,
        description="track the objects of detector models (ByteTrack, per stream): track ids "
        "in the predictions document and on the frame, and zone/line events",
        json_schema_extra={"flag": "--track"},
    )
    consume_track_models: ListSetting = Field(
        default_factory=list,
        description="the detector models to track (repeatable); none given: every detector",
        json_schema_extra={"flag": "--track-model", "metavar": "NAME"},
    )
    consume_track_window: float = Field(
        3.0,
        gt=0,
        le=600,
        description="seconds a track not seen (missed or dropped frames) is kept, so the "
        "object keeps its id when it is found again",
        json_schema_extra={"flag": "--track-window", "metavar": "SECONDS"},
    )
    consume_max_tracks: int = Field(
        256,
        ge=1,
        le=100_000,
        description="tracks kept per stream and model (the least recently seen go first)",
        json_schema_extra={"flag": "--max-tracks", "metavar": "N"},
    )
    consume_events_topic: str = Field(
        "events",
        description="topic for zone and line events (JSON, keyed by stream; '' = none)",
        json_schema_extra={"flag": "--events-topic", "metavar": "TOPIC"},
    )
    consume_output_retention_ms: RetentionMs = retention_ms_field(
        ANNOTATED.ms, "annotated (--output-topic)", "--output-retention-ms"
    )
    consume_output_retention_bytes: RetentionBytes = retention_bytes_field(
        ANNOTATED.bytes, "annotated (--output-topic)", "--output-retention-bytes"
    )
    consume_metadata_retention_ms: RetentionMs = retention_ms_field(
        PREDICTIONS.ms, "predictions (--metadata-topic)", "--metadata-retention-ms"
    )
    consume_metadata_retention_bytes: RetentionBytes = retention_bytes_field(
        PREDICTIONS.bytes, "predictions (--metadata-topic)", "--metadata-retention-bytes"
    )
    consume_events_retention_ms: RetentionMs = retention_ms_field(
        EVENTS.ms, "events (--events-topic)", "--events-retention-ms"
    )
    consume_events_retention_bytes: RetentionBytes = retention_bytes_field(
        EVENTS.bytes, "events (--events-topic)", "--events-retention-bytes"
    )
    consume_camera_file: Path | None = Field(
        None,
        description="the producer's camera file: the zones and counting lines of each camera "
        "(stream id = camera id), re-read when it changes",
        json_schema_extra={"flag": "--camera-file", "metavar": "FILE"},
    )
    consume_camera_file_poll: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="seconds between checks of the camera file for changes",
        json_schema_extra={"flag": "--camera-file-poll", "metavar": "SECONDS"},
    )
    consume_metrics_host: str = listen_host("address for /metrics and /healthz", "--metrics-host")
    consume_metrics_port: int = listen_port(
        9102, "port for /metrics and /healthz (0 = any free port)", "--metrics-port"
    )
    consume_status_interval: float = Field(
        5.0,
        gt=0,
        description="seconds between the one-line status per stream in the log",
        json_schema_extra={"flag": "--status-interval", "metavar": "SECONDS"},
    )
    consume_start_timeout: float = Field(
        30.0,
        gt=0,
        description="seconds to wait at start for each model's metadata from some replica",
        json_schema_extra={"flag": "--start-timeout", "metavar": "SECONDS"},
    )
    consume_from: str | None = Field(
        None,
        description="re-score mode: process every frame of the input topic captured from this "
        "time on (now, -5m, -1h30m, ISO 8601 like 2026-12-07T12:00:00Z, epoch ms), exactly "
        "once, in its own --group-id and into its own topics, then exit with a summary",
        json_schema_extra={"flag": "--from", "metavar": "TIME"},
    )
    consume_to: str | None = Field(
        None,
        description="re-score mode: the end of the range, exclusive (same forms as --from; "
        "default: now, when the re-score first starts; a resumed one keeps its range)",
        json_schema_extra={"flag": "--to", "metavar": "TIME"},
    )
    consume_commit_frames: int = Field(
        100,
        ge=1,
        le=100_000,
        description="re-score mode: frames per Kafka transaction (outputs and input offsets "
        "are committed together)",
        json_schema_extra={"flag": "--commit-frames", "metavar": "N"},
    )
    consume_commit_interval: float = Field(
        1.0,
        gt=0,
        le=30,
        description="re-score mode: seconds at most between two transactions",
        json_schema_extra={"flag": "--commit-interval", "metavar": "SECONDS"},
    )
    consume_model_wait: float = Field(
        60.0,
        gt=0,
        le=240,  # below the transactions' timeout (kva.kafka.transactional): 5 minutes
        description="re-score mode: seconds a frame may wait for every model to answer "
        "(retried, ejected replicas probed back) before the re-score stops with an error "
        "(run it again to resume)",
        json_schema_extra={"flag": "--model-wait", "metavar": "SECONDS"},
    )

    @field_validator("consume_models")
    @classmethod
    def _check_models(cls, value: list[str]) -> list[str]:
        names = [parse_model_spec(item).name for item in value]
        if len(set(names)) != len(names):
            raise ValueError("a model name is given twice; list all its replicas in one --model")
        return value

    @field_validator("consume_labels")
    @classmethod
    def _check_labels(cls, value: list[str], info: ValidationInfo) -> list[str]:
        known = {parse_model_spec(m).name for m in info.data.get("consume_models", [])}
        for item in value:
            name, _source = parse_labels_spec(item)
            if name not in known:
                raise ValueError(f"--labels names model {name!r}, which no --model defines")
        return value

    @field_validator("consume_track_models")
    @classmethod
    def _check_track_models(cls, value: list[str], info: ValidationInfo) -> list[str]:
        known = {parse_model_spec(m).name for m in info.data.get("consume_models", [])}
        for name in value:
            if name not in known:
                raise ValueError(f"--track-model names model {name!r}, which no --model defines")
        return value

    @field_validator("consume_model_inputs")
    @classmethod
    def _check_model_inputs(cls, value: list[str], info: ValidationInfo) -> list[str]:
        known = {parse_model_spec(m).name for m in info.data.get("consume_models", [])}
        names = []
        for item in value:
            name, _options = parse_model_input(item)
            if name not in known:
                raise ValueError(f"--model-input names model {name!r}, which no --model defines")
            names.append(name)
        if len(set(names)) != len(names):
            raise ValueError("a model's --model-input is given twice; put every key in one")
        return value

    @field_validator("consume_passthrough")
    @classmethod
    def _models_or_passthrough(cls, value: bool, info: ValidationInfo) -> bool:
        if not value and "consume_models" in info.data and not info.data["consume_models"]:
            raise ValueError("give at least one --model NAME=URL[,URL...] (or --passthrough)")
        return value

    @model_validator(mode="after")
    def _check_rescore(self) -> ConsumerSettings:
        if self.consume_from is None:
            if self.consume_to is not None:
                raise ValueError("--to needs --from: it ends a re-score range")
            return self
        problems = rescore_problems(self)
        if problems:
            raise ValueError(
                "the re-score mode (--from) writes only to its own group and topics: "
                + "; ".join(problems)
            )
        return self

    @property
    def rescore(self) -> bool:
        """Whether this is a re-score run (``--from``) rather than the live pipeline."""
        return self.consume_from is not None

    def model_specs(self) -> list[ModelSpec]:
        """The parsed ``--model`` values."""
        return [parse_model_spec(item) for item in self.consume_models]

    def model_inputs(self) -> dict[str, InputOptions]:
        """Model name -> its ``--model-input`` options."""
        return dict(parse_model_input(item) for item in self.consume_model_inputs)

    def retentions(self) -> dict[str, Retention]:
        """Topic -> what it keeps, for each topic the consumer writes (applied at every start)."""
        found = {
            self.consume_output_topic: Retention(
                self.consume_output_retention_ms, self.consume_output_retention_bytes
            ),
            self.consume_metadata_topic: Retention(
                self.consume_metadata_retention_ms, self.consume_metadata_retention_bytes
            ),
        }
        if self.consume_events_topic and not self.consume_passthrough:
            found[self.consume_events_topic] = Retention(
                self.consume_events_retention_ms, self.consume_events_retention_bytes
            )
        return {topic: kept for topic, kept in found.items() if topic}

    def label_sources(self) -> dict[str, str]:
        """Model name -> labels path or URL from ``--labels``."""
        return dict(parse_labels_spec(item) for item in self.consume_labels)


#: The settings a re-score run must not share with the live pipeline, and their flags.
_OWN_NAMES = (
    ("consume_group_id", "--group-id"),
    ("consume_output_topic", "--output-topic"),
    ("consume_metadata_topic", "--metadata-topic"),
    ("consume_events_topic", "--events-topic"),
)


def rescore_problems(settings: ConsumerSettings) -> list[str]:
    """What keeps ``settings`` from being a re-score run, for a person (empty when fine).

    A re-score must not write into the live pipeline's group or topics (the defaults of
    those settings), into its own input, or twice into one topic; its range must parse.
    """
    from kva.timerange import TimeRange, TimeRangeError

    problems = []
    if settings.consume_passthrough:
        problems.append("--passthrough has no models to re-score with")
    fields = ConsumerSettings.model_fields
    seen: dict[str, str] = {}
    for name, flag in _OWN_NAMES:
        value = getattr(settings, name)
        live = fields[name].default
        if value == live:
            example = f"{live}-rescore" if live else "rescore"
            problems.append(
                f"{flag} is {value!r}, the live pipeline's (name another, e.g. {flag} {example})"
            )
        elif value and value == settings.consume_input_topic:
            problems.append(f"{flag} is {value!r}, the input topic")
        elif value and value in seen and name != "consume_group_id":
            problems.append(f"{flag} and {seen[value]} are both {value!r}")
        if value and name != "consume_group_id":
            seen[value] = flag
    try:
        TimeRange.parse(str(settings.consume_from), settings.consume_to, now_ms=_now_ms())
    except TimeRangeError as exc:
        problems.append(f"--from/--to: {exc}")
    return problems


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000
