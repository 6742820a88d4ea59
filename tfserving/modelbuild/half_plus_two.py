"""TF Serving's ``half_plus_two`` test fixture as an OpenVINO IR: ``y = 0.5 * x + 2``.

Input ``x`` float32 ``[-1, 1]``, output ``y`` float32 ``[-1, 1]``, version 123.
The TF graph accepts any shape at run time (the signature shape is advisory);
the sidecar asks the server for ``"shape": "auto"`` so requests such as
``{"instances": [1.0, 2.0]}`` (shape ``[2]``) work as they do in TF Serving.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from kva.model_files import SIDECAR

logger = logging.getLogger(__name__)

NAME = "half_plus_two"


def build(
    base_path: Path,
    version: int = 123,
    *,
    name: str = NAME,
    offset: float = 2.0,
) -> Path:
    """Write ``<base_path>/<name>/<version>/`` with ``model.xml``/``model.bin`` and the sidecar.

    The folder is written under a temporary name and renamed into place, so a
    server polling the repository never sees half a model. An existing version
    folder is left as it is.

    Args:
        base_path: the model repository root.
        version: a positive integer version.
        name: the model (folder) name; TF Serving's tests call it
            ``saved_model_half_plus_two_2_versions``.
        offset: the constant added (2 for half_plus_two, 3 for half_plus_three).

    Returns:
        The version folder.
    """
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    if version <= 0:
        raise ValueError(f"version must be a positive integer, got {version}")
    folder = Path(base_path) / name / str(version)
    if (folder / "model.xml").is_file():
        return folder
    x = ops.parameter(ov.PartialShape([-1, 1]), ov.Type.f32, name="x")
    x.output(0).set_names({"x"})
    half = ops.multiply(x, ops.constant(np.float32(0.5)))
    y = ops.add(half, ops.constant(np.float32(offset)))
    y.output(0).set_names({"y"})
    model = ov.Model([ops.result(y)], [x], name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=folder.parent))
    try:
        staging.chmod(0o755)
        ov.save_model(model, staging / "model.xml", compress_to_fp16=False)
        sidecar = {
            "task": "regression",
            "labels": None,
            "description": f"TF Serving test fixture: y = 0.5 * x + {offset:g}",
            "shape": "auto",
            "example_signatures": {"regress_x_to_y": "regress", "classify_x_to_y": "classify"},
        }
        (staging / SIDECAR).write_text(json.dumps(sidecar, indent=1) + "\n")
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("%s: wrote version %d to %s", name, version, folder)
    return folder
