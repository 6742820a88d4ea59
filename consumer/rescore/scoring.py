"""One frame through every model, waiting for them instead of dropping the frame.

The live pipeline drops a frame no replica took in time (``overload``) and passes
one whose models are all down. A re-score must give the same outputs for the same
input, so a frame is retried, model by model, with back-off, until every model
answered ``ok``; the replicas' probes bring ejected replicas back meanwhile. A frame
still without every answer after ``--model-wait`` seconds stops the re-score
(:class:`ModelsGaveUp`): nothing of its transaction is committed, and running it
again resumes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kva.consumer.models import ModelRuntime
from kva.consumer.work import Dropped, EncodeError, FrameWork
from kva.frame import Frame
from kva.predictions import ModelResult

#: First and longest pause (seconds) before a frame's failed models are asked again.
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 2.0


class ModelsGaveUp(RuntimeError):
    """A frame's models did not all answer within ``--model-wait``."""


class ScoringStopped(RuntimeError):
    """The re-score is stopping: the frame was left unfinished."""


@dataclass(frozen=True, slots=True)
class Scored:
    """A frame with every model's ``ok`` result (in model order) and, when it is to be
    annotated, its decoded image."""

    frame: Frame
    results: list[ModelResult]
    image: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record that makes no output: why (a summary's reason) and what to log."""

    reason: str
    detail: str


class Scorer:
    """Scores frames (thread-safe: one call per worker thread)."""

    def __init__(
        self,
        work: FrameWork,
        models: Sequence[ModelRuntime],
        *,
        wait_s: float,
        stop: threading.Event,
        keep_image: bool,
    ) -> None:
        self.work = work
        self.models = list(models)
        self.wait_s = wait_s
        self.stop = stop
        self.keep_image = keep_image

    def score(self, frame: Frame) -> Scored | Skipped:
        """Every model's ``ok`` result on ``frame``, or why the frame cannot be scored.

        Raises:
            ModelsGaveUp: some model did not answer ``ok`` within ``wait_s``.
            ScoringStopped: the re-score is stopping.
        """
        image = self.work.decode(frame)
        if isinstance(image, Dropped):
            return Skipped("bad_jpeg", image.detail)
        answers: dict[str, ModelResult] = {}
        failures: dict[str, str] = {}
        deadline = time.monotonic() + self.wait_s
        backoff = FIRST_BACKOFF
        while True:
            missing = [m for m in self.models if m.name not in answers]
            try:
                results = self.work.run_models(image, missing)
            except EncodeError as exc:
                return Skipped("encode_error", f"{frame.stream_id}: {exc}")
            for result in results:
                if result.status == "ok":
                    answers[result.model] = result
                else:
                    failures[result.model] = f"{result.status}: {result.error or ''}".strip()
            if len(answers) == len(self.models):
                ordered = [answers[m.name] for m in self.models]
                return Scored(frame, ordered, image if self.keep_image else None)
            if time.monotonic() >= deadline:
                why = "; ".join(f"{m}: {failures[m]}" for m in failures if m not in answers)
                raise ModelsGaveUp(
                    f"{frame.stream_id} #{frame.sequence}: no answer from every model within "
                    f"{self.wait_s:g}s ({why})"
                )
            if self.stop.wait(backoff):
                raise ScoringStopped(f"{frame.stream_id} #{frame.sequence}")
            backoff = min(MAX_BACKOFF, backoff * 2)
