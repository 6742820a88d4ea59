"""Write one model version into a model repository (``<base>/<name>/<version>/``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kva.model_files import SIDECAR

if TYPE_CHECKING:
    import openvino as ov

logger = logging.getLogger(__name__)


LABELS = "labels.json"
Task = Literal["classification", "detection", "regression"]


def save_version(
    model: ov.Model,
    base_path: Path,
    name: str,
    version: int,
    *,
    task: Task,
    description: str,
    labels: list[str] | None = None,
    source: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` as OpenVINO IR with its ``kva-model.json`` sidecar (and labels).

    Args:
        model: the model to serve; weights are kept in float32 (no fp16 compression).
        base_path: the repository root.
        name: the model name (folder under ``base_path``).
        version: a positive integer version.
        task: what the outputs mean (see the model repository contract).
        description: one line for humans.
        labels: class names (index = class id), written to ``labels.json``.
        source: where the weights came from, recorded in the sidecar.

    Returns:
        The version folder.
    """
    import openvino as ov

    folder = base_path / name / str(version)
    folder.mkdir(parents=True, exist_ok=False)
    logger.info("%s: writing OpenVINO IR to %s", name, folder)
    ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
    sidecar: dict[str, Any] = {
        "task": task,
        "labels": LABELS if labels is not None else None,
        "description": description,
    }
    if source is not None:
        sidecar["source"] = source
    if labels is not None:
        (folder / LABELS).write_text(json.dumps(labels, indent=0, ensure_ascii=False) + "\n")
    (folder / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    return folder
