"""The table of ratios as text (the terminal) and as Markdown (``docs/benchmarks.md``)."""

from __future__ import annotations

from dataclasses import dataclass

from ratios import Row

HEADER = (
    "figure",
    "against",
    "target",
    "measured",
    "result",
    "CPU ms per frame per process",
    "load before → after",
)


@dataclass(frozen=True)
class BenchRun:
    """How one benchmark ran: its 1-min load average before and after, seconds, exit code."""

    bench: str
    load_before: float
    load_after: float
    seconds: float
    returncode: int


def result_text(row: Row) -> str:
    """``met (by 5 %)``, ``MISSED by 39 %``, ``info``, ``not run``."""
    if row.status == "met":
        return f"met ({row.by})"
    if row.status == "missed":
        return f"MISSED {row.by}"
    return row.status


def cells(row: Row, runs: dict[str, BenchRun]) -> list[str]:
    """The cells of one row, in :data:`HEADER` order."""
    run = runs.get(row.bench)
    load = "" if run is None else f"{run.load_before:.2f} → {run.load_after:.2f}"
    cpu = "; ".join(part for part in (row.cpu, row.note) if part)
    target = "—" if row.target is None else row.target.text()
    return [row.figure, row.baseline, target, row.shown, result_text(row), cpu, load]


def markdown_table(rows: list[Row], runs: dict[str, BenchRun]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells(row, runs)) + " |")
    return "\n".join(lines) + "\n"


def text_table(rows: list[Row], runs: dict[str, BenchRun], width: int = 60) -> str:
    """A fixed-width table for the terminal; long cells are cut to ``width`` characters."""
    table = [list(HEADER)] + [cells(row, runs) for row in rows]
    table = [[c if len(c) <= width else c[: width - 1] + "…" for c in line] for line in table]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    out = []
    for index, line in enumerate(table):
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"
