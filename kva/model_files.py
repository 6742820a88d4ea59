"""The model file of a version folder, read by OpenVINO's frontends, converted once and cached.

A version folder (``<base_path>/<version>/``) holds one model in any format
OpenVINO reads, laid out as TF Serving and OVMS lay them out:

============================  =====================================
file in the version folder     format
============================  =====================================
``model.xml`` (+ ``.bin``)     OpenVINO IR
``saved_model.pb`` (+ vars)    TensorFlow SavedModel (the folder)
``*.onnx``                     ONNX
``*.tflite``                   TensorFlow Lite
``*.pdmodel``                  PaddlePaddle
``*.pb``                       TensorFlow frozen graph
============================  =====================================

The first row that matches wins; two files of one row are ambiguous. A model
that is not IR is converted at load and the converted IR saved under the cache
folder, keyed by a digest of every file of the version folder and OpenVINO's
version: the next load reads the IR, and any change to the source makes a new
key (the entry of the old source is removed). A cache that cannot be written
only costs the conversion; it never fails a load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: (glob in the version folder, format name), in the order they are looked for.
FORMATS: tuple[tuple[str, str], ...] = (
    ("model.xml", "OpenVINO IR"),
    ("saved_model.pb", "TensorFlow SavedModel"),
    ("*.onnx", "ONNX"),
    ("*.tflite", "TensorFlow Lite"),
    ("*.pdmodel", "PaddlePaddle"),
    ("*.pb", "TensorFlow frozen graph"),
)
IR = "OpenVINO IR"
#: The sidecar file of a version folder: task, labels file, ``shape: auto``.
SIDECAR = "kva-model.json"
_CHUNK = 1 << 20


class ModelLoadError(RuntimeError):
    """A version folder does not hold a loadable model."""


@dataclass(frozen=True)
class ModelSource:
    """What to hand OpenVINO: a file, or the folder of a SavedModel."""

    path: Path
    format: str


#: Element types a model may compute in: ``f32`` gives the answers TensorFlow gives;
#: ``bf16``/``f16`` trade accuracy for speed; ``auto`` is OpenVINO's choice for the device
#: (bf16 on CPUs with AVX512_BF16 or AMX: results then differ from TF Serving's by ~1e-3).
INFERENCE_PRECISIONS = ("f32", "bf16", "f16", "auto")


def compile_config(hint: str, precision: str = "f32") -> dict[str, str]:
    """OpenVINO ``compile_model`` properties: the performance hint and the precision.

    The precision is explicit because OpenVINO's default depends on the processor: the
    same model gave other numbers on a machine with AVX512_BF16 than on one without.
    """
    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(f"inference precision {precision!r} is not one of {INFERENCE_PRECISIONS}")
    config = {"PERFORMANCE_HINT": hint}
    if precision != "auto":
        config["INFERENCE_PRECISION_HINT"] = precision
    return config


def find_model(folder: Path) -> ModelSource:
    """The model of ``folder`` (see the table in the module docstring).

    Raises:
        ModelLoadError: no model file, or two of one format.
    """
    for pattern, name in FORMATS:
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise ModelLoadError(f"{folder}: more than one {name} model ({names})")
        if found:
            path = folder if name == "TensorFlow SavedModel" else found[0]
            return ModelSource(path, name)
    wanted = ", ".join(pattern for pattern, _ in FORMATS)
    raise ModelLoadError(f"{folder}: no model file (looked for {wanted})")


def read_model(core: Any, source: ModelSource, cache_dir: Path | None) -> Any:
    """The ``openvino.Model`` of ``source``: IR as it is; other formats from the cache.

    Raises:
        ModelLoadError: OpenVINO's frontend cannot read it (with the frontend's message).
    """
    if source.format == IR or cache_dir is None:
        return _read(core, source)
    entry = _cache_entry(source, cache_dir)
    cached = entry / "model.xml"
    if cached.is_file():
        try:
            model = core.read_model(str(cached))
        except RuntimeError as exc:  # a damaged entry: convert again
            logger.warning("converted model %s unreadable (%s): converting again", cached, exc)
        else:
            logger.info("%s: read the converted %s from %s", source.path, source.format, entry)
            return model
    model = _read(core, source)
    _save(model, entry)
    return model


def _read(core: Any, source: ModelSource) -> Any:
    try:
        return core.read_model(str(source.path))
    except RuntimeError as exc:
        raise ModelLoadError(
            f"{source.path}: OpenVINO cannot read this {source.format} model: {_message(exc)}"
        ) from None


def _message(exc: BaseException) -> str:
    """The frontend's own words, without OpenVINO's source-file preamble lines."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception from", "Check '"))]
    return " ".join(useful or lines)[:500]


def _cache_entry(source: ModelSource, cache_dir: Path) -> Path:
    """``<cache>/<digest of the path>-<digest of the content and OpenVINO's version>``."""
    import openvino as ov

    where = hashlib.sha256(str(source.path.resolve()).encode()).hexdigest()[:12]
    content = hashlib.sha256(ov.get_version().encode())
    folder = source.path if source.path.is_dir() else source.path.parent
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        content.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                content.update(chunk)
    return cache_dir / f"{where}-{content.hexdigest()[:24]}"


def _save(model: Any, entry: Path) -> None:
    """Write the converted IR to ``entry`` atomically and drop the entries of older content."""
    import openvino as ov

    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=entry.parent))
        try:
            ov.save_model(model, str(staging / "model.xml"), compress_to_fp16=False)
            os.rename(staging, entry)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not entry.is_dir():
                raise
    except (OSError, RuntimeError) as exc:
        logger.warning("converted model not cached in %s: %s", entry.parent, exc)
        return
    prefix = entry.name.split("-", 1)[0] + "-"
    for old in entry.parent.glob(prefix + "*"):
        if old != entry:
            shutil.rmtree(old, ignore_errors=True)
    logger.info("converted model cached in %s", entry)


def read_sidecar(folder: Path) -> dict[str, Any]:
    """The version folder's ``kva-model.json`` (``{}`` when absent).

    Raises:
        ModelLoadError: it is not a JSON object.
    """
    path = folder / SIDECAR
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: must hold a JSON object")
    return data


def read_labels(folder: Path, name: object) -> list[str] | None:
    """The class names in the file ``name`` (from the sidecar) inside ``folder``.

    Raises:
        ModelLoadError: outside the folder, unreadable, or not a JSON list of strings.
    """
    if not name:
        return None
    path = (folder / str(name)).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ModelLoadError(f"{folder}/{SIDECAR}: labels must be a file inside the version folder")
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: cannot read labels: {exc}") from None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ModelLoadError(f"{path}: labels must be a JSON list of strings")
    return labels


def port_name(port: Any) -> str:
    """The name clients use for an OpenVINO port: a plain one (``image_bytes``) over a
    graph one (``x:0``)."""
    names = sorted(port.get_names())
    plain = [name for name in names if ":" not in name and "/" not in name]
    if plain:
        return min(plain, key=len)
    return str(port.get_any_name())


def port_shape(port: Any) -> tuple[int, ...] | None:
    """An OpenVINO port's shape (-1 = any size), None when even its rank is unknown."""
    partial = port.get_partial_shape()
    if not partial.rank.is_static:
        return None
    return tuple(d.get_length() if d.is_static else -1 for d in partial)
