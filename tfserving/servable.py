"""One loaded model version: an OpenVINO model compiled once, run from a pool of requests.

The compiled model is shared by all HTTP threads; each inference borrows one
of ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` infer requests (OpenVINO releases
the GIL while it runs, so concurrent requests overlap on the device's
streams) and returns it. Models whose sidecar says ``"shape": "auto"`` (as
OVMS's ``shape: auto``) are recompiled for a request of another rank.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kva.model_files import (
    ModelLoadError,
    find_model,
    port_name,
    port_shape,
    read_labels,
    read_model,
    read_sidecar,
)
from kva.tfserving.errors import Internal, InvalidArgument, Unavailable
from kva.tfserving.tensors import IMAGE_DTYPES, TensorInfo

__all__ = ["ModelLoadError", "Servable"]

logger = logging.getLogger(__name__)

MAX_AUTO_RANK = 8
MAX_VARIANTS = 8


class _Compiled:
    """A compiled model and its pool of infer requests."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        try:
            size = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        except RuntimeError:
            size = 1
        self.size = max(1, size)
        self.pool: queue.Queue[Any] = queue.Queue()
        for _ in range(self.size):
            self.pool.put(compiled.create_infer_request())
        self.output_names = [port_name(port) for port in compiled.outputs]
        self.string_outputs = [_is_string(port) for port in compiled.outputs]


