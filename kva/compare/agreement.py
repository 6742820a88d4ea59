"""Agreement of two runs' models on the same frames, and each run's latency.

- **classifier**: the share of frames whose top-1 labels are equal.
- **detector**: boxes of A and B matched one to one (greedily, the best overlap first)
  when their IoU is at least the threshold; ``recall`` is the share of A's boxes
  matched (A is the reference), ``precision`` the share of B's; and the mean
  difference in box counts per frame (B - A, and its absolute value).
- **latency**: each model's ``latency_ms`` over every document of a run with status
  ``ok`` (joined or not), as p50 and p95, from a log-scale histogram (1 % wide
  buckets) so memory stays bounded however many frames there are.

A frame where either model did not answer ``ok`` is counted apart (``not_ok``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from kva.predictions import Classification, Detections, FramePredictions, ModelResult

Box = tuple[float, float, float, float]
#: Latency histogram: bucket i holds latencies around ``_BASE ** i`` milliseconds.
_BASE = 1.01


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``[x_min, y_min, x_max, y_max]`` boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matched_boxes(boxes_a: Sequence[Box], boxes_b: Sequence[Box], threshold: float) -> int:
    """How many boxes of A and B pair up one to one at IoU >= ``threshold`` (best first)."""
    candidates = sorted(
        (
            (overlap, i, j)
            for i, a in enumerate(boxes_a)
            for j, b in enumerate(boxes_b)
            if (overlap := iou(a, b)) >= threshold
        ),
        reverse=True,
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    for _overlap, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
    return len(used_a)


@dataclass
class Latency:
    """A bounded histogram of latencies (ms): per 1 % wide bucket, a count and a sum."""

    buckets: Counter[int] = field(default_factory=Counter)
    sums: dict[int, float] = field(default_factory=dict)
    count: int = 0

    def add(self, ms: float) -> None:
        bucket = round(math.log(max(ms, 0.001), _BASE))
        self.buckets[bucket] += 1
        self.sums[bucket] = self.sums.get(bucket, 0.0) + ms
        self.count += 1

    def percentile(self, share: float) -> float:
        """The latency below which ``share`` of the answers lie (the mean of its bucket;
        0 when there are none)."""
        if not self.count:
            return 0.0
        rank, seen = share * self.count, 0
        ordered = sorted(self.buckets)
        for bucket in ordered:
            seen += self.buckets[bucket]
            if seen >= rank:
                break
        return self.sums[bucket] / self.buckets[bucket]


@dataclass
class RunStats:
    """What one run's documents say on their own: models, kinds and latencies."""

    latency: dict[str, Latency] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)

    def tap(self, documents: Iterable[FramePredictions]) -> Iterator[FramePredictions]:
        """``documents`` unchanged, each one counted on its way."""
        for document in documents:
            for result in document.models:
                latency = self.latency.setdefault(result.model, Latency())
                if result.status == "ok":
                    latency.add(result.latency_s * 1000)
                if result.prediction is not None:
                    self.kinds[result.model] = result.prediction.kind
            yield document


@dataclass
class PairAgreement:
    """How model ``model_a`` of run A and ``model_b`` of run B agree on the joined frames."""

    model_a: str
    model_b: str
    kind: str = ""
    frames: int = 0
    not_ok: int = 0
    kinds_differ: int = 0
    top1_agree: int = 0
    boxes_a: int = 0
    boxes_b: int = 0
    matched: int = 0
    count_diff: int = 0
    abs_count_diff: int = 0

    def add(self, a: ModelResult | None, b: ModelResult | None, threshold: float) -> None:
        """One joined frame's answers (None: the model is not in that document)."""
        if a is None or b is None or a.status != "ok" or b.status != "ok":
            self.not_ok += 1
            return
        pa, pb = a.prediction, b.prediction
        if isinstance(pa, Classification) and isinstance(pb, Classification):
            self.kind = "classifier"
            self.frames += 1
            self.top1_agree += bool(pa.labels[:1]) and pa.labels[:1] == pb.labels[:1]
        elif isinstance(pa, Detections) and isinstance(pb, Detections):
            self.kind = "detector"
            self.frames += 1
            self.boxes_a += len(pa.boxes)
            self.boxes_b += len(pb.boxes)
            self.matched += matched_boxes(pa.boxes, pb.boxes, threshold)
            self.count_diff += len(pb.boxes) - len(pa.boxes)
            self.abs_count_diff += abs(len(pb.boxes) - len(pa.boxes))
        else:
            self.kinds_differ += 1


@dataclass
class Comparison:
    """The agreement of every model pair over the joined frames."""

    threshold: float
    explicit: Mapping[str, str]
    pairs: dict[tuple[str, str], PairAgreement] = field(default_factory=dict)

    def add(self, a: FramePredictions, b: FramePredictions) -> None:
        """One frame both runs have."""
        results_a = {r.model: r for r in a.models}
        results_b = {r.model: r for r in b.models}
        for name_a, name_b in self.explicit.items():
            self._pair(name_a, name_b).add(
                results_a.get(name_a), results_b.get(name_b), self.threshold
            )
        partnered = set(self.explicit.values())
        for name, result in results_a.items():
            if name in self.explicit or name in partnered or name not in results_b:
                continue
            self._pair(name, name).add(result, results_b[name], self.threshold)

    def _pair(self, name_a: str, name_b: str) -> PairAgreement:
        key = (name_a, name_b)
        if key not in self.pairs:
            self.pairs[key] = PairAgreement(name_a, name_b)
        return self.pairs[key]
