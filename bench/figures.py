"""Machine-readable figures of one benchmark run: what ``--json PATH`` writes.

Each benchmark keeps printing its human-readable lines and, given ``--json PATH``,
also writes its key figures as one JSON document (``bench/all.py`` reads them; it
never parses the printed text). The document is ``{"bench": NAME, "figures": {...},
"load_average": [1, 5, 15 min], "finished": ISO time}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
from pathlib import Path
from typing import Any


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """The ``--json PATH`` option every benchmark shares."""
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        default=None,
        help="also write the key figures as JSON to PATH (read by bench/all.py)",
    )


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages, rounded to 2 decimals."""
    return [round(value, 2) for value in os.getloadavg()]


def write_figures(path: Path | None, bench: str, figures: dict[str, Any]) -> None:
    """Write ``figures`` of benchmark ``bench`` to ``path`` (nothing when ``path`` is None)."""
    if path is None:
        return
    document = {
        "bench": bench,
        "figures": finite(figures),
        "load_average": load_average(),
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, allow_nan=False, default=_plain) + "\n")


def read_figures(path: Path) -> dict[str, Any]:
    """The ``figures`` of a document :func:`write_figures` wrote."""
    return dict(json.loads(path.read_text())["figures"])


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def _plain(value: object) -> object:
    """numpy scalars and the like as plain numbers."""
    for kind in (int, float):
        try:
            return kind(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            continue
    raise TypeError(f"not JSON: {value!r}")
