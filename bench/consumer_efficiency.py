"""P2 efficiency: the pipeline with mobilenet_v2 on one ``kva serve`` against the same
per-frame work done in one process (no Kafka, no HTTP) on the same frames and cores.

In-process work per frame: decode the 1280x720 JPEG -> resize to 224x224 -> mobilenet_v2
(OpenVINO, THROUGHPUT hint as kva serve) -> annotate -> encode. Run with one and with two
threads (2 cores); the faster is the limit. Also prints the time split per stage and the
raw in-process OpenVINO fps. Pipeline: producer (720p at --fps) -> Kafka -> ``kva consume``
-> ``kva serve`` (/v2 binary) -> Kafka -> reader. Target ratio >= 0.8.

    python bench/consumer_efficiency.py [--seconds 15] [--fps 60]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from consumer_common import Feeder, Process, Reader, broker, consume, photo_jpegs, topics

from consumer.annotate import FrameAnnotator
from consumer.pipeline import decode_jpeg, resize_for_model
from consumer.predictions import Classification, ModelResult
from tests.tfserving.server import free_port
from tfserving.modelbuild import build_model, default_base_path


def in_process(frames: list[bytes], xml: Path, seconds: float, threads: int):
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
    stages = {"decode": 0.0, "resize": 0.0, "infer": 0.0, "annotate": 0.0, "encode": 0.0}
    lock = threading.Lock()
    done = [0]
    stop = time.monotonic() + seconds

    def worker() -> None:
        request = compiled.create_infer_request()
        annotator = FrameAnnotator()
        local = dict.fromkeys(stages, 0.0)
        i = 0
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            image = decode_jpeg(frames[i % len(frames)])
            t1 = time.perf_counter()
            tensor = cv2.cvtColor(resize_for_model(image, (224, 224)), cv2.COLOR_BGR2RGB)[None]
            t2 = time.perf_counter()
            out = request.infer({0: tensor})
            scores, classes = (np.asarray(v)[0] for v in out.values())
            t3 = time.perf_counter()
            result = Classification(
                tuple(int(c) for c in classes[:3]),
                ("x", "y", "z"),
                tuple(float(s) for s in scores[:3]),
            )
            annotator.annotate(image, [ModelResult("mobilenet_v2", "ok", result)], "footer")
            t4 = time.perf_counter()
            cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
            t5 = time.perf_counter()
            for key, value in zip(
                stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
            ):
                local[key] += value
            i += 1
        with lock:
            done[0] += i
            for key in stages:
                stages[key] += local[key]

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    fps = done[0] / (time.monotonic() - started)
    split = {k: v / done[0] * 1000 for k, v in stages.items()}
    raw_request = compiled.create_infer_request()
    tensor = np.zeros((1, 224, 224, 3), np.uint8)
    t = time.perf_counter()
    for _ in range(100):
        raw_request.infer({0: tensor})
    raw_fps = 100 / (time.perf_counter() - t)
    return fps, split, raw_fps


def pipeline(
    frames: list[bytes], base: Path, seconds: float, fps: float, inflight: int, work: Path
) -> tuple[float, str]:
    port = free_port()
    serve = Process(
        ["-m", "kva.cli", "serve", "--rest_api_port", str(port),
         "--model_name", "mobilenet_v2", "--model_base_path", str(base / "mobilenet_v2")],
        work / "serve.log",
    )  # fmt: skip
    try:
        serve.wait_line("loaded mobilenet_v2", timeout=60)
        with broker() as settings:
            names = topics(settings, "eff")
            url = f"http://127.0.0.1:{port}/v2/models/mobilenet_v2"
            consumer = consume(
                settings,
                names,
                ["--model", f"mobilenet_v2={url}", "--max-inflight", str(inflight)],
                work / "c.log",
            )
            reader = Reader(settings, names[1])
            reader.start()
            feeder = Feeder(settings, names[0], frames, (1280, 720), fps=fps)
            feeder.start()
            try:
                time.sleep(4)
                count, start = reader.count, time.monotonic()
                time.sleep(seconds)
                out_fps = (reader.count - count) / (time.monotonic() - start)
            finally:
                feeder.stop()
                reader.stop()
                consumer.stop()
            status = [line for line in consumer.lines() if "stream cam0:" in line]
            return out_fps, status[-2].split(": ", 1)[1] if len(status) > 1 else ""
    finally:
        serve.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--fps", type=float, default=60.0, help="input rate (above capacity)")
    parser.add_argument("--max-inflight", type=int, default=4, help="kva consume --max-inflight")
    parser.add_argument("--skip-in-process", action="store_true")
    args = parser.parse_args()
    base = default_base_path()
    folder = build_model("mobilenet_v2", base)
    frames = photo_jpegs(1280, 720)
    print("P2 efficiency: mobilenet_v2, 1280x720 JPEG frames")
    best = 0.0
    for threads in () if args.skip_in_process else (1, 2):
        fps, split, raw = in_process(frames, folder / "model.xml", args.seconds / 2, threads)
        best = max(best, fps)
        stages = ", ".join(f"{k} {v:.2f} ms" for k, v in split.items())
        print(f"in-process, {threads} thread(s): {fps:.1f} fps  [{stages}]")
    if best:
        print(f"raw in-process OpenVINO (224x224 tensor, one request at a time): {raw:.0f} fps")
    with tempfile.TemporaryDirectory() as work:
        out_fps, status = pipeline(
            frames, base, args.seconds, args.fps, args.max_inflight, Path(work)
        )
    print(
        f"pipeline (Kafka + kva consume --max-inflight {args.max_inflight} + kva serve /v2): "
        f"{out_fps:.1f} fps  [{status}]"
    )
    if best:
        print(f"ratio pipeline / in-process limit: {out_fps / best:.2f}")


if __name__ == "__main__":
    main()
