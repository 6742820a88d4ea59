"""P1 transport ceiling: ``kva consume --passthrough`` against raw Kafka produce + consume.

N 1280x720 JPEG frames are produced as fast as possible.
- raw: producer -> topic -> a reader (kva.kafka, i.e. confluent-kafka) — the limit.
- raw relay: producer -> topic -> a minimal confluent-kafka consume+produce loop
  (subprocess, bench/consumer_raw_relay.py) -> topic -> a reader: the same two hops.
- pipeline: producer -> topic -> ``kva consume --passthrough`` (subprocess: decode the
  envelope, re-stamp, republish) -> topic -> a reader.
fps = frames received / (last received - first sent). Ratios against both references;
target >= 0.8.

    python bench/consumer_transport.py [--frames 3000] [--rounds 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

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
from procstat import CpuMeter


def timed(settings, topic_in: str, topic_out: str, frames: list[bytes], count: int) -> float:
    reader = Reader(settings, topic_out)
    reader.start()
    feeder = Feeder(settings, topic_in, frames, (1280, 720), fps=0, limit=count)
    feeder.start()
    deadline = time.monotonic() + 120
    while reader.count < count and time.monotonic() < deadline:
        time.sleep(0.01)
    end = reader.stamps[-1] if reader.stamps else time.time()
    feeder.stop()
    reader.stop()
    return reader.count / (end - feeder.first_sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    add_json_flag(parser)
    args = parser.parse_args()
    rounds: list[dict] = []
    frames = photo_jpegs(1280, 720)
    size = sum(map(len, frames)) / len(frames)
    with tempfile.TemporaryDirectory() as folder, broker() as settings:
        print(f"P1 transport: {args.frames} frames of 1280x720 JPEG (~{size / 1024:.0f} kB)")
        for round_ in range(args.rounds):
            raw_in, _, _ = topics(settings, "raw")
            raw = timed(settings, raw_in, raw_in, frames, args.frames)
            names = topics(settings, "relay")
            relay = Process(
                ["bench/consumer_raw_relay.py", settings.bootstrap_server, names[0], names[1]],
                Path(folder) / f"relay-{round_}.log",
            )
            try:
                relay.wait_line("assigned [(", timeout=60)
                meter = CpuMeter({"relay": relay.proc.pid, "broker": BROKER_PIDS})
                relayed = timed(settings, names[0], names[1], frames, args.frames)
                relay_cpu = meter.ms_per_frame(args.frames)
            finally:
                relay.stop()
            names = topics(settings, "pass")
            consumer = consume(
                settings,
                names,
                ["--passthrough", "--max-lag", "1000000", "--max-frame-age", "3600"],
                Path(folder) / f"consume-{round_}.log",
            )
            try:
                meter = CpuMeter({"kva consume": consumer.proc.pid, "broker": BROKER_PIDS})
                piped = timed(settings, names[0], names[1], frames, args.frames)
                consume_cpu = meter.ms_per_frame(args.frames)
            finally:
                consumer.stop()
            rounds.append(
                {"raw_fps": raw, "relay_fps": relayed, "pipeline_fps": piped,
                 "ratio_vs_relay": piped / relayed, "ratio_vs_one_hop": piped / raw,
                 "cpu_ms_per_frame": {"relay": relay_cpu, "pipeline": consume_cpu}}
            )  # fmt: skip
            print(
                f"round {round_ + 1}: raw one hop {raw:.0f} fps ({raw * size / 2**20:.0f} MB/s), "
                f"raw relay {relayed:.0f} fps, kva consume --passthrough {piped:.0f} fps; "
                f"ratio vs relay {piped / relayed:.2f}, vs one hop {piped / raw:.2f}",
                flush=True,
            )
    write_figures(
        args.json,
        "consumer_transport",
        {
            "frames": args.frames,
            "rounds": rounds,
            "ratio_vs_relay": statistics.median(r["ratio_vs_relay"] for r in rounds),
            "ratio_vs_one_hop": statistics.median(r["ratio_vs_one_hop"] for r in rounds),
        },
    )


if __name__ == "__main__":
    main()
    print("load average (1, 5, 15 min) at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
