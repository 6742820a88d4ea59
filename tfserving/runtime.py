"""What every request of ``kva serve`` shares, REST and gRPC alike: models, limits, metrics.

A *request budget* is what one request may spend decoding images: at most
``max_image_pixels`` pixels over all its encoded images together
(:class:`kva.images.PixelBudget`), so a body full of small files that each
claim a large image cannot multiply the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kva.images import ImageError, PixelBudget
from kva.tfserving.errors import InvalidArgument, ServingError
from kva.tfserving.images import decode_image
from kva.tfserving.manager import ModelManager
from kva.tfserving.metrics import ServeMetrics
from kva.tfserving.servable import Servable
from kva.tfserving.tensors import ImageDecoder


@dataclass
class Runtime:
    """The models, the request limits and the metrics, shared by the REST and gRPC handlers."""

    manager: ModelManager
    metrics: ServeMetrics
    max_request_bytes: int
    max_image_pixels: int
    timeout_seconds: float

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
        try:
            state.admission.enter(servable.name)
        except ServingError:
            self.metrics.rejected.labels(servable.name).inc()
            raise
        try:
            feeds = build()
            started = time.perf_counter()
            try:
                return servable.infer(feeds, self.timeout_seconds)
            finally:
                elapsed = time.perf_counter() - started
                self.metrics.inference.labels(servable.name).observe(elapsed)
        finally:
            state.admission.leave()
