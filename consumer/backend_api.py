"""The one small interface of an inference backend, and what it reads from a model.

A :class:`Backend` talks to **one replica** (one URL) of one model, whatever
the protocol: TF Serving ``/v1`` or KServe ``/v2`` REST
(:mod:`~kva.consumer.backends`), or gRPC (:mod:`~kva.consumer.grpc_backend`).
Failures raise :class:`~kva.consumer.errors.InferenceError` with a
``retriable`` flag, or :class:`~kva.consumer.errors.MetadataError` for a model
the consumer cannot use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kva.consumer.errors import MetadataError

Kind = Literal["classifier", "detector"]
Outputs = dict[str, np.ndarray]

_CLASSIFIER_OUTPUTS = frozenset({"scores", "classes"})
_DETECTOR_OUTPUTS = frozenset({"boxes", "scores"})


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the consumer needs to know about a model, read from its metadata."""

    name: str
    kind: Kind
    input_name: str
    height: int
    width: int
    outputs: tuple[str, ...]


def model_kind(output_names: set[str]) -> Kind:
    """Classifier (``scores`` + ``classes``) or detector (``boxes`` + ``scores``)."""
    if output_names >= _CLASSIFIER_OUTPUTS:
        return "classifier"
    if output_names >= _DETECTOR_OUTPUTS:
        return "detector"
    raise MetadataError(
        f"outputs {sorted(output_names)} are neither a classifier (scores, classes) "
        "nor a detector (boxes, scores)"
    )


def image_size(shape: list[int]) -> tuple[int, int]:
    """(height, width) of an NHWC image input shape ``[N, H, W, 3]``."""
    if len(shape) != 4 or shape[3] != 3 or shape[1] <= 0 or shape[2] <= 0:
        raise MetadataError(f"input shape {shape} is not [N, H, W, 3] with fixed H and W")
    return int(shape[1]), int(shape[2])


def model_info(
    model: str, where: str, inputs: Sequence[tuple[str, Sequence[int]]], outputs: Iterable[str]
) -> ModelInfo:
    """The :class:`ModelInfo` of a model with ``inputs`` (name, shape) and ``outputs`` (names).

    Every protocol's metadata ends here, so replicas speaking different protocols of one
    model give equal infos.

    Raises:
        MetadataError: not one NHWC image input, or outputs of neither kind.
    """
    if len(inputs) != 1:
        got = sorted(name for name, _shape in inputs)
        raise MetadataError(f"{where}: expected one image input, got {got}")
    input_name, shape = inputs[0]
    height, width = image_size([int(d) for d in shape])
    names = set(outputs)
    return ModelInfo(model, model_kind(names), input_name, height, width, tuple(sorted(names)))


class Backend(ABC):
    """One replica of one model.

    Attributes:
        url: the replica's URL (its name in metrics and logs).
        model_name: the model's name on the server.
    """

    protocol: str = ""
    url: str
    model_name: str

    @abstractmethod
    def metadata(self) -> ModelInfo:
        """Read the model's input size and output names (raises InferenceError/MetadataError)."""

    @abstractmethod
    def ready(self) -> bool:
        """Health probe: True when the replica can serve the model."""

    @abstractmethod
    def infer(self, info: ModelInfo, image: bytes) -> Outputs:
        """Run the model on one encoded image (JPEG); returns the outputs, batch dim removed."""

    @abstractmethod
    def labels(self) -> list[str] | None:
        """The model's class names from the server; None when it has none."""

    @abstractmethod
    def close(self) -> None:
        """Release the connections."""
