"""The stream-density figures, from what one run saw: pure functions, no broker.

``window_figures`` turns the predictions documents of one window and the CPU seconds of
each process into one point of the curve; ``curve_summary`` finds the largest camera
count sustained and whether CPU per frame stays flat across the points.
"""

from __future__ import annotations

from collections import defaultdict

from stats import percentile

#: A camera count is sustained below this fraction of frames dropped ...
MAX_DROPPED = 0.05
#: ... and with the 99th percentile of frame age below this (ms).
MAX_P99_MS = 500.0
#: CPU per frame is flat when every point is within this fraction of the first.
FLAT_WITHIN = 0.10
#: Processes whose CPU counts per frame produced; the others per frame delivered.
PER_PRODUCED = ("producer", "broker")


def produced(docs: list[dict]) -> int:
    """Frames the cameras sent in the window, from each stream's sequence numbers seen."""
    seqs: dict[str, list[int]] = defaultdict(list)
    for doc in docs:
        seqs[str(doc["stream"])].append(int(doc["seq"]))
    return sum(max(s) - min(s) + 1 for s in seqs.values())


def window_figures(
    docs: list[dict], cameras: int, fps: float, seconds: float, cpu: dict[str, float]
) -> dict:
    """One point: drops, frame age and CPU ms per frame of each process.

    Args:
        docs: the predictions documents published in the window.
        cameras: how many cameras ran.
        fps: each camera's rate.
        seconds: the window's length.
        cpu: CPU seconds of each process in the window.
    """
    expected = cameras * fps * seconds
    sent = produced(docs)
    ages = [float(d["age_ms"]) for d in docs]
    per_frame = {
        name: used * 1000 / max(sent if name in PER_PRODUCED else len(docs), 1)
        for name, used in cpu.items()
    }
    pipeline = {n: ms for n, ms in per_frame.items() if not n.startswith("bench")}
    return {
        "cameras": cameras,
        "seconds": seconds,
        "frames_expected": expected,
        "frames_produced": sent,
        "frames_delivered": len(docs),
        "fps_in": sent / seconds,
        "fps_out": len(docs) / seconds,
        "dropped": max(0.0, 1 - len(docs) / expected) if expected else 0.0,
        "producer_shortfall": max(0.0, 1 - sent / expected) if expected else 0.0,
        "age_p50_ms": percentile(ages, 0.5),
        "age_p99_ms": percentile(ages, 0.99),
        "cpu_ms_per_frame": per_frame,
        "cpu_ms_total": sum(pipeline.values()),
    }


def sustained(point: dict) -> bool:
    """Whether the point keeps drops and frame age within the limits."""
    p99 = point["age_p99_ms"]
    return bool(point["frames_delivered"]) and point["dropped"] < MAX_DROPPED and p99 < MAX_P99_MS


def curve_summary(points: list[dict]) -> dict:
    """The largest sustained camera count (0: none) and the flatness of CPU per frame:
    the largest relative deviation of any point's total from the first point's."""
    best = max((p["cameras"] for p in points if sustained(p)), default=0)
    measured = [p for p in points if p["frames_delivered"]]
    deviations = {}
    if measured:
        first = measured[0]["cpu_ms_total"]
        deviations = {p["cameras"]: p["cpu_ms_total"] / first - 1 for p in measured}
    worst = max(deviations.values(), key=abs, default=0.0)
    return {
        "max_sustained_cameras": best,
        "deviation_by_cameras": {str(k): v for k, v in deviations.items()},
        "max_deviation": worst,
        "flat": len(deviations) > 1 and abs(worst) <= FLAT_WITHIN,
    }


def cameras_per_core(points: list[dict], fps: float) -> dict[str, float]:
    """Cameras at ``fps`` one core of each process serves, at its CPU per frame of the
    largest sustained point (the first point when none is): the capacity model's input."""
    chosen = [p for p in points if sustained(p)] or points[:1]
    if not chosen:
        return {}
    per_frame = chosen[-1]["cpu_ms_per_frame"]
    return {
        name: 1000 / (fps * ms)
        for name, ms in per_frame.items()
        if ms > 0 and not name.startswith("bench")
    }
