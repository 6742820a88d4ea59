"""The agreement table ``kva compare`` prints: a header on the two runs, a row per model.

Columns: ``frames`` compared (both models answered ``ok``), ``top-1`` agreement
(classifiers), box ``recall`` (share of A's boxes matched in B) and ``precision``
(share of B's boxes matched in A), the mean box count difference per frame
(``count B-A``) and its absolute value (``|B-A|``), and each run's latency p50/p95 in
milliseconds. ``-`` where a column does not apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kva.compare.agreement import Comparison, PairAgreement, RunStats
from kva.compare.join import JoinCounts

HEADER = (
    "model (A -> B)",
    "kind",
    "frames",
    "top-1",
    "recall",
    "precision",
    "count B-A",
    "|B-A|",
    "A p50/p95 ms",
    "B p50/p95 ms",
)


@dataclass
class RunInfo:
    """One run as the header names it."""

    topic: str
    documents: int
    corrupt: Mapping[str, int]
    stats: RunStats


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _latency(stats: RunStats, model: str) -> str:
    latency = stats.latency.get(model)
    if latency is None or not latency.count:
        return "-"
    return f"{latency.percentile(0.5):.1f} / {latency.percentile(0.95):.1f}"


def _pair_row(pair: PairAgreement, a: RunInfo, b: RunInfo) -> tuple[str, ...]:
    name = pair.model_a if pair.model_a == pair.model_b else f"{pair.model_a} -> {pair.model_b}"
    detector = pair.kind == "detector" and pair.frames
    return (
        name,
        pair.kind or ("kinds differ" if pair.kinds_differ else "-"),
        str(pair.frames),
        _percent(pair.top1_agree, pair.frames) if pair.kind == "classifier" else "-",
        _percent(pair.matched, pair.boxes_a) if detector else "-",
        _percent(pair.matched, pair.boxes_b) if detector else "-",
        f"{pair.count_diff / pair.frames:+.2f}" if detector else "-",
        f"{pair.abs_count_diff / pair.frames:.2f}" if detector else "-",
        _latency(a.stats, pair.model_a),
        _latency(b.stats, pair.model_b),
    )


def _lone_row(model: str, run: str, a: RunInfo, b: RunInfo) -> tuple[str, ...]:
    stats = a.stats if run == "A" else b.stats
    kind = stats.kinds.get(model, "")
    return (
        model,
        f"{kind} (only in {run})".strip(),
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
        _latency(a.stats, model) if run == "A" else "-",
        _latency(b.stats, model) if run == "B" else "-",
    )


def _run_line(label: str, run: RunInfo) -> str:
    corrupt = sum(run.corrupt.values())
    models = ", ".join(sorted(run.stats.latency)) or "none"
    line = f"{label}: {run.topic}: {run.documents} frame(s), models {models}"
    if corrupt:
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(run.corrupt.items()))
        line += f"; {corrupt} record(s) skipped ({reasons})"
    return line


def render(a: RunInfo, b: RunInfo, counts: JoinCounts, comparison: Comparison) -> str:
    """The whole report: the runs, how their frames met, and the table."""
    rows = [_pair_row(p, a, b) for _key, p in sorted(comparison.pairs.items())]
    paired_a = {p.model_a for p in comparison.pairs.values()}
    paired_b = {p.model_b for p in comparison.pairs.values()}
    rows += [_lone_row(m, "A", a, b) for m in sorted(set(a.stats.latency) - paired_a)]
    rows += [_lone_row(m, "B", a, b) for m in sorted(set(b.stats.latency) - paired_b)]
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = [
        _run_line("A", a),
        _run_line("B", b),
        f"frames in both: {counts.both}, only in A: {counts.only_a}, only in B: "
        f"{counts.only_b}" + (f", duplicates: {counts.duplicates}" if counts.duplicates else ""),
        "",
    ]
    for row in [HEADER, *rows]:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
