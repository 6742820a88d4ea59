"""Soak: run the whole pipeline (`kva up`) for a while and watch every process for growth.

    python bench/soak.py --duration 300 [--warmup 60] [--interval 5] [--check]

Samples RSS, open file descriptors and threads of every process of the
pipeline (the broker's JVM included), and frame age and fps of every stream
(from the viewer's /api/streams). Prints the growth after warm-up; with
``--check`` exits 1 when a process died, fds or threads grew, RSS grew more
than ``--max-rss-growth`` percent, or frame age drifted upwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kva.process import descendant_pids


@dataclass
class Series:
    """Samples of one process."""

    name: str
    rss_mb: list[float] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)


def descendants(root: int) -> dict[int, str]:
    """pid -> a short name (kva sub-command, or java) of every process below ``root``."""
    return {pid: _name(pid) for pid in descendant_pids(root)}


def _name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    module = words[words.index("-m") + 1] if "-m" in words[:-1] else ""
    if module == "kva":
        rest = words[words.index("-m") + 2 :]
        port = next((rest[i + 1] for i, w in enumerate(rest[:-1]) if w == "--rest_api_port"), "")
        return f"{rest[0]}{':' + port if port else ''}" if rest else "kva"
    return Path(words[0]).name if words else "?"


def sample(pid: int) -> tuple[float, int, int] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss, fds, threads


def streams(viewer: str) -> list[dict] | None:
    """The viewer's streams, or None when the viewer does not answer."""
    try:
        with urllib.request.urlopen(viewer + "api/streams", timeout=5) as response:  # noqa: S310
            return list(json.loads(response.read())["streams"])
    except OSError:
        return None


def growth(values: list[float]) -> float:
    return 100.0 * (values[-1] - values[0]) / values[0] if values and values[0] else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=float, default=300, help="seconds of measurement after warm-up"
    )
    parser.add_argument(
        "--warmup", type=float, default=60, help="seconds before the first kept sample"
    )
    parser.add_argument("--interval", type=float, default=5)
    parser.add_argument(
        "--report-every", type=float, default=600, help="seconds between interim reports"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--max-rss-growth", type=float, default=5.0, help="percent, with --check")
    args = parser.parse_args()

    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kva",
            "up",
            "--port",
            "0",
            "--kafka-port",
            "0",
            "--serve-port",
            "0",
            "--metrics-port",
            "0",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(up.stdout or []), daemon=True).start()
    try:
        return measure(up, lines, args)
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)


def measure(up: subprocess.Popen[str], lines: list[str], args: argparse.Namespace) -> int:
    deadline = time.monotonic() + 180
    while not any("viewer:" in line for line in lines):
        if up.poll() is not None or time.monotonic() > deadline:
            print("kva up did not come up:\n" + "".join(lines[-30:]))
            return 1
        time.sleep(0.5)
    viewer = re.search(r"viewer:\s+(http://\S+)", "".join(lines)).group(1)  # type: ignore[union-attr]
    print(f"pipeline up; warming up {args.warmup:.0f}s, then measuring {args.duration:.0f}s")
    time.sleep(args.warmup)
    processes = descendants(up.pid)
    series = {pid: Series(name) for pid, name in processes.items()}
    ages: list[list[float]] = []
    fps: list[list[float]] = []
    unanswered = 0
    started = time.monotonic()
    end = started + args.duration
    next_report = started + args.report_every
    while time.monotonic() < end:
        for pid, s in series.items():
            value = sample(pid)
            if value is not None:
                s.rss_mb.append(value[0])
                s.fds.append(value[1])
                s.threads.append(value[2])
        current = streams(viewer)
        if current is None:
            unanswered += 1
        else:
            ages.append([st["age_seconds"] for st in current if st.get("age_seconds") is not None])
            fps.append([st["fps"] for st in current if st.get("fps") is not None])
        if time.monotonic() >= next_report:
            print(f"--- after {time.monotonic() - started:.0f}s ---", flush=True)
            report(series, ages, fps, args)
            next_report += args.report_every
        time.sleep(args.interval)
    print(f"--- final, after {time.monotonic() - started:.0f}s ---")
    code = report(series, ages, fps, args)
    if unanswered:
        print(f"MISSED: the viewer did not answer {unanswered} times")
        return 1 if args.check else code
    return code


def report(
    series: dict[int, Series],
    ages: list[list[float]],
    fps: list[list[float]],
    args: argparse.Namespace,
) -> int:
    failures = []
    print(f"\n{'process':<18}{'RSS MB start':>13}{'end':>8}{'growth':>9}{'fds':>10}{'threads':>10}")
    for pid, s in sorted(series.items(), key=lambda item: item[1].name):
        alive = sample(pid) is not None
        if not s.rss_mb:
            continue
        rss = f"{s.rss_mb[0]:>13.1f}{s.rss_mb[-1]:>8.1f}{growth(s.rss_mb):>8.1f}%"
        fds = f"{s.fds[0]:>5}->{s.fds[-1]:<4}"
        threads = f"{s.threads[0]:>5}->{s.threads[-1]:<4}"
        print(f"{s.name:<18}{rss}{fds:>10}{threads:>10}{'' if alive else '  DIED'}", flush=True)
        if not alive:
            failures.append(f"{s.name} died")
        # A JVM opens and closes log segments: allow a little slack, not a trend.
        if s.fds[-1] > s.fds[0] * 1.1 + 2 or s.threads[-1] > s.threads[0] * 1.1 + 2:
            failures.append(
                f"{s.name}: fds {s.fds[0]}->{s.fds[-1]}, threads {s.threads[0]}->{s.threads[-1]}"
            )
        if growth(s.rss_mb) > args.max_rss_growth:
            failures.append(f"{s.name}: RSS grew {growth(s.rss_mb):.1f}%")
    half = len(ages) // 2
    first = [a for row in ages[:half] for a in row]
    second = [a for row in ages[half:] for a in row]
    rates = [f for row in fps for f in row]
    if first and second:
        print(
            f"\nframe age p50: first half {statistics.median(first) * 1000:.0f} ms, "
            f"second half {statistics.median(second) * 1000:.0f} ms; "
            f"max {max(first + second) * 1000:.0f} ms"
        )
        if statistics.median(second) > 2 * statistics.median(first) + 0.1:
            failures.append("frame age drifted upwards")
    if rates:
        print(f"viewer fps per stream: median {statistics.median(rates):.1f}, min {min(rates):.1f}")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
