"""Median in-process inference latency of each built model (OpenVINO, CPU).

Builds the models (cached) into a repository, compiles each once and times
synchronous single-image inference on scikit-image photos.

    python bench/models_latency.py [--base-path DIR] [--runs 50] [--precision f32]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import skimage.data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kva.paths import models_dir  # noqa: E402
from kva.tfserving.modelbuild import MODELS, build_model  # noqa: E402

INPUTS = {
    "mobilenet_v2": lambda: cv2.resize(skimage.data.chelsea(), (224, 224))[None],
    "blazeface": lambda: cv2.resize(skimage.data.astronaut(), (192, 192))[None],
    "person": lambda: cv2.resize(skimage.data.astronaut(), (300, 300))[None],
    "half_plus_two": lambda: np.array([[1.0], [2.0], [5.0]], np.float32),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-path", type=Path, default=models_dir())
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--precision", choices=["default", "f32"], default="default")
    args = parser.parse_args()
    core = ov.Core()
    config = {} if args.precision == "default" else {"INFERENCE_PRECISION_HINT": "f32"}
    print(f"openvino {ov.__version__}, CPU, precision {args.precision}, {args.runs} runs")
    print(f"{'model':<14} {'build s':>8} {'compile s':>9} {'median ms':>9} {'p90 ms':>7}")
    for name in MODELS:
        started = time.perf_counter()
        folder = build_model(name, args.base_path)
        built = time.perf_counter() - started
        started = time.perf_counter()
        compiled = core.compile_model(str(folder / "model.xml"), "CPU", config)
        compiled_s = time.perf_counter() - started
        request = compiled.create_infer_request()
        data = INPUTS[name]()
        for _ in range(5):
            request.infer([data])
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            request.infer([data])
            times.append((time.perf_counter() - started) * 1000)
        p90 = float(np.percentile(times, 90))
        print(
            f"{name:<14} {built:>8.2f} {compiled_s:>9.2f} {statistics.median(times):>9.2f} "
            f"{p90:>7.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
