"""P4 freshness: frame age at publish (capture -> annotated frame out), p50 and p99.

1. 30 fps input, two 50 ms fixed-latency replicas (capacity 40 fps): normal load.
2. 30 fps input, one replica at 1/15 s and --max-inflight 1 (capacity 15 fps): 2x overload.
   Age must stay bounded: p50/p99 per 20 s window must not grow (no backlog).

    python bench/consumer_freshness.py [--seconds 120] [--normal-seconds 30] [--json PATH]
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
from stats import percentile


def run(
    settings, replicas: int, latency: float, inflight: int, seconds: float, work: Path, tag: str
):
    servers, names, consumer = fixed_latency_pipeline(
        settings, replicas, latency, inflight, work, f"fresh-{tag}"
    )
    reader = Reader(settings, names[2], keep_json=True)
    reader.start()
    feeder = Feeder(settings, names[0], photo_jpegs(1280, 720), (1280, 720), fps=30)
    feeder.start()
    meter = CpuMeter({"kva consume": consumer.proc.pid})
    try:
        time.sleep(seconds + 2)
        consumer_cpu = meter.seconds()["kva consume"]
    finally:
        feeder.stop()
        reader.stop()
        consumer.stop()
        servers.stop()
    docs = [d for d in reader.docs if d.get("published_ns")]
    start = docs[0]["published_ns"] + 2e9  # skip the first two seconds
    out = len(docs)
    docs = [d for d in docs if d["published_ns"] >= start]
    return docs, feeder.sent, consumer_cpu * 1000 / max(out, 1)


def report(title: str, docs: list[dict], sent: int, seconds: float, window: float = 20.0) -> None:
    ages = [float(d["age_ms"]) for d in docs]
    span = (docs[-1]["published_ns"] - docs[0]["published_ns"]) / 1e9 if docs else 0
    print(
        f"{title}: {sent} frames in, {len(docs)} out in {span:.0f} s "
        f"({len(docs) / max(span, 1e-9):.1f} fps out); "
        f"age p50 {percentile(ages, 0.5):.0f} ms, p99 {percentile(ages, 0.99):.0f} ms, "
        f"max {max(ages, default=float('nan')):.0f} ms"
    )
    if span > 2 * window:
        t0 = docs[0]["published_ns"]
        rows = []
        for k in range(int(span // window)):
            part = [
                float(d["age_ms"])
                for d in docs
                if t0 + k * window * 1e9 <= d["published_ns"] < t0 + (k + 1) * window * 1e9
            ]
            rows.append(
                f"[{k * window:.0f}-{(k + 1) * window:.0f}s] p50 {percentile(part, 0.5):.0f} "
                f"p99 {percentile(part, 0.99):.0f}"
            )
        print("  per window (ms): " + "; ".join(rows))
        first = [float(d["age_ms"]) for d in docs if d["published_ns"] < t0 + window * 1e9]
        last = [float(d["age_ms"]) for d in docs if d["published_ns"] >= t0 + (span - window) * 1e9]
        print(
            f"  backlog growth: p50 first window {percentile(first, 0.5):.0f} ms -> "
            f"last window {percentile(last, 0.5):.0f} ms"
        )


def age_figures(docs: list[dict], sent: int, cpu_ms: float, window: float = 20.0) -> dict:
    """The machine-readable figures of one run: ages (percentiles 0..100 for the chart), fps
    out, and the first and last window's p50 (windows of a third of a run shorter than two)."""
    ages = [float(d["age_ms"]) for d in docs]
    span = (docs[-1]["published_ns"] - docs[0]["published_ns"]) / 1e9 if docs else 0
    window = window if span > 2 * window else span / 3
    t0 = docs[0]["published_ns"] if docs else 0
    first = [float(d["age_ms"]) for d in docs if d["published_ns"] < t0 + window * 1e9]
    last = [float(d["age_ms"]) for d in docs if d["published_ns"] >= t0 + (span - window) * 1e9]
    return {
        "frames_in": sent,
        "consumer_cpu_ms_per_frame": cpu_ms,
        "frames_out": len(docs),
        "fps_out": len(docs) / max(span, 1e-9),
        "age_p50_ms": percentile(ages, 0.5),
        "age_p99_ms": percentile(ages, 0.99),
        "age_max_ms": max(ages, default=float("nan")),
        "age_percentiles_ms": [percentile(ages, q / 100) for q in range(101)],
        "first_window_p50_ms": percentile(first, 0.5),
        "last_window_p50_ms": percentile(last, 0.5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="overload run length")
    parser.add_argument("--normal-seconds", type=float, default=30.0)
    add_json_flag(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, broker() as settings:
        work = Path(folder)
        print("P4 freshness, 1280x720 JPEG frames at 30 fps, one stream")
        docs, sent, cpu_ms = run(settings, 2, 0.05, 2, args.normal_seconds, work, "normal")
        report("normal (2 x 50 ms replicas, capacity 40 fps)", docs, sent, args.normal_seconds)
        normal = age_figures(docs, sent, cpu_ms)
        docs, sent, cpu_ms = run(settings, 1, 1 / 15, 1, args.seconds, work, "overload")
        report("2x overload (1 replica, 15 fps capacity)", docs, sent, args.seconds)
        overload = age_figures(docs, sent, cpu_ms)
    write_figures(
        args.json, "consumer_freshness", {"fps_in": 30, "normal": normal, "overload": overload}
    )


if __name__ == "__main__":
    main()
    print("load average (1, 5, 15 min) at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
