"""A configured model at run time: its metadata, labels and replica pool, and one call."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from kva.consumer.backend_api import Backend, ModelInfo, Payload
from kva.consumer.backends import backend_for_url
from kva.consumer.balancer import ReplicaPool
from kva.consumer.config import ConsumerSettings, ModelSpec
from kva.consumer.errors import InferenceError, MetadataError
from kva.consumer.labels import LabelsError, load_labels
from kva.consumer.metrics import ConsumerMetrics
from kva.consumer.model_input import InputFormat, InputOptions, input_format
from kva.consumer.predictions import to_prediction
from kva.predictions import ModelResult

logger = logging.getLogger(__name__)


class ModelSetupError(RuntimeError):
    """A model cannot be used (not found, wrong outputs, no replica answers)."""


@dataclass(slots=True)
class ModelRuntime:
    """One model: what it is (``info``), its labels and its replicas."""

    info: ModelInfo
    labels: list[str] | None
    pool: ReplicaPool
    retries: int
    acquire_timeout: float
    top_k: int
    min_score: float
    input: InputFormat = None  # type: ignore[assignment]  # None: set from info below

    def __post_init__(self) -> None:
        if self.input is None:
            self.input = input_format(self.info, InputOptions())

    @property
    def name(self) -> str:
        return self.info.name

    def run(self, payload: Payload) -> ModelResult:
        """Infer on one frame (see :mod:`~kva.consumer.model_input`): least-loaded replica,
        bounded retries elsewhere."""
        if self.pool.up_count() == 0:
            return ModelResult(self.name, "unavailable", error="no replica in rotation")
        tried: set[str] = set()
        error: InferenceError | None = None
        for attempt in range(self.retries + 1):
            replica = self.pool.acquire(tried, self.acquire_timeout)
            if replica is None:
                break
            tried.add(replica.url)
            started = time.monotonic()
            try:
                outputs = replica.backend.infer(self.info, payload)
                prediction = to_prediction(
                    self.info, outputs, self.labels, self.top_k, self.min_score
                )
            except InferenceError as exc:
                self.pool.release(replica, ok=False, latency=0.0, reason=exc.reason)
                error = exc
                if not exc.retriable:
                    break
                continue
            latency = time.monotonic() - started
            self.pool.release(replica, ok=True, latency=latency)
            return ModelResult(
                self.name, "ok", prediction, latency, replica.url, attempts=attempt + 1
            )
        if error is None:
            if self.pool.up_count():
                return ModelResult(self.name, "busy", error="every replica stayed busy")
            return ModelResult(self.name, "unavailable", error="no replica in rotation")
        return ModelResult(self.name, "error", error=str(error), attempts=len(tried))


def probe_ejected(
    models: Sequence[ModelRuntime],
    stop: threading.Event,
    interval: float,
    on_back: Callable[[], None] = lambda: None,
) -> None:
    """Until ``stop``: probe every ejected replica whose time has come, every ``interval``
    seconds at most 0.25; ``on_back()`` after each one that is back in rotation."""
    while not stop.wait(min(0.25, interval)):
        for model in models:
            for replica in model.pool.probe_due():
                if model.pool.probe(replica):
                    on_back()


def build_model(
    spec: ModelSpec,
    settings: ConsumerSettings,
    metrics: ConsumerMetrics,
    labels_source: str | None,
    deadline: float,
    stop: threading.Event,
) -> ModelRuntime:
    """Connect to a model's replicas, read its metadata and labels.

    Replicas that do not answer are ejected (the probe brings them in later).

    Raises:
        ModelSetupError: the model is missing or unusable, or no replica answered
            before ``deadline`` (monotonic time).
    """
    backends = [
        backend_for_url(
            url,
            connect_timeout=settings.consume_connect_timeout,
            read_timeout=settings.consume_read_timeout,
            pool_size=settings.consume_max_inflight + 2,
        )
        for url in spec.urls
    ]
    info, answered = _first_metadata(spec, backends, deadline, stop)
    pool = ReplicaPool(
        spec.name,
        backends,
        max_inflight=settings.consume_max_inflight,
        eject_after=settings.consume_eject_after,
        probe_interval=settings.consume_probe_interval,
        metrics=metrics,
    )
    for backend in backends:
        if backend not in answered:
            pool.eject(backend.url, "did not answer at start")
    labels = _labels(spec, answered, labels_source, settings)
    options = settings.model_inputs().get(spec.name, InputOptions())
    if options.send == "auto" and not all(b.decodes_images for b in backends):
        options = replace(options, send="tensor")  # the in-process backend decodes no JPEG
    try:
        fmt = input_format(info, options)
    except MetadataError as exc:
        raise ModelSetupError(f"model {spec.name}: {exc}") from None
    logger.info(
        "model %s: %s, input %s sent as %s, %d replica(s), %s",
        spec.name,
        info.kind,
        info.input_name,
        fmt.describe(),
        len(backends),
        f"{len(labels)} labels" if labels else "numeric class ids",
    )
    return ModelRuntime(
        info,
        labels,
        pool,
        retries=settings.consume_retries,
        acquire_timeout=settings.consume_read_timeout,
        top_k=settings.consume_top_k,
        min_score=settings.consume_min_score,
        input=fmt,
    )


def _first_metadata(
    spec: ModelSpec, backends: list[Backend], deadline: float, stop: threading.Event
) -> tuple[ModelInfo, list[Backend]]:
    errors: dict[str, str] = {}
    while True:
        infos: dict[Backend, ModelInfo] = {}
        for backend in backends:
            try:
                infos[backend] = backend.metadata()
            except MetadataError as exc:
                raise ModelSetupError(f"model {spec.name}: {exc}") from None
            except InferenceError as exc:
                if exc.reason == "http_4xx":
                    raise ModelSetupError(
                        f"model {spec.name}: {backend.url} does not serve it ({exc})"
                    ) from None
                errors[backend.url] = str(exc)
        if infos:
            first = next(iter(infos.values()))
            for backend, info in infos.items():
                if info != first:
                    raise ModelSetupError(
                        f"model {spec.name}: replica {backend.url} serves a different model "
                        f"({info} vs {first})"
                    )
            return first, list(infos)
        if time.monotonic() >= deadline or stop.wait(min(0.5, deadline - time.monotonic())):
            detail = "; ".join(errors.values())
            raise ModelSetupError(f"model {spec.name}: no replica answered: {detail}")


def _labels(
    spec: ModelSpec,
    backends: list[Backend],
    source: str | None,
    settings: ConsumerSettings,
) -> list[str] | None:
    """``--labels``, else the first replica that has class names (a KServe v2 gRPC or a
    real TF Serving replica has none), else None (numeric class ids).

    Detectors too: a one-class detector's single label (``["face"]``, ``["person"]``) names
    its boxes.
    """
    if source:
        try:
            return load_labels(source, timeout=settings.consume_read_timeout)
        except LabelsError as exc:
            raise ModelSetupError(f"model {spec.name}: {exc}") from None
    for backend in backends:
        try:
            labels = backend.labels()
        except InferenceError as exc:
            logger.warning("model %s: no labels from %s (%s)", spec.name, backend.url, exc)
            continue
        if labels is not None:
            return labels
    return None  # the start-up log line says "numeric class ids"
