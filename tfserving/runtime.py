"""What every request of ``kva serve`` shares, REST and gRPC alike: models, limits, metrics.

A *request budget* is what one request may spend decoding images: at most
``max_image_pixels`` pixels over all its encoded images together
(:class:`kva.images.PixelBudget`), so a body full of small files that each
claim a large image cannot multiply the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kva.images import ImageError, PixelBudget
from kva.tfserving.errors import InvalidArgument, ServingError
from kva.tfserving.images import decode_image
from kva.tfserving.manager import ModelManager
from kva.tfserving.metrics import ServeMetrics
from kva.tfserving.servable import Servable
from kva.tfserving.stats import StatsBook
from kva.tfserving.tensors import ImageDecoder


@dataclass
class Runtime:
    """The models, the request limits and the metrics, shared by the REST and gRPC handlers."""

    manager: ModelManager
    metrics: ServeMetrics
    max_request_bytes: int
    max_image_pixels: int
    timeout_seconds: float
    stats: StatsBook = field(default_factory=StatsBook)

    def image_decoder(self) -> ImageDecoder:
        """A decoder for the images of one request, all drawn from one request budget.

        Errors are :class:`InvalidArgument` (400, ``INVALID_ARGUMENT``).
        """
        budget = PixelBudget(self.max_image_pixels)

        def decode(data: bytes, height: int, width: int) -> np.ndarray:
            try:
                return decode_image(data, height, width, budget)
            except ImageError as exc:
                raise InvalidArgument(str(exc)) from None

        return decode

    def execute(
        self, servable: Servable, build: Callable[[], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """Admit the request (503 beyond ``--max_inflight``), build its tensors and infer."""
        state = self.manager.state(servable.name)
        begun = time.perf_counter_ns()
        try:
            state.admission.enter(servable.name)
        except ServingError:
            self.metrics.rejected.labels(servable.name).inc()
            self._record(servable, begun, ok=False)
            raise
        input_ns = infer_ns = None
        rows = 0
        ok = False
        try:
            feeds = build()
            started = time.perf_counter_ns()
            input_ns = started - begun
            rows = next((len(a) if a.ndim else 1 for a in feeds.values()), 0)
            try:
                outputs = servable.infer(feeds, self.timeout_seconds)
            finally:
                infer_ns = time.perf_counter_ns() - started
                self.metrics.inference.labels(servable.name).observe(infer_ns / 1e9)
            ok = True
            return outputs
        finally:
            state.admission.leave()
            self._record(servable, begun, ok=ok, input_ns=input_ns, infer_ns=infer_ns, rows=rows)

    def _record(self, servable: Servable, begun: int, ok: bool, **counts: Any) -> None:
        total = time.perf_counter_ns() - begun
        self.stats.record(servable.name, servable.version, ok=ok, total_ns=total, **counts)
