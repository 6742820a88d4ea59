"""``docs/benchmarks.md``: the project's record of the figures, written by ``make bench``.

:func:`render` is a pure function of one run (machine, commit, date, load averages, the
table's rows, the stream-density points, the charts' paths); :func:`write` puts it in
the file. The "before" section keeps issue 19's earlier measurements, as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from machine import Machine
from ratios import Row
from render import BenchRun, markdown_table

#: Issue 19's "Where it stands": the figures measured before ``make bench`` existed.
BEFORE = Path(__file__).with_name("benchmarks_before.md")


@dataclass(frozen=True)
class Record:
    """One ``make bench`` run, as the page shows it."""

    machine: Machine
    commit: str
    date: str
    load_start: list[float]
    load_end: list[float]
    rows: list[Row]
    runs: dict[str, BenchRun]
    quick: bool = False
    forced_busy: bool = False
    density: list[dict[str, Any]] = field(default_factory=list)
    #: cameras per core of each process (stream density), for the capacity model
    capacity: dict[str, float] = field(default_factory=dict)
    charts: dict[str, str] = field(default_factory=dict)


def _loads(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def heading(record: Record) -> list[str]:
    """The title, the warnings and the conditions of the run."""
    lines = ["# Benchmarks", ""]
    if record.quick:
        lines += [
            "> **QUICK RUN: NOT A MEASUREMENT.** `make bench` smoke test with the",
            "> smallest settings; no figure below is a result.",
            "",
        ]
    if record.forced_busy:
        lines += [
            "> **The machine was busy at the start (run with `--force`):** the figures",
            "> are distorted by other work; compare them with care.",
            "",
        ]
    lines += [
        "Written by `make bench` (`bench/all.py`): every benchmark in turn, each ratio",
        "measured side by side in one run against its own baseline. Update it in each",
        "change that moves a figure.",
        "",
        f"- machine: {record.machine.text()}",
        f"- commit: `{record.commit}`",
        f"- date: {record.date}",
        f"- load average (1 / 5 / 15 min): {_loads(record.load_start)} at the start, "
        f"{_loads(record.load_end)} at the end",
        "",
    ]
    return lines


def density_table(points: list[dict[str, Any]]) -> list[str]:
    """The stream-density points, one line per camera count."""
    if not points:
        return []
    columns = ("cameras", "fps in", "fps out", "dropped", "age p50 ms", "age p99 ms",
               "CPU ms per frame", "per process")  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|---:" * 7 + "|---|"]
    for p in points:
        per = ", ".join(f"{n} {ms:.1f}" for n, ms in p["cpu_ms_per_frame"].items())
        lines.append(
            f"| {p['cameras']} | {p['fps_in']:.1f} | {p['fps_out']:.1f} | "
            f"{p['dropped'] * 100:.1f} % | {_num(p['age_p50_ms'])} | {_num(p['age_p99_ms'])} | "
            f"{p['cpu_ms_total']:.1f} | {per} |"
        )
    return lines + [""]


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def render(record: Record) -> str:
    """The whole page."""
    lines = heading(record)
    lines += ["## The table", "", markdown_table(record.rows, record.runs)]
    lines += [
        "CPU ms per frame per process: each process's CPU time in the measured window",
        "divided by the frames it did its work for; load: the 1-minute load average just",
        "before and just after that benchmark.",
        "",
    ]
    if record.density or "density" in record.charts:
        lines += ["## Stream density", ""]
        lines += density_table(record.density)
    if record.capacity:
        shown = ", ".join(f"{name} {n:.1f}" for name, n in record.capacity.items())
        lines += [f"Cameras per core of each process, at its CPU per frame: {shown}.", ""]
    if "density" in record.charts:
        alt = "stream density: CPU per frame and drop rate against cameras"
        lines += [f"![{alt}]({record.charts['density']})", ""]
    if "ages" in record.charts:
        lines += ["## Frame age at 1x and 2x load", ""]
        lines += [f"![frame age distribution at 1x and 2x load]({record.charts['ages']})", ""]
    lines += ["## The runs", "", "| bench | seconds | exit | load before → after |"]
    lines += ["|---|---:|---:|---|"]
    for run in record.runs.values():
        lines.append(
            f"| {run.bench} | {run.seconds:.0f} | {run.returncode} | "
            f"{run.load_before:.2f} → {run.load_after:.2f} |"
        )
    lines += ["", BEFORE.read_text()]
    return "\n".join(lines)


def write(record: Record, path: Path) -> Path:
    """Write the page to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(record))
    return path
