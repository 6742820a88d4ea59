"""Settings of ``kva serve``: TF Serving's flag names, ``KVA_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from kva.settings import KvaSettings, listen_host, listen_port


def _flag(name: str) -> dict[str, Any]:
    return {"flag": "--" + name, "metavar": name.upper()}


class ServeSettings(KvaSettings):
    """How ``kva serve`` binds, which models it serves and how it runs them."""

    command: ClassVar[str] = "serve"

    rest_api_port: int = listen_port(8501, "HTTP port (0 = any free port)", "--rest_api_port")
    rest_api_host: str = listen_host(
        "address to bind (0.0.0.0 for every interface)", "--rest_api_host", "--bind"
    )
    grpc_port: int | None = listen_port(
        None,
        "gRPC port (TF Serving's PredictionService/ModelService and KServe v2's "
        "GRPCInferenceService; 0 = any free port; default: no gRPC). Binds "
        "--rest_api_host too. Needs the [grpc] extra",
        "--port",
    )
    rest_api_num_threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="HTTP worker threads (default: 4 x CPUs + --max_inflight x models)",
        json_schema_extra=_flag("rest_api_num_threads"),
    )
    rest_api_timeout_in_ms: int = Field(
        30000,
        ge=1,
        description="longest a request may wait for an inference slot",
        json_schema_extra=_flag("rest_api_timeout_in_ms"),
    )
    model_name: str = Field(
        "default",
        description="name of the single model (with --model_base_path)",
        json_schema_extra=_flag("model_name"),
    )
    model_base_path: Path | None = Field(
        None,
        description="folder of the single model, holding <version>/ folders",
        json_schema_extra=_flag("model_base_path"),
    )
    model_config_file: Path | None = Field(
        None,
        description="TF Serving model_config_list text file (several models, labels)",
        json_schema_extra=_flag("model_config_file"),
    )
    file_system_poll_wait_seconds: float = Field(
        2.0,
        description="seconds between scans for new/removed versions (0 = scan once)",
        json_schema_extra=_flag("file_system_poll_wait_seconds"),
    )
    model_config_file_poll_wait_seconds: float = Field(
        0.0,
        ge=0,
        description="seconds between re-reads of --model_config_file (0 = read once)",
        json_schema_extra=_flag("model_config_file_poll_wait_seconds"),
    )
    serve_cache_dir: Path | None = Field(
        None,
        description="where models read from SavedModel, ONNX, TFLite, PaddlePaddle or frozen "
        "graphs are kept once converted to OpenVINO IR (default: <kva cache>/converted)",
        json_schema_extra=_flag("cache_dir"),
    )
    serve_device: str = Field(
        "CPU",
        min_length=1,
        description="OpenVINO device: CPU, GPU, NPU, AUTO, ...",
        json_schema_extra=_flag("device"),
    )
    serve_performance_hint: Literal["THROUGHPUT", "LATENCY"] = Field(
        "THROUGHPUT",
        description="OpenVINO performance hint for every compiled model",
        json_schema_extra=_flag("performance_hint"),
    )
    serve_inference_precision: Literal["f32", "bf16", "f16", "auto"] = Field(
        "f32",
        description="element type models compute in: f32 answers as TensorFlow does; bf16/f16 "
        "are faster where the device supports them; auto is OpenVINO's choice for the device "
        "(bf16 on CPUs with AVX512_BF16 or AMX)",
        json_schema_extra=_flag("inference_precision"),
    )
    serve_max_inflight: int = Field(
        16,
        ge=1,
        description="requests per model running or queued; beyond: 503 at once",
        json_schema_extra=_flag("max_inflight"),
    )
    serve_max_request_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="largest request body, as sent and once decompressed; beyond: 413",
        json_schema_extra=_flag("max_request_bytes"),
    )
    serve_max_image_pixels: int = Field(
        40_000_000,
        ge=1,
        description="most pixels (width x height) decoded for one request, over all its "
        "encoded images together; beyond: 400",
        json_schema_extra=_flag("max_image_pixels"),
    )

    @model_validator(mode="after")
    def _one_source(self) -> ServeSettings:
        if (self.model_base_path is None) == (self.model_config_file is None):
            raise ValueError("give exactly one of --model_base_path or --model_config_file")
        return self

    def worker_threads(self, models: int = 1) -> int:
        """The HTTP thread count: explicit, or enough to admit --max_inflight for every model.

        With fewer threads, requests beyond them would wait in the HTTP server's
        queue instead of reaching admission control and its immediate 503.
        """
        if self.rest_api_num_threads is not None:
            return self.rest_api_num_threads
        return min(1024, 4 * (os.cpu_count() or 1) + self.serve_max_inflight * max(1, models))