class Servable:
    """A model version ready to serve (``<base>/<name>/<version>/``, any format of
    :mod:`~kva.model_files`; ``cache_dir`` keeps the converted ones)."""

    def __init__(
        self,
        core: Any,
        name: str,
        version: int,
        folder: Path,
        device: str,
        config: Mapping[str, str],
        cache_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.folder = folder
        self.sidecar = read_sidecar(folder)
        self.task = str(self.sidecar.get("task") or "")
        self.labels = read_labels(folder, self.sidecar.get("labels"))
        self.shape_auto = self.sidecar.get("shape") == "auto"
        signatures = self.sidecar.get("example_signatures") or {}
        self.example_signatures: dict[str, str] = {
            str(k): str(v) for k, v in signatures.items() if v in ("classify", "regress")
        }
        self._core = core
        self._device = device
        self._config = dict(config)
        self.source = find_model(folder)
        self._model = read_model(core, self.source, cache_dir)
        try:
            base = _Compiled(core.compile_model(self._model, device, self._config))
        except RuntimeError as exc:
            raise ModelLoadError(f"{folder}: OpenVINO cannot load the model: {exc}") from None
        self._base = base
        self._variants: dict[tuple[int, ...], _Compiled] = {}
        self._variant_lock = threading.Lock()
        self.inputs = {info.name: info for info in map(_info, self._model.inputs)}
        self.outputs = {info.name: info for info in map(_info, self._model.outputs)}
        logger.info(
            "loaded %s version %d (%s) on %s (%d infer requests)",
            name, version, self.source.format, device, base.size,
        )  # fmt: skip

    @property
    def slots(self) -> int:
        """How many inferences can run at once (the infer request pool size)."""
        return self._base.size

    def infer(self, feeds: dict[str, np.ndarray], timeout: float) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` (tensors by input name) and return outputs by name.

        Raises:
            InvalidArgument: a tensor does not fit the model.
            Unavailable: no infer request became free within ``timeout`` seconds.
            Internal: OpenVINO failed.
        """
        rows = self._split_rows(feeds)
        if rows > 1:  # a model with a fixed batch of 1: one inference per row
            parts = [
                self.infer({k: v[i : i + 1] for k, v in feeds.items()}, timeout)
                for i in range(rows)
            ]
            return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        target = self._target(feeds)
        try:
            request = target.pool.get(timeout=timeout)
        except queue.Empty:
            raise Unavailable(f"{self.name}: timed out waiting for an inference slot") from None
        try:
            result = request.infer({k: _string_tensor(v) if v.dtype == object else v
                                    for k, v in feeds.items()})  # fmt: skip
            return {
                name: _strings(request.get_output_tensor(i)) if string else result[i]
                for i, (name, string) in enumerate(
                    zip(target.output_names, target.string_outputs, strict=True)
                )
            }
        except RuntimeError as exc:
            logger.warning("%s v%d: inference failed: %s", self.name, self.version, exc)
            raise Internal(f"inference failed: {str(exc).splitlines()[0]}") from None
        finally:
            target.pool.put(request)

    def _split_rows(self, feeds: dict[str, np.ndarray]) -> int:
        """N when every input has a fixed batch of 1 and the request sends N > 1 rows."""
        batches = set()
        for name, array in feeds.items():
            shape = self.inputs[name].shape
            if not shape or shape[0] != 1 or array.ndim != len(shape) or array.shape[0] <= 1:
                return 0
            if not _fits((1, *array.shape[1:]), shape):
                return 0
            batches.add(array.shape[0])
        return batches.pop() if len(batches) == 1 else 0

    def _target(self, feeds: dict[str, np.ndarray]) -> _Compiled:
        mismatched = False
        for name, array in feeds.items():
            info = self.inputs[name]
            if array.size == 0:
                raise InvalidArgument(f"Input '{name}' is empty (shape {list(array.shape)})")
            if not _fits(array.shape, info.shape):
                if not self.shape_auto:
                    raise InvalidArgument(
                        f"Input '{name}' has shape {list(array.shape)} but the model expects "
                        f"{list(info.shape or ())} (-1 = any size)"
                    )
                mismatched = True
        if not mismatched:
            return self._base
        ranks = tuple(feeds[name].ndim for name in sorted(feeds))
        return self._variant(ranks, sorted(feeds))

    def _variant(self, ranks: tuple[int, ...], names: list[str]) -> _Compiled:
        if max(ranks) > MAX_AUTO_RANK:
            raise InvalidArgument(f"inputs of rank above {MAX_AUTO_RANK} are not supported")
        with self._variant_lock:
            found = self._variants.get(ranks)
            if found is not None:
                return found
            if len(self._variants) >= MAX_VARIANTS:
                raise InvalidArgument("too many different input ranks for this model")
            import openvino as ov

            model = self._model.clone()
            try:
                model.reshape(
                    {n: ov.PartialShape([-1] * r) for n, r in zip(names, ranks, strict=True)}
                )
                compiled = _Compiled(self._core.compile_model(model, self._device, self._config))
            except RuntimeError as exc:
                raise InvalidArgument(
                    f"the model cannot take inputs of rank {list(ranks)}: "
                    f"{str(exc).splitlines()[0]}"
                ) from None
            self._variants[ranks] = compiled
            logger.info("%s v%d: compiled for input ranks %s", self.name, self.version, ranks)
            return compiled


def _fits(shape: tuple[int, ...], expected: tuple[int, ...] | None) -> bool:
    if expected is None:
        return True
    if len(shape) != len(expected):
        return False
    return all(want < 0 or want == got for got, want in zip(shape, expected, strict=True))


def _info(port: Any) -> TensorInfo:
    shape = port_shape(port)
    dtype = np.dtype(object) if _is_string(port) else np.dtype(port.get_element_type().to_dtype())
    image_hw, nchw = None, False
    if shape and len(shape) == 4 and dtype in IMAGE_DTYPES:
        if shape[3] == 3 and min(shape[1:3]) > 0:
            image_hw = (shape[1], shape[2])
        elif shape[1] == 3 and min(shape[2:4]) > 0:
            image_hw, nchw = (shape[2], shape[3]), True
    return TensorInfo(port_name(port), dtype, shape, image_hw, nchw)


def _is_string(port: Any) -> bool:
    return bool(port.get_element_type().get_type_name() == "string")


def _string_tensor(array: np.ndarray) -> Any:
    """An OpenVINO string tensor of an object array of ``bytes`` (kva's string tensors).

    OpenVINO's binding goes through numpy's ``S`` dtype, which drops trailing NUL
    bytes of each element.
    """
    import openvino as ov

    tensor = ov.Tensor(ov.Type.string, ov.Shape(list(array.shape)))
    tensor.bytes_data = np.array(
        [v if isinstance(v, bytes) else str(v).encode() for v in array.ravel()], dtype=np.bytes_
    ).reshape(array.shape)
    return tensor


def _strings(tensor: Any) -> np.ndarray:
    """An object array of ``bytes`` from an OpenVINO string tensor (not decoded as text)."""
    data = np.asarray(tensor.bytes_data)
    return np.array([bytes(v) for v in data.ravel()], dtype=object).reshape(data.shape)
