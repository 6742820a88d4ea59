"""P3 fan-out: R = 1, 2, 4, 8 replicas of a 50 ms fixed-latency model server.

One stream of 640x360 JPEG frames is produced faster than the replicas can
serve; ``kva consume`` (a subprocess) pipelines frames over the replicas.
Output fps (annotated frames published) against the ideal R / latency.
Target >= 0.9 at every R.

    python bench/consumer_fanout.py [--replicas 1 2 4 8] [--latency 0.05] [--seconds 10]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from consumer_common import (
    Feeder,
    Reader,
    broker,
    fixed_latency_pipeline,
    photo_jpegs,
)
from figures import add_json_flag, write_figures
from procstat import CpuMeter


def run_one(
    settings, replicas: int, latency: float, seconds: float, inflight: int, work: Path
) -> tuple[float, float]:
    """Output fps and the consumer's CPU ms per output frame at ``replicas`` replicas."""
    servers, names, consumer = fixed_latency_pipeline(
        settings, replicas, latency, inflight, work, f"fanout{replicas}"
    )
    ideal = replicas / latency
    reader = Reader(settings, names[1])
    reader.start()
    feeder = Feeder(settings, names[0], photo_jpegs(640, 360), (640, 360), fps=ideal * 1.5 + 10)
    feeder.start()
    try:
        time.sleep(3)  # warm up: connections, first frames
        start_count, start = reader.count, time.monotonic()
        meter = CpuMeter({"kva consume": consumer.proc.pid})
        time.sleep(seconds)
        fps = (reader.count - start_count) / (time.monotonic() - start)
        cpu_ms = meter.ms_per_frame(reader.count - start_count)["kva consume"]
    finally:
        feeder.stop()
        reader.stop()
        consumer.stop()
        servers.stop()
    status = [line for line in consumer.lines() if "stream cam0:" in line]
    if status:
        print("    consumer: " + status[-2 if len(status) > 1 else -1].split(": ", 1)[1])
    return fps, cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-inflight", type=int, default=2, help="kva consume --max-inflight")
    add_json_flag(parser)
    args = parser.parse_args()
    points = []
    with tempfile.TemporaryDirectory() as folder, broker() as settings:
        print(
            f"P3 fan-out: {args.latency * 1000:.0f} ms fixed-latency replicas, "
            f"--max-inflight {args.max_inflight}, {args.seconds:.0f} s per point"
        )
        print(f"{'R':>3} {'fps':>8} {'ideal':>8} {'ratio':>6}")
        for r in args.replicas:
            fps, cpu_ms = run_one(
                settings, r, args.latency, args.seconds, args.max_inflight, Path(folder)
            )
            ideal = r / args.latency
            print(f"{r:>3} {fps:8.1f} {ideal:8.1f} {fps / ideal:6.2f}", flush=True)
            points.append({"replicas": r, "fps": fps, "ideal": ideal, "ratio": fps / ideal,
                           "consumer_cpu_ms_per_frame": cpu_ms})  # fmt: skip
    write_figures(
        args.json,
        "consumer_fanout",
        {"latency": args.latency, "points": points, "min_ratio": min(p["ratio"] for p in points)},
    )


if __name__ == "__main__":
    main()
    print("load average (1, 5, 15 min) at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
