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
        [--backends v2 openvino] [--json PATH]
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
    photo_jpegs,
    topics,
)
from figures import add_json_flag, write_figures
from procstat import CpuMeter, cpu_seconds

from kva.consumer.annotate import FrameAnnotator
from kva.consumer.work import decode_jpeg, resize_for_model
from kva.model_files import compile_config
from kva.paths import models_dir
from kva.ports import free_port
from kva.predictions import Classification, ModelResult
from kva.settings import KafkaSettings
from kva.tfserving.modelbuild import build_model


def in_process(frames: list[bytes], xml: Path, seconds: float, threads: int):
    import openvino as ov

    # the settings kva serve and the in-process backend compile with (hint and precision)
    compiled = ov.Core().compile_model(str(xml), "CPU", compile_config("THROUGHPUT"))
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


#: The pipeline backends this bench compares with the in-process work: the model on one
#: ``kva serve`` over /v2 binary, or run by the consumer itself (``openvino:PATH``).
BACKENDS = ("v2", "openvino")


class PipelineRig:
    """kva consume (+ kva serve for /v2) + reader on a broker, set up once; :meth:`measure`
    feeds a window."""

    def __init__(
        self, settings: KafkaSettings, base: Path, inflight: int, work: Path, backend: str
    ) -> None:
        self.stack = contextlib.ExitStack()
        self.backend = backend
        self.serve: Process | None = None
        if backend == "v2":
            port = free_port()
            serve = Process(
                ["-m", "kva", "serve", "--rest_api_port", str(port),
                 "--model_name", "mobilenet_v2", "--model_base_path", str(base / "mobilenet_v2")],
                work / "serve.log",
            )  # fmt: skip
            self.stack.callback(serve.stop)
            serve.wait_line("loaded mobilenet_v2", timeout=60)
            self.serve = serve
            url = f"http://127.0.0.1:{port}/v2/models/mobilenet_v2"
        else:
            url = f"openvino:{base / 'mobilenet_v2'}"
        self.settings = settings
        self.names = topics(self.settings, f"eff-{backend}")
        self.consumer = consume(
            self.settings,
            self.names,
            ["--model", f"mobilenet_v2={url}", "--max-inflight", str(inflight)],
            work / f"consume-{backend}.log",
        )
        self.stack.callback(self.consumer.stop)
        self.reader = Reader(self.settings, self.names[1])
        self.reader.start()
        self.stack.callback(self.reader.stop)

    def pids(self) -> dict[str, int | list[int]]:
        pids: dict[str, int | list[int]] = {"kva consume": self.consumer.proc.pid}
        if self.serve is not None:
            pids["kva serve"] = self.serve.proc.pid
        pids["broker"] = BROKER_PIDS
        pids["bench (feeder, reader)"] = os.getpid()
        return pids

    def measure(self, frames: list[bytes], fps: float, seconds: float) -> tuple[float, dict]:
        """Output fps, and CPU milliseconds per output frame of each process."""
        feeder = Feeder(self.settings, self.names[0], frames, (1280, 720), fps=fps)
        feeder.start()
        try:
            time.sleep(2)
            meter = CpuMeter(self.pids())
            count, start = self.reader.count, time.monotonic()
            time.sleep(seconds)
            frames_out = self.reader.count - count
            elapsed = time.monotonic() - start
            cpu = meter.ms_per_frame(frames_out)
            cores = meter.cores()
        finally:
            feeder.stop()
            time.sleep(1)
        return frames_out / elapsed, {"cpu_ms": cpu, "total": sum(cpu.values()), "cores": cores}

    def close(self) -> None:
        self.stack.close()


