"""The charts of ``docs/benchmarks.md`` as PNG (matplotlib, the ``bench`` extra):
stream density, and the frame-age distribution at 1x and 2x load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402


def density_chart(points: list[dict[str, Any]], path: Path, title_note: str = "") -> Path:
    """CPU ms per frame of each process (stacked) and the drop rate against the camera count."""
    cameras = [p["cameras"] for p in points]
    # the pipeline's processes (the bench's own reader is not part of the total)
    names = [
        n for n in (points[0]["cpu_ms_per_frame"] if points else []) if not n.startswith("bench")
    ]
    figure, (cpu_axis, drop_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    bottom = [0.0] * len(points)
    labels = [str(n) for n in cameras]
    for name in names:
        values = [p["cpu_ms_per_frame"].get(name, 0.0) for p in points]
        cpu_axis.bar(labels, values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    cpu_axis.set_xlabel("cameras (720p, 15 fps each)")
    cpu_axis.set_ylabel("CPU ms per frame")
    cpu_axis.set_title("CPU per frame, per process")
    cpu_axis.legend(fontsize=8)
    drop_axis.plot(labels, [p["dropped"] * 100 for p in points], marker="o", label="dropped")
    drop_axis.axhline(5, color="grey", linestyle="--", linewidth=1, label="5 % limit")
    drop_axis.set_xlabel("cameras (720p, 15 fps each)")
    drop_axis.set_ylabel("frames dropped (%)")
    drop_axis.set_title("Drop rate")
    drop_axis.set_ylim(bottom=0)
    drop_axis.legend(fontsize=8)
    if title_note:
        figure.suptitle(title_note, color="red")
    return _save(figure, path)


def age_chart(freshness: dict[str, Any], path: Path, title_note: str = "") -> Path:
    """Frame age against percentile (0..100) at normal load (1x) and at 2x overload."""
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for key, label in (("normal", "1x load"), ("overload", "2x overload")):
        ages = (freshness.get(key) or {}).get("age_percentiles_ms") or []
        shown = [(q, a) for q, a in enumerate(ages) if a is not None]
        if shown:
            axis.plot([q for q, _ in shown], [a for _, a in shown], label=label)
    axis.set_xlabel("percentile of frames")
    axis.set_ylabel("frame age at publish (ms)")
    axis.set_title("Frame age distribution (P4)")
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    if title_note:
        figure.suptitle(title_note, color="red")
    return _save(figure, path)


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    # no timestamp in the file, so the same figures give the same bytes
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    return path
