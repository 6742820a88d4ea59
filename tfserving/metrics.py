"""Prometheus metrics of ``kva serve`` (one registry per app, nothing global)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kva.tfserving.manager import ModelManager

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServeMetrics:
    """Request counters and latency histograms, plus live gauges read from the manager."""

    def __init__(self, manager: ModelManager, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "kva_serve_requests_total",
            "requests answered, by model, protocol (v1, v2, grpc, kserve_grpc, other) and status",
            ["model", "protocol", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kva_serve_request_duration_seconds",
            "time from request received to response built, by model and protocol",
            ["model", "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference = Histogram(
            "kva_serve_inference_duration_seconds",
            "time spent waiting for and running OpenVINO inference, by model",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rejected = Counter(
            "kva_serve_rejected_requests_total",
            "requests refused with 503 because the model had --max_inflight requests in flight",
            ["model"],
            registry=self.registry,
        )
        self.registry.register(_LiveCollector(manager))


class _LiveCollector(Collector):
    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    def collect(self) -> Iterator[GaugeMetricFamily]:
        inflight = GaugeMetricFamily(
            "kva_serve_inflight_requests", "requests running or queued, by model", labels=["model"]
        )
        queued = GaugeMetricFamily(
            "kva_serve_queued_requests",
            "requests admitted but waiting for a free infer request, by model",
            labels=["model"],
        )
        versions = GaugeMetricFamily(
            "kva_serve_loaded_versions", "model versions loaded, by model", labels=["model"]
        )
        for name, state in self._manager.models.items():
            count = state.admission.inflight
            slots = sum(s.slots for s in state.versions.values())
            inflight.add_metric([name], count)
            queued.add_metric([name], max(0, count - slots))
            versions.add_metric([name], len(state.versions))
        ready = GaugeMetricFamily("kva_serve_ready", "1 when every model is loaded and admitting")
        ready.add_metric([], 1.0 if self._manager.ready() else 0.0)
        yield from (inflight, queued, versions, ready)
