"""Stream density: how many 720p cameras at 15 fps this machine sustains with the default
models (person detection plus the mobilenet_v2 classifier), and what a frame costs.

The real pipeline, one run per camera count N (default 1, 2, 4, 8, 16):
``kva produce`` (N cameras, each the demo video ``vtest.avi`` scaled to 1280x720 at
15 fps) -> Kafka (a real broker) -> ``kva consume`` (``person`` and ``mobilenet_v2`` on
one ``kva serve`` over /v2, or ``--backend openvino``: in the consumer) -> the
predictions topic, read by this process. For each N, over a window after a warm-up:

- dropped: 1 - frames delivered / (N x fps x window): every frame a camera should have
  sent and no annotated frame came out for (the producer falling behind included);
- frame age p50 / p99 (capture -> published, from the predictions documents);
- CPU ms per frame of each process: producer and broker per frame produced (its seq
  span in the window), consumer and serve per frame delivered, so each is the cost of
  the work that process did, whatever was dropped (the drop rate is its own column).

It prints the largest N with < 5 % dropped and p99 age < 500 ms, and whether the total
CPU per frame stays within +-10 % of the N = 1 figure across every N (the flat curve
issue 19 asks for: cost grows linearly with the work).

    python bench/stream_density.py [--cameras 1 2 4 8 16] [--seconds 30] [--warmup 10]
        [--backend serve|openvino] [--source video|demo] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from consumer_common import (
    BROKER_PIDS,
    Process,
    Reader,
    broker,
    consume,
    topics,
)
from density import MAX_DROPPED, MAX_P99_MS, cameras_per_core, curve_summary, window_figures
from figures import add_json_flag, write_figures
from procstat import CpuMeter

from kva.paths import demo_video, models_dir
from kva.ports import free_port
from kva.settings import KafkaSettings
from kva.tfserving.modelbuild import build_model

MODELS = ("person", "mobilenet_v2")


@contextlib.contextmanager
def model_server(base: Path, work: Path) -> Iterator[tuple[Process, int]]:
    """One ``kva serve`` with both default models; yields it and its REST port."""
    config = work / "models.config"
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "{base / name}" }}\n' for name in MODELS
    )
    config.write_text("model_config_list {\n" + entries + "}\n")
    port = free_port()
    serve = Process(
        ["-m", "kva", "serve", "--rest_api_port", str(port), "--model_config_file", str(config)],
        work / "serve.log",
    )
    try:
        for name in MODELS:
            serve.wait_line(f"loaded {name}", timeout=120)
        yield serve, port
    finally:
        serve.stop()


def producer(
    settings: KafkaSettings, topic: str, cameras: int, args: argparse.Namespace, log: Path
) -> Process:
    """``kva produce`` with ``cameras`` cameras, once every one of them has opened."""
    source = str(demo_video()) if args.source == "video" else "demo"
    sources = [arg for i in range(cameras) for arg in ("--source", f"cam{i}={source}")]
    proc = Process(
        ["-m", "kva", "produce", "--bootstrap-server", settings.bootstrap_server,
         "--topic", topic, "--metrics-port", "0", "--fps", str(args.fps),
         "--width", "1280", "--height", "720", *sources],
        log,
    )  # fmt: skip
    proc.wait_line(f"cam{cameras - 1}: opened", timeout=60)
    return proc


def model_args(args: argparse.Namespace, base: Path, port: int | None) -> list[str]:
    """The consumer's ``--model`` flags for the chosen backend."""
    flags = []
    for name in MODELS:
        url = (
            f"openvino:{base / name}"
            if port is None
            else f"http://127.0.0.1:{port}/v2/models/{name}"
        )
        flags += ["--model", f"{name}={url}"]
    return flags


