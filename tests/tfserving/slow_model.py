"""A real OpenVINO model that takes about a second per inference (for admission tests).

``y = x * mean(A^k)`` where ``A`` depends on ``x``, so OpenVINO cannot fold
the matrix products away at compile time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def build_slow_model(
    base_path: Path, name: str = "slow", size: int = 1024, rounds: int = 48
) -> Path:
    """Write ``<base_path>/<name>/1/`` (input ``x`` float32 [-1, 1], output ``y``)."""
    import openvino as ov
    import openvino.opset13 as ops

    folder = base_path / name / "1"
    folder.mkdir(parents=True)
    x = ops.parameter(ov.PartialShape([-1, 1]), ov.Type.f32, name="x")
    x.output(0).set_names({"x"})
    weights = np.random.default_rng(0).standard_normal((size, size)) / np.sqrt(size)
    c = ops.constant(weights.astype(np.float32))
    axes = ops.constant(np.array([0, 1], np.int64))
    mean_x = ops.reduce_mean(x, axes, keep_dims=False)
    a = ops.add(ops.multiply(mean_x, ops.constant(np.ones((size, size), np.float32))), c)
    for _ in range(rounds):
        a = ops.matmul(a, c, False, False)
    y = ops.multiply(x, ops.reduce_mean(a, axes, keep_dims=False))
    y.output(0).set_names({"y"})
    ov.save_model(ov.Model([ops.result(y)], [x], name), folder / "model.xml")
    (folder / "kva-model.json").write_text(
        json.dumps({"task": "regression", "labels": None, "description": "slow test model"})
    )
    return folder
