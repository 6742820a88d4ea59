"""Documents of two runs paired by the frame they are about.

A frame is the same in both runs when its stream, sequence number and capture time
are (:data:`FrameKey`). Run A's documents are held (at most ``max_frames``), run B's
streamed past them; a frame seen twice in a run (an at-least-once writer's duplicate)
counts once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kva.predictions import FramePredictions

FrameKey = tuple[str, int, int]


class CompareError(ValueError):
    """The two runs cannot be compared as asked; the message says why."""


def frame_key(document: FramePredictions) -> FrameKey:
    return (document.stream, document.seq, document.capture_ns)


@dataclass
class JoinCounts:
    """How the frames of the two runs met."""

    only_a: int = 0
    only_b: int = 0
    both: int = 0
    duplicates: int = 0


def join(
    run_a: Iterable[FramePredictions],
    run_b: Iterable[FramePredictions],
    counts: JoinCounts,
    *,
    max_frames: int,
) -> Iterator[tuple[FramePredictions, FramePredictions]]:
    """``(document of A, document of B)`` for every frame both runs have.

    ``counts`` is filled in as the pairs go by (complete once the iterator is exhausted).

    Raises:
        CompareError: run A holds more than ``max_frames`` frames.
    """
    held: dict[FrameKey, FramePredictions] = {}
    for document in run_a:
        key = frame_key(document)
        if key in held:
            counts.duplicates += 1
        elif len(held) >= max_frames:
            raise CompareError(
                f"run A holds more than {max_frames} frames: narrow the range with "
                "--from/--to (or --stream), or raise --max-frames"
            )
        held[key] = document
    matched: set[FrameKey] = set()
    for document in run_b:
        key = frame_key(document)
        if key in matched:
            counts.duplicates += 1
            continue
        mate = held.get(key)
        if mate is None:
            counts.only_b += 1
            continue
        matched.add(key)
        counts.both += 1
        yield mate, document
    counts.only_a = len(held) - len(matched)