def run_point(
    settings: KafkaSettings,
    cameras: int,
    args: argparse.Namespace,
    models: list[str],
    serve: Process | None,
    work: Path,
) -> dict:
    """One camera count through the pipeline: its figures (see :func:`window_figures`)."""
    names = topics(settings, f"density{cameras}", partitions=4)
    consumer = consume(settings, names, models, work / f"consume-{cameras}.log")
    reader = Reader(settings, names[2], keep_json=True)
    reader.start()
    feed = None
    try:
        feed = producer(settings, names[0], cameras, args, work / f"produce-{cameras}.log")
        time.sleep(args.warmup)
        pids: dict[str, int | list[int]] = {
            "producer": feed.proc.pid,
            "broker": BROKER_PIDS,
            "consumer": consumer.proc.pid,
        }
        if serve is not None:
            pids["serve"] = serve.proc.pid
        pids["bench (reader)"] = os.getpid()
        meter = CpuMeter(pids)
        start_ns = time.time_ns()
        time.sleep(args.seconds)
        end_ns = time.time_ns()
        cpu = meter.seconds()
        cores = meter.cores()
    finally:
        if feed is not None:
            feed.stop()
        consumer.stop()
        reader.stop()
    docs = [d for d in reader.docs if start_ns <= int(d.get("published_ns", 0)) < end_ns]
    point = window_figures(docs, cameras, args.fps, (end_ns - start_ns) / 1e9, cpu)
    point["cores_busy"] = cores
    return point


def print_point(point: dict) -> None:
    """One row of the printed table."""
    cpu = ", ".join(f"{name} {ms:.1f}" for name, ms in point["cpu_ms_per_frame"].items())
    print(
        f"{point['cameras']:>3} {point['fps_in']:>7.1f} {point['fps_out']:>8.1f} "
        f"{point['dropped'] * 100:>8.1f} {point['age_p50_ms']:>8.0f} {point['age_p99_ms']:>8.0f} "
        f"{point['cpu_ms_total']:>9.1f} {point['cores_busy']:>6.2f}   {cpu}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--fps", type=float, default=15.0, help="per camera")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window per N")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before the window")
    parser.add_argument("--backend", choices=["serve", "openvino"], default="serve")
    parser.add_argument(
        "--source", choices=["video", "demo"], default="video",
        help="video: the demo video vtest.avi scaled to 720p; demo: the generated photo scene",
    )  # fmt: skip
    add_json_flag(parser)
    args = parser.parse_args()
    if args.source == "video" and not demo_video().is_file():
        print(f"{demo_video()} is missing: run scripts/fetch-demo-video.sh", file=sys.stderr)
        return 1
    base = models_dir()
    for name in MODELS:
        build_model(name, base)
    points = []
    with tempfile.TemporaryDirectory() as folder, broker() as settings:
        work = Path(folder)
        with contextlib.ExitStack() as stack:
            serve, port = (None, None)
            if args.backend == "serve":
                serve, port = stack.enter_context(model_server(base, work))
            models = model_args(args, base, port)
            print(
                f"stream density: 1280x720 at {args.fps:g} fps per camera ({args.source}), "
                f"models {' + '.join(MODELS)} ({args.backend}), {args.seconds:g} s per point "
                f"after {args.warmup:g} s; {os.cpu_count()} CPUs"
            )
            print(
                f"{'N':>3} {'fps in':>7} {'fps out':>8} {'dropped%':>8} {'p50 ms':>8} "
                f"{'p99 ms':>8} {'CPU ms/f':>9} {'cores':>6}   CPU ms per frame per process"
            )
            for cameras in args.cameras:
                points.append(run_point(settings, cameras, args, models, serve, work))
                print_point(points[-1])
    summary = curve_summary(points)
    summary["cameras_per_core"] = cameras_per_core(points, args.fps)
    best = summary["max_sustained_cameras"]
    print(
        f"largest N with < {MAX_DROPPED:.0%} dropped and p99 age < {MAX_P99_MS:g} ms: "
        f"{best if best else 'none'}"
    )
    print(
        f"CPU per frame across N: {summary['max_deviation']:+.1%} at most from N = "
        f"{points[0]['cameras']} ({'flat' if summary['flat'] else 'NOT flat'} within +-10 %)"
    )
    capacity = ", ".join(f"{n} {c:.1f}" for n, c in summary["cameras_per_core"].items())
    print(f"cameras per core of each process (at its CPU per frame): {capacity}")
    write_figures(
        args.json,
        "stream_density",
        {"fps": args.fps, "backend": args.backend, "source": args.source,
         "points": points, **summary},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
