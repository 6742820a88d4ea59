"""TF Serving's ``half_plus_two`` test fixture as OpenVINO IR: ``y = 0.5 * x + 2``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfserving.modelbuild.repository import save_version

NAME = "half_plus_two"


def build(base_path: Path, version: int = 123) -> Path:
    """Write ``<base_path>/half_plus_two/<version>/``: input ``x`` float32 [-1,1], output ``y``."""
    import openvino as ov
    from openvino import opset13 as ops

    x = ops.parameter([-1, 1], np.float32, name="x")
    x.output(0).set_names({"x"})
    y = ops.add(ops.multiply(x, ops.constant(np.float32(0.5))), ops.constant(np.float32(2.0)))
    y.output(0).set_names({"y"})
    model = ov.Model([ops.result(y, name="y")], [x], NAME)
    return save_version(
        model,
        base_path,
        NAME,
        version,
        task="regression",
        description="TF Serving's half_plus_two test fixture: y = 0.5 * x + 2",
    )
