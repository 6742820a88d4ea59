"""Broker start time per mode: launcher start() until the broker answers metadata, median of N.

python bench/broker_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from kva.ports import free_port
from kva.zookeeper.cluster import ClusterSpec, KafkaCluster


def time_start(mode: str) -> tuple[float, float]:
    spec = ClusterSpec(mode=mode, port=0, zookeeper_port=free_port())  # type: ignore[arg-type]
    cluster = KafkaCluster(spec)
    started = time.perf_counter()
    cluster.start()
    ready = time.perf_counter() - started
    stopping = time.perf_counter()
    cluster.stop()
    return ready, time.perf_counter() - stopping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{'mode':<10} {'start s (runs)':<28} {'median':>7} {'stop median':>12}")
    for mode in ("kraft", "zookeeper"):
        starts, stops = zip(*(time_start(mode) for _ in range(args.runs)), strict=True)
        runs = ", ".join(f"{s:.2f}" for s in starts)
        start, stop = statistics.median(starts), statistics.median(stops)
        print(f"{mode:<10} {runs:<28} {start:>7.2f} {stop:>12.2f}")


if __name__ == "__main__":
    main()
