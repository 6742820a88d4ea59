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


Layout = Literal["NHWC", "NCHW"]
#: What :meth:`Backend.infer` sends: an encoded image (JPEG), or a ready tensor with its
#: batch dimension (from :mod:`~kva.consumer.model_input`).
Payload = bytes | np.ndarray


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the consumer needs to know about a model, read from its metadata.

    ``input_dtype`` is the numpy name of the input's element type (``uint8``,
    ``float32``; ``""`` when the server did not say).
    """

    name: str
    kind: Kind
    input_name: str
    height: int
    width: int
    outputs: tuple[str, ...]
    input_dtype: str = "uint8"
    layout: Layout = "NHWC"


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


def image_size(shape: list[int]) -> tuple[int, int, Layout]:
    """(height, width, layout) of an image input shape ``[N, H, W, 3]`` or ``[N, 3, H, W]``."""
    if len(shape) == 4 and shape[3] == 3 and shape[1] > 0 and shape[2] > 0:
        return int(shape[1]), int(shape[2]), "NHWC"
    if len(shape) == 4 and shape[1] == 3 and shape[2] > 0 and shape[3] > 0:
        return int(shape[2]), int(shape[3]), "NCHW"
    raise MetadataError(
        f"input shape {shape} is not [N, H, W, 3] or [N, 3, H, W] with fixed H and W"
    )


def model_info(
    model: str,
    where: str,
    inputs: Sequence[tuple[str, Sequence[int], np.dtype | None]],
    outputs: Iterable[str],
) -> ModelInfo:
    """The :class:`ModelInfo` of a model with ``inputs`` (name, shape, dtype or None when
    the server did not say) and ``outputs`` (names).

    Every protocol's metadata ends here, so replicas speaking different protocols of one
    model give equal infos.

    Raises:
        MetadataError: not one image input, or outputs of neither kind.
    """
    if len(inputs) != 1:
        got = sorted(name for name, _shape, _dtype in inputs)
        raise MetadataError(f"{where}: expected one image input, got {got}")
    input_name, shape, dtype = inputs[0]
    height, width, layout = image_size([int(d) for d in shape])
    names = set(outputs)
    return ModelInfo(
        model, model_kind(names), input_name, height, width, tuple(sorted(names)),
        input_dtype="" if dtype is None else np.dtype(dtype).name, layout=layout,
    )  # fmt: skip


class Backend(ABC):
    """One replica of one model.

    Attributes:
        url: the replica's URL (its name in metrics and logs).
        model_name: the model's name on the server.
    """

    protocol: str = ""
    url: str
    model_name: str
    #: False for a backend that takes tensors only: ``send=auto`` then sends its model one.
    decodes_images: bool = True

    @abstractmethod
    def metadata(self) -> ModelInfo:
        """Read the model's input size and output names (raises InferenceError/MetadataError)."""

    @abstractmethod
    def ready(self) -> bool:
        """Health probe: True when the replica can serve the model."""

    @abstractmethod
    def infer(self, info: ModelInfo, payload: Payload) -> Outputs:
        """Run the model on one frame: an encoded image (JPEG), or a tensor with its batch
        dimension; returns the outputs, batch dimension removed."""

    @abstractmethod
    def labels(self) -> list[str] | None:
        """The model's class names from the server; None when it has none."""

    @abstractmethod
    def close(self) -> None:
        """Release the connections."""
