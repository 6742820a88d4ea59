"""``make bench``: every benchmark of issue 19 in turn, one table of ratios, the record.

Checks first that the machine is quiet (1-min load average at most ``--max-load`` per
core; a busy machine is refused unless ``--force``, which marks the record), then runs
each benchmark as its own process with ``--json`` (its printed lines go by as usual),
waits before each for the load to settle, notes the load average before and after
each, and prints one table: every figure against its own baseline, its target, met or
missed and by how much, CPU ms per frame per process. A full run also writes
``docs/benchmarks.md`` with the machine, the commit, the date, the charts
(``docs/benchmarks/*.png``) and the figures (``docs/benchmarks/figures.json``).

``--quick`` runs each benchmark for seconds, as a smoke test: its table is marked as
not a measurement and nothing is written unless ``--write`` (then to ``--output``).

    python bench/all.py [--quick] [--only transport efficiency ...] [--force] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from figures import read_figures
from machine import ROOT, busy, commit, this_machine
from ratios import Figures, build_rows
from record import Record, write
from render import BenchRun, text_table

BENCH = Path(__file__).resolve().parent
QUICK_BANNER = "QUICK RUN (smoke test, smallest settings): NOT A MEASUREMENT"


@dataclass(frozen=True)
class Bench:
    """One benchmark of the plan: its short name, script, and arguments per mode."""

    short: str
    name: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()

    @property
    def script(self) -> Path:
        return BENCH / f"{self.name}.py"


PLAN = (
    Bench("transport", "consumer_transport", (), ("--frames", "200", "--rounds", "1")),
    Bench(
        "efficiency",
        "consumer_efficiency",
        ("--backends", "v2", "openvino"),
        ("--seconds", "2", "--rounds", "1", "--backends", "v2", "openvino"),
    ),
    Bench("fanout", "consumer_fanout", (), ("--replicas", "1", "2", "--seconds", "2")),
    Bench("freshness", "consumer_freshness", (), ("--seconds", "6", "--normal-seconds", "4")),
    Bench("viewer", "viewer_mjpeg", (), ("--clients", "1", "10", "--seconds", "2")),
    Bench("serve", "serve_overhead", (), ("--seconds", "0.5", "--rounds", "1")),
    Bench(
        "density",
        "stream_density",
        (),
        ("--cameras", "1", "2", "--seconds", "3", "--warmup", "3"),
    ),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds per bench: a smoke test")
    parser.add_argument(
        "--only", nargs="+", choices=[b.short for b in PLAN], help="run only these benches"
    )
    parser.add_argument("--force", action="store_true", help="measure on a busy machine too")
    parser.add_argument(
        "--max-load", type=float, default=0.5, help="busy above this 1-min load average per core"
    )
    parser.add_argument(
        "--settle", type=float, default=None,
        help="seconds to wait before each bench for the load to drop (default 90; quick 0)",
    )  # fmt: skip
    parser.add_argument("--write", action="store_true", help="write the record in quick mode too")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per bench")
    args = parser.parse_args(argv)
    if args.settle is None:
        args.settle = 0.0 if args.quick else 90.0
    if args.timeout is None:
        args.timeout = 300.0 if args.quick else 1800.0
    return args


def check_quiet(args: argparse.Namespace, cores: int) -> bool | None:
    """Whether the run goes on a busy machine (True), a quiet one (False), or not (None)."""
    load = os.getloadavg()[0]
    if not busy(load, cores, args.max_load):
        return False
    limit = cores * args.max_load
    message = (
        f"the machine is busy: 1-min load average {load:.2f} > {limit:.2f} "
        f"({args.max_load:g} per core x {cores} cores); other work distorts every figure"
    )
    if args.quick:
        print(f"warning: {message} (quick run: no measurement anyway)", flush=True)
        return True
    if not args.force:
        print(f"refused: {message}. Wait for a quiet machine, or --force.", file=sys.stderr)
        return None
    bar = "!" * 78
    print(f"{bar}\nWARNING: {message}.\nMeasuring anyway (--force): the record says so.\n{bar}")
    return True


def settle(args: argparse.Namespace, cores: int) -> None:
    """Wait (at most ``--settle`` seconds) until the load average is quiet again."""
    deadline = time.monotonic() + args.settle
    while busy(os.getloadavg()[0], cores, args.max_load) and time.monotonic() < deadline:
        time.sleep(2)
    load = os.getloadavg()[0]
    if busy(load, cores, args.max_load):
        print(f"warning: load average still {load:.2f} after {args.settle:g} s: measuring anyway")


def run_bench(bench: Bench, args: argparse.Namespace, folder: Path) -> tuple[BenchRun, dict]:
    """Run one benchmark (its output passes through); its run and figures ({} if none)."""
    out = folder / f"{bench.name}.json"
    argv = [sys.executable, str(bench.script), *(bench.quick if args.quick else bench.full)]
    shown = " ".join([str(bench.script.relative_to(ROOT)), *argv[2:]])
    print(f"\n=== {bench.short}: python {shown}", flush=True)
    before, started = os.getloadavg()[0], time.monotonic()
    try:
        code = subprocess.run(
            [*argv, "--json", str(out)], cwd=ROOT, timeout=args.timeout
        ).returncode  # noqa: S603
    except subprocess.TimeoutExpired:
        print(f"=== {bench.short}: timed out after {args.timeout:g} s", flush=True)
        code = -1
    run = BenchRun(bench.name, before, os.getloadavg()[0], time.monotonic() - started, code)
    figures = read_figures(out) if out.is_file() else {}
    if not figures:
        print(f"=== {bench.short}: no figures (exit {code})", flush=True)
    return run, figures


def make_charts(figures: Figures, folder: Path, note: str) -> dict[str, str]:
    """The PNGs next to the page; their paths relative to it."""
    from charts import age_chart, density_chart

    made = {}
    points = figures.get("stream_density", {}).get("points")
    if points:
        density_chart(points, folder / "benchmarks" / "stream-density.png", note)
        made["density"] = "benchmarks/stream-density.png"
    if figures.get("consumer_freshness"):
        age_chart(figures["consumer_freshness"], folder / "benchmarks" / "frame-age.png", note)
        made["ages"] = "benchmarks/frame-age.png"
    return made


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = this_machine()
    forced = check_quiet(args, machine.cores)
    if forced is None:
        return 2
    load_start = [round(v, 2) for v in os.getloadavg()]
    plan = [b for b in PLAN if not args.only or b.short in args.only]
    figures: Figures = {}
    runs: dict[str, BenchRun] = {}
    with tempfile.TemporaryDirectory() as folder:
        for bench in plan:
            if not args.quick:
                settle(args, machine.cores)
            runs[bench.name], found = run_bench(bench, args, Path(folder))
            if found:
                figures[bench.name] = found
    rows = build_rows(figures)
    banner = f"\n{QUICK_BANNER}\n" if args.quick else "\n"
    print(banner + f"{machine.text()}; commit {commit()}\n" + text_table(rows, runs), end="")
    if args.quick:
        print(QUICK_BANNER)
    if args.no_write or (args.quick and not args.write):
        return 0 if all(r.returncode == 0 for r in runs.values()) else 1
    note = "QUICK RUN: NOT A MEASUREMENT" if args.quick else ""
    record = Record(
        machine=machine,
        commit=commit(),
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_start=load_start,
        load_end=[round(v, 2) for v in os.getloadavg()],
        rows=rows,
        runs=runs,
        quick=args.quick,
        forced_busy=bool(forced) and not args.quick,
        density=figures.get("stream_density", {}).get("points", []),
        capacity=figures.get("stream_density", {}).get("cameras_per_core", {}),
        charts=make_charts(figures, args.output.parent, note),
    )
    write(record, args.output)
    figures_file = args.output.parent / "benchmarks" / "figures.json"
    figures_file.parent.mkdir(parents=True, exist_ok=True)
    figures_file.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"wrote {args.output} (and {figures_file.parent}/)")
    return 0 if all(r.returncode == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
