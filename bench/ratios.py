"""The table of ratios ``make bench`` prints: one row per figure of issue 19, each measured
in one run against its own baseline, with its target, met or missed and by how much.

Pure functions of the figures the benchmarks wrote (``--json``), keyed by bench name:
no benchmark runs here, so the table is tested on given figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Figures = dict[str, dict[str, Any]]
Status = Literal["met", "missed", "info", "not run"]


@dataclass(frozen=True)
class Target:
    """``measured >= value``, ``measured <= value`` or ``|measured| <= value``."""

    op: Literal[">=", "<=", "+-"]
    value: float
    unit: str = ""

    def text(self) -> str:
        shown = f"{self.value * 100:g} %" if self.unit == "%" else f"{self.value:g}{self.unit}"
        return (
            f"within ±{shown}"
            if self.op == "+-"
            else f"{self.op.replace('>=', '≥').replace('<=', '≤')} {shown}"
        )

    def judge(self, measured: float) -> tuple[Status, str]:
        """Met or missed, and by how much (relative to the target, or in points for ±)."""
        if self.op == "+-":
            gap = abs(measured) - self.value
            return ("met" if gap <= 0 else "missed"), f"by {_percent(abs(gap))} points"
        short = (self.value - measured) if self.op == ">=" else (measured - self.value)
        relative = abs(short) / abs(self.value) if self.value else abs(short)
        return ("met" if short <= 0 else "missed"), f"by {_percent(relative)} %"


def _percent(fraction: float) -> str:
    """A share as percent: whole numbers from 10 % up, one decimal below."""
    value = fraction * 100
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    figure: str
    baseline: str
    bench: str
    target: Target | None
    measured: float | None
    shown: str
    cpu: str = ""
    note: str = ""

    @property
    def status(self) -> Status:
        if self.measured is None or (
            isinstance(self.measured, float) and math.isnan(self.measured)
        ):
            return "not run"
        return "info" if self.target is None else self.target.judge(self.measured)[0]

    @property
    def by(self) -> str:
        if self.target is None or self.status == "not run" or self.measured is None:
            return ""
        return self.target.judge(self.measured)[1]


def _get(figures: Figures, bench: str, *keys: str) -> Any:
    """``figures[bench][k1][k2]...`` or None when any part is missing."""
    value: Any = figures.get(bench)
    for key in keys:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return value


def cpu_text(per_process: dict[str, float] | None) -> str:
    """``consumer 7.5, serve 5.1, ...`` (CPU ms per frame), '' when unknown."""
    if not per_process:
        return ""
    return ", ".join(f"{name} {ms:.1f}" for name, ms in per_process.items())


def _ratio(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def transport_rows(f: Figures) -> list[Row]:
    ratio = _get(f, "consumer_transport", "ratio_vs_relay")
    rounds = _get(f, "consumer_transport", "rounds") or [{}]
    cpu = rounds[-1].get("cpu_ms_per_frame", {})
    flat = {
        **cpu.get("pipeline", {}),
        **{n if n == "relay" else f"{n} (relay run)": ms for n, ms in cpu.get("relay", {}).items()},
    }
    return [
        Row("P1 transport: kva consume --passthrough fps", "raw confluent-kafka relay",
            "consumer_transport", Target(">=", 0.9), ratio, _ratio(ratio), cpu_text(flat)),
    ]  # fmt: skip


def efficiency_rows(f: Figures) -> list[Row]:
    rows = []
    labels = {
        "v2": ("remote /v2 binary (kva serve)", 0.8),
        "openvino": ("in-process openvino:", 0.9),
    }
    for backend, (label, goal) in labels.items():
        value = _get(f, "consumer_efficiency", "median", backend, "cpu_efficiency")
        cpu = _get(f, "consumer_efficiency", "median", backend, "cpu_ms")
        alone = _get(f, "consumer_efficiency", "median", backend, "in_process_cpu_ms")
        note = "" if alone is None else f"same work in one process: {alone:.1f} ms/frame"
        rows.append(
            Row(f"P2 CPU efficiency, {label}", "the same work in one process (CPU per frame)",
                "consumer_efficiency", Target(">=", goal), value, _ratio(value), cpu_text(cpu),
                note)
        )  # fmt: skip
    return rows


def fanout_rows(f: Figures) -> list[Row]:
    points = _get(f, "consumer_fanout", "points") or []
    value = _get(f, "consumer_fanout", "min_ratio")
    worst = min(points, key=lambda p: p["ratio"], default=None)
    note = "" if worst is None else f"worst at R = {worst['replicas']}"
    cpu = {} if worst is None else {"consumer": worst["consumer_cpu_ms_per_frame"]}
    return [
        Row("P3 fan-out: fps over R replicas, worst R", "ideal R ÷ latency",
            "consumer_fanout", Target(">=", 0.9), value, _ratio(value), cpu_text(cpu),
            note + " (target: the bench's own, not in issue 19's table)"),
    ]  # fmt: skip


def freshness_rows(f: Figures) -> list[Row]:
    first = _get(f, "consumer_freshness", "overload", "first_window_p50_ms")
    last = _get(f, "consumer_freshness", "overload", "last_window_p50_ms")
    growth = None if first is None or last is None or not first else last / first
    ages = []
    for load in ("normal", "overload"):
        p50 = _get(f, "consumer_freshness", load, "age_p50_ms")
        p99 = _get(f, "consumer_freshness", load, "age_p99_ms")
        if p50 is not None and p99 is not None:
            ages.append(f"{'1x' if load == 'normal' else '2x'}: p50 {p50:.0f} / p99 {p99:.0f} ms")
    cpu = {
        f"consumer at {'1x' if load == 'normal' else '2x'}": ms
        for load in ("normal", "overload")
        if (ms := _get(f, "consumer_freshness", load, "consumer_cpu_ms_per_frame")) is not None
    }
    return [
        Row("P4 freshness: age growth at 2x overload (last ÷ first p50)",
            "the same run's first window", "consumer_freshness", Target("<=", 1.1), growth,
            _ratio(growth), cpu_text(cpu),
            "; ".join(ages) + " (target: no backlog growth, the bench's own criterion with "
            "10 % for noise)"),
    ]  # fmt: skip


def viewer_rows(f: Figures) -> list[Row]:
    worst = _get(f, "viewer_mjpeg", "worst_ratio")
    cpu = _get(f, "viewer_mjpeg", "server_cpu_percent")
    n = _get(f, "viewer_mjpeg", "n_max")
    who = f"{n} viewers" if n is not None else "100 viewers"
    share = None if cpu is None else cpu / 100
    per_frame = _get(f, "viewer_mjpeg", "server_cpu_ms_per_frame_sent")
    sent = "" if per_frame is None else f"viewer {per_frame:.2f} per frame sent"
    baseline = _get(f, "viewer_mjpeg", "threads_baseline")
    if baseline and cpu is not None and baseline.get("cpu"):
        sent += (
            f"; a worker thread per client, same run: {baseline['cpu']:.0f} % "
            f"({cpu / baseline['cpu']:.2f} x)"
        )
    shown = "—" if cpu is None else f"{cpu:.0f} %"
    return [
        Row(f"P5 {who}: worst client fps", "source fps", "viewer_mjpeg", Target(">=", 0.95),
            worst, _ratio(worst, 3)),
        Row(f"P5 {who}: viewer CPU (share of one core)", "one core", "viewer_mjpeg",
            Target("<=", 0.30, "%"), share, shown, sent),
    ]  # fmt: skip


def serve_rows(f: Figures) -> list[Row]:
    rows = []
    for key, label in (("v2_binary", "/v2 binary JPEG"), ("v1", "/v1 b64 JPEG")):
        value = _get(f, "serve_overhead", f"cpu_ratio_{key}_c4")
        runs = _get(f, "serve_overhead", "runs") or {}
        served = runs.get(f"{label} c4", {}).get("server_cpu_ms")
        raw = runs.get("raw c4", {}).get("own_cpu_ms")
        cpu = {} if served is None or raw is None else {"raw OpenVINO": raw, "kva serve": served}
        rows.append(
            Row(f"server overhead, {label}: CPU per request (c = 4)",
                "raw in-process OpenVINO (raw ÷ server)", "serve_overhead", Target(">=", 0.9),
                value, _ratio(value), cpu_text(cpu).replace(", ", " ms/request, ", 1)),
        )  # fmt: skip
    return rows


def density_rows(f: Figures) -> list[Row]:
    best = _get(f, "stream_density", "max_sustained_cameras")
    deviation = _get(f, "stream_density", "max_deviation")
    points = _get(f, "stream_density", "points") or []
    counts = ", ".join(str(p["cameras"]) for p in points)
    last = points[-1]["cpu_ms_per_frame"] if points else None
    return [
        Row("stream density: cameras sustained (< 5 % dropped, p99 < 500 ms)",
            f"N = {counts or '—'}", "stream_density", None,
            None if best is None else float(best),
            "—" if best is None else str(best) if best else "none"),
        Row("stream density: CPU per frame across N, largest deviation", "N = first point",
            "stream_density", Target("+-", 0.10, "%"), deviation,
            "—" if deviation is None else f"{deviation * 100:+.0f} %",
            cpu_text(last), "" if not points else f"CPU at N = {points[-1]['cameras']}"),
    ]  # fmt: skip


#: Row builders in table order.
BUILDERS: tuple[Callable[[Figures], list[Row]], ...] = (
    transport_rows,
    efficiency_rows,
    fanout_rows,
    freshness_rows,
    viewer_rows,
    serve_rows,
    density_rows,
)


def build_rows(figures: Figures) -> list[Row]:
    """Every row of the table from the benchmarks' figures (missing ones: 'not run')."""
    return [row for build in BUILDERS for row in build(figures)]
