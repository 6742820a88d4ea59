"""Before and after: the table's figures of two ``make bench`` records side by side.

Each record is the ``docs/benchmarks/figures.json`` a run wrote (keep the old one
before running again, or take it from git: ``git show main:docs/benchmarks/figures.json``).
Prints, for every row measured in both, the figure before, after, and the change, so a
change that moves a figure can say by how much (issue 19's "measured before and after").

    python bench/compare.py BEFORE.json AFTER.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ratios import Figures, Row, build_rows


def changes(before: Figures, after: Figures) -> list[tuple[Row, Row, str]]:
    """``(before row, after row, change)`` for every figure measured in both."""
    pairs = []
    for old, new in zip(build_rows(before), build_rows(after), strict=True):
        if old.measured is None or new.measured is None:
            continue
        if old.measured:
            change = f"{(new.measured / old.measured - 1) * 100:+.0f} %"
        else:
            change = f"{new.measured - old.measured:+g}"
        pairs.append((old, new, change))
    return pairs


def table(pairs: list[tuple[Row, Row, str]]) -> str:
    """The changes as a Markdown table, with each side's result against its target."""
    lines = ["| figure | before | after | change | result after |", "|---|---:|---:|---:|---|"]
    for old, new, change in pairs:
        result = new.status if not new.by else f"{new.status} ({new.by})"
        lines.append(f"| {new.figure} | {old.shown} | {new.shown} | {change} | {result} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    pairs = changes(json.loads(args.before.read_text()), json.loads(args.after.read_text()))
    if not pairs:
        print("no figure was measured in both records", file=sys.stderr)
        return 1
    print(table(pairs), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
