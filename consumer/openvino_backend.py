"""The in-process backend: the consumer runs an OpenVINO model itself, with no server.

``--model NAME=openvino:PATH`` is for the single machine that needs no replicas (as
Frigate's detectors run in its own process): no HTTP hop, no JSON, no second decode.
``PATH`` is a model base folder (the highest numbered version is used) or a version
folder, in any format :mod:`kva.model_files` reads (IR, SavedModel, ONNX, TFLite, ...).
The frame goes in as a tensor made by :mod:`~kva.consumer.model_input`; OpenVINO
releases the GIL while it runs, so the consumer's in-flight frames overlap on a pool
of infer requests. Class names come from the version folder's sidecar, as ``kva
serve`` serves them. Needs ``openvino`` (the ``[serve]`` extra).
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from kva.consumer.backend_api import Backend, ModelInfo, Outputs, Payload, model_info
from kva.consumer.errors import InferenceError, MetadataError, shorten
from kva.model_files import (
    ModelLoadError,
    compile_config,
    find_model,
    port_name,
    port_shape,
    read_labels,
    read_model,
    read_sidecar,
)

logger = logging.getLogger(__name__)


def version_folder(path: Path) -> Path:
    """``path`` itself when it holds a model, else its highest numbered version folder.

    Raises:
        MetadataError: neither.
    """
    if not path.is_dir():
        raise MetadataError(f"openvino:{path}: not a folder")
    versions = [p for p in path.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0]
    if versions:
        return max(versions, key=lambda p: int(p.name))
    return path


class OpenVinoBackend(Backend):
    """One model compiled in this process (a "replica" that is always up)."""

    protocol = "openvino"
    decodes_images = False

    def __init__(self, url: str, *, read_timeout: float = 2.0, **_ignored: Any) -> None:
        self.url = url
        self.path = Path(urlsplit(url).path).expanduser()
        self.model_name = self.path.name
        self._timeout = read_timeout
        self._lock = threading.Lock()
        self._compiled: Any = None
        self._requests: queue.Queue[Any] = queue.Queue()
        self._folder: Path | None = None

    def _load(self) -> Any:
        with self._lock:
            if self._compiled is not None:
                return self._compiled
            import openvino as ov

            folder = version_folder(self.path)
            core = ov.Core()
            try:
                model = read_model(core, find_model(folder), cache_dir=None)
                compiled = core.compile_model(model, "CPU", compile_config("THROUGHPUT"))
            except (ModelLoadError, RuntimeError) as exc:
                raise MetadataError(f"{self.url}: {shorten(exc, 400)}") from None
            try:
                slots = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            except RuntimeError:
                slots = 1
            for _ in range(max(1, slots)):
                self._requests.put(compiled.create_infer_request())
            self._folder, self._compiled = folder, compiled
            logger.info("%s: %s compiled in process (%d infer requests)", self.url, folder, slots)
            return compiled

    def metadata(self) -> ModelInfo:
        compiled = self._load()
        inputs = [
            (
                port_name(port),
                list(port_shape(port) or ()),
                np.dtype(port.get_element_type().to_dtype()),
            )
            for port in compiled.inputs
        ]
        return model_info(
            self.model_name, self.url, inputs, [port_name(p) for p in compiled.outputs]
        )

    def ready(self) -> bool:
        try:
            self._load()
        except MetadataError:
            return False
        return True

    def labels(self) -> list[str] | None:
        self._load()
        assert self._folder is not None  # noqa: S101 - set by _load
        try:
            return read_labels(self._folder, read_sidecar(self._folder).get("labels"))
        except ModelLoadError as exc:
            raise InferenceError("bad_response", str(exc), retriable=False) from None

    def infer(self, info: ModelInfo, payload: Payload) -> Outputs:
        if isinstance(payload, bytes):
            raise InferenceError(
                "bad_response",
                f"{self.url}: takes tensors, not JPEG (send=tensor)",
                retriable=False,
            )
        compiled = self._load()
        try:
            request = self._requests.get(timeout=self._timeout)
        except queue.Empty:
            raise InferenceError(
                "timeout", f"{self.url}: no infer request free", retriable=True
            ) from None
        try:
            result = request.infer({info.input_name: payload})
            by_name = {port_name(port): result[port] for port in compiled.outputs}
            return {name: np.asarray(by_name[name])[0] for name in info.outputs}
        except (RuntimeError, KeyError, IndexError) as exc:
            raise InferenceError(
                "bad_response", f"{self.url}: {shorten(exc)}", retriable=False
            ) from None
        finally:
            self._requests.put(request)

    def close(self) -> None:
        with self._lock:
            self._compiled = None
            self._requests = queue.Queue()
