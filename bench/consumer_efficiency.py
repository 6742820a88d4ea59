"""P2 efficiency: the pipeline with mobilenet_v2 on one ``kva serve`` against the same
per-frame work done in one process (no Kafka, no HTTP) on the same frames and cores.

In-process work per frame: decode the 1280x720 JPEG -> resize to 224x224 -> mobilenet_v2
(OpenVINO, THROUGHPUT hint as kva serve) -> annotate -> encode. Run with one and with two
threads (2 cores); the faster is the limit. Also prints the time split per stage and the
raw in-process OpenVINO fps. Pipeline: producer (720p at --fps) -> Kafka -> ``kva consume``
-> ``kva serve`` (/v2 binary) -> Kafka -> reader. Target ratio >= 0.8.

Because the box may be shared, it also prints the CPU milliseconds per frame of
every process (kva consume, kva serve, the broker, the bench's feeder/reader) and
the CPU efficiency: in-process CPU per frame / pipeline CPU per frame.

    python bench/consumer_efficiency.py [--seconds 6] [--rounds 3] [--fps 150]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from consumer_common import (
    BROKER_PIDS,
    Feeder,
    Process,
    Reader,
    broker,
    consume,
    cpu_seconds,
    photo_jpegs,
    topics,
)

from kva.consumer.annotate import FrameAnnotator
from kva.consumer.work import decode_jpeg, resize_for_model
from kva.paths import models_dir
from kva.ports import free_port
from kva.predictions import Classification, ModelResult
from kva.tfserving.modelbuild import build_model


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
    cpu_before = cpu_seconds(os.getpid())
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    fps = done[0] / (time.monotonic() - started)
    split = {k: v / done[0] * 1000 for k, v in stages.items()}
    split["CPU"] = (cpu_seconds(os.getpid()) - cpu_before) / done[0] * 1000
    raw_request = compiled.create_infer_request()
    tensor = np.zeros((1, 224, 224, 3), np.uint8)
    t = time.perf_counter()
    for _ in range(100):
        raw_request.infer({0: tensor})
    raw_fps = 100 / (time.perf_counter() - t)
    return fps, split, raw_fps


class PipelineRig:
    """kva serve + broker + kva consume + reader, set up once; :meth:`measure` feeds a window."""

    def __init__(self, base: Path, inflight: int, work: Path) -> None:
        self.stack = contextlib.ExitStack()
        port = free_port()
        serve = Process(
            ["-m", "kva", "serve", "--rest_api_port", str(port),
             "--model_name", "mobilenet_v2", "--model_base_path", str(base / "mobilenet_v2")],
            work / "serve.log",
        )  # fmt: skip
        self.stack.callback(serve.stop)
        serve.wait_line("loaded mobilenet_v2", timeout=60)
        self.serve = serve
        self.settings = self.stack.enter_context(broker())
        self.names = topics(self.settings, "eff")
        url = f"http://127.0.0.1:{port}/v2/models/mobilenet_v2"
        self.consumer = consume(
            self.settings,
            self.names,
            ["--model", f"mobilenet_v2={url}", "--max-inflight", str(inflight)],
            work / "consume.log",
        )
        self.stack.callback(self.consumer.stop)
        self.reader = Reader(self.settings, self.names[1])
        self.reader.start()
        self.stack.callback(self.reader.stop)

    def pids(self) -> dict[str, int]:
        pids = {"kva consume": self.consumer.proc.pid, "kva serve": self.serve.proc.pid}
        for pid in BROKER_PIDS:
            pids["broker"] = pid
        pids["bench (feeder, reader)"] = os.getpid()
        return pids

    def measure(self, frames: list[bytes], fps: float, seconds: float) -> tuple[float, str, float]:
        """Output fps, and CPU milliseconds per output frame of each process."""
        feeder = Feeder(self.settings, self.names[0], frames, (1280, 720), fps=fps)
        feeder.start()
        try:
            time.sleep(2)
            before = {name: cpu_seconds(pid) for name, pid in self.pids().items()}
            count, start = self.reader.count, time.monotonic()
            time.sleep(seconds)
            frames_out = self.reader.count - count
            elapsed = time.monotonic() - start
            cpu = {n: cpu_seconds(p) - before[n] for n, p in self.pids().items()}
        finally:
            feeder.stop()
            time.sleep(1)
        per_frame = ", ".join(f"{n} {c / max(frames_out, 1) * 1000:.1f}" for n, c in cpu.items())
        used = sum(cpu.values()) / elapsed
        total = sum(cpu.values()) / max(frames_out, 1) * 1000
        text = f"CPU ms per frame: {per_frame}, total {total:.1f}; {used:.2f} cores busy"
        return frames_out / elapsed, text, total

    def close(self) -> None:
        self.stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per measurement window")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fps", type=float, default=150.0, help="input rate (above capacity)")
    parser.add_argument("--max-inflight", type=int, default=2, help="kva consume --max-inflight")
    args = parser.parse_args()
    base = models_dir()
    folder = build_model("mobilenet_v2", base)
    frames = photo_jpegs(1280, 720)
    print("P2 efficiency: mobilenet_v2, 1280x720 JPEG frames; in-process and pipeline")
    print("measured alternately (the box is shared: compare within a round)")
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    with tempfile.TemporaryDirectory() as work:
        rig = PipelineRig(base, args.max_inflight, Path(work))
        try:
            for round_ in range(args.rounds):
                results = {
                    t: in_process(frames, folder / "model.xml", args.seconds, t) for t in (1, 2)
                }
                threads = max(results, key=lambda t: results[t][0])
                best, split, raw = results[threads]
                piped, cpu, pipeline_cpu = rig.measure(frames, args.fps, args.seconds)
                ratios.append(piped / best)
                cpu_ratios.append(split["CPU"] / pipeline_cpu)
                stages = ", ".join(f"{k} {v:.2f}" for k, v in split.items())
                print(
                    f"round {round_ + 1}: in-process {best:.1f} fps ({threads} thread(s); ms per "
                    f"frame: {stages}; raw OpenVINO {raw:.0f} fps), pipeline {piped:.1f} fps, "
                    f"ratio {piped / best:.2f}\n    pipeline {cpu}",
                    flush=True,
                )
            status = [line for line in rig.consumer.lines() if "stream cam0:" in line]
        finally:
            rig.close()
    if status:
        print("consumer: " + status[-1].split(": ", 1)[1])
    print(f"median ratio pipeline / in-process fps: {statistics.median(ratios):.2f}")
    print(
        "median CPU efficiency (in-process CPU per frame / pipeline CPU per frame, all "
        f"processes; independent of other load on the box): {statistics.median(cpu_ratios):.2f}"
    )


if __name__ == "__main__":
    main()
    print("load average (1, 5, 15 min) at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