def cpu_text(cpu: dict) -> str:
    """The printed CPU line of one pipeline measurement."""
    per_frame = ", ".join(f"{n} {c:.1f}" for n, c in cpu["cpu_ms"].items())
    return f"CPU ms per frame: {per_frame}, total {cpu['total']:.1f}; {cpu['cores']:.2f} cores busy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per measurement window")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fps", type=float, default=150.0, help="input rate (above capacity)")
    parser.add_argument("--max-inflight", type=int, default=2, help="kva consume --max-inflight")
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=BACKENDS,
        default=["v2"],
        help="pipelines to measure: v2 = kva serve over /v2 binary, openvino = in-process",
    )
    add_json_flag(parser)
    args = parser.parse_args()
    base = models_dir()
    folder = build_model("mobilenet_v2", base)
    frames = photo_jpegs(1280, 720)
    print("P2 efficiency: mobilenet_v2, 1280x720 JPEG frames; in-process and pipeline")
    print("measured alternately (the box is shared: compare within a round)")
    rounds: list[dict] = []
    status: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as work, broker() as settings:
        rigs = {}
        try:
            for backend in args.backends:
                rigs[backend] = PipelineRig(settings, base, args.max_inflight, Path(work), backend)
            for round_ in range(args.rounds):
                rounds.append(measure_round(rigs, frames, folder / "model.xml", args, round_))
            for backend, rig in rigs.items():
                status[backend] = [line for line in rig.consumer.lines() if "stream cam0:" in line]
        finally:
            for rig in rigs.values():
                rig.close()
    summary = summarise(rounds, args.backends)
    for backend in args.backends:
        label = "" if args.backends == ["v2"] else f" [{backend}]"
        if status.get(backend):
            print(f"consumer{label}: " + status[backend][-1].split(": ", 1)[1])
        print(f"median ratio pipeline / in-process fps{label}: {summary[backend]['ratio']:.2f}")
        print(
            f"median CPU efficiency{label} (in-process CPU per frame / pipeline CPU per frame, "
            "all processes; independent of other load on the box): "
            f"{summary[backend]['cpu_efficiency']:.2f}"
        )
    write_figures(args.json, "consumer_efficiency", {"rounds": rounds, "median": summary})


def measure_round(
    rigs: dict[str, PipelineRig], frames: list[bytes], xml: Path, args: argparse.Namespace, n: int
) -> dict:
    """One round: the in-process limit, then each pipeline; prints and returns its figures."""
    results = {t: in_process(frames, xml, args.seconds, t) for t in (1, 2)}
    threads = max(results, key=lambda t: results[t][0])
    best, split, raw = results[threads]
    stages = ", ".join(f"{k} {v:.2f}" for k, v in split.items())
    figures: dict = {"in_process_fps": best, "threads": threads, "in_process_ms": split,
                     "raw_openvino_fps": raw, "pipelines": {}}  # fmt: skip
    for backend, rig in rigs.items():
        piped, cpu = rig.measure(frames, args.fps, args.seconds)
        figures["pipelines"][backend] = {
            "fps": piped,
            "ratio": piped / best,
            "cpu_efficiency": split["CPU"] / cpu["total"],
            **cpu,
        }
        label = "pipeline" if list(rigs) == ["v2"] else f"pipeline [{backend}]"
        print(
            f"round {n + 1}: in-process {best:.1f} fps ({threads} thread(s); ms per "
            f"frame: {stages}; raw OpenVINO {raw:.0f} fps), {label} {piped:.1f} fps, "
            f"ratio {piped / best:.2f}\n    {label} {cpu_text(cpu)}",
            flush=True,
        )
    return figures


def summarise(rounds: list[dict], backends: list[str]) -> dict:
    """Medians over the rounds per backend: fps ratio, CPU efficiency, CPU ms per process."""
    summary = {}
    for backend in backends:
        runs = [r["pipelines"][backend] for r in rounds]
        names = runs[0]["cpu_ms"]
        summary[backend] = {
            "ratio": statistics.median(run["ratio"] for run in runs),
            "cpu_efficiency": statistics.median(run["cpu_efficiency"] for run in runs),
            "cpu_ms": {n: statistics.median(run["cpu_ms"][n] for run in runs) for n in names},
            "in_process_cpu_ms": statistics.median(r["in_process_ms"]["CPU"] for r in rounds),
        }
    return summary


if __name__ == "__main__":
    main()
    print("load average (1, 5, 15 min) at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
