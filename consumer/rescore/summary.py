"""What a re-score did, counted as it goes and told at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RescoreSummary:
    """The counts of one re-score run (this process; a resumed run counts its own part)."""

    topic: str
    range_text: str
    group: str
    outputs: tuple[str, ...]
    #: offsets of the range not done when this run started
    remaining: int = 0
    #: frames scored and published by this run
    frames: int = 0
    #: frames scored again only to rebuild the trackers (a resumed run, see ``replay``)
    replayed: int = 0
    #: records of the range this run published nothing for, by reason
    skipped: Counter[str] = field(default_factory=Counter)
    events: int = 0
    streams: set[str] = field(default_factory=set)
    seconds: float = 0.0
    resumed: bool = False
    #: "done", "interrupted" (a stop signal) or "failed"
    outcome: str = "failed"

    @property
    def handled(self) -> int:
        """Records of the range this run got through (published or skipped)."""
        return self.frames + sum(self.skipped.values())

    def lines(self) -> list[str]:
        """The summary for a person, one fact a line."""
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(self.skipped.items()))
        head = (
            f"re-score of {self.topic} {self.range_text} (group {self.group}, into "
            f"{', '.join(o for o in self.outputs if o) or 'no topic'}): {self.outcome}"
        )
        lines = [
            head,
            f"  frames processed: {self.frames} ({len(self.streams)} stream(s)), "
            f"events: {self.events}",
            f"  skipped records: {skipped}" + (f" ({reasons})" if reasons else ""),
        ]
        if self.resumed:
            lines.append(
                f"  resumed: {self.remaining} offset(s) were left; {self.replayed} frame(s) "
                "scored again to rebuild the tracks"
            )
        lines.append(f"  time: {self.seconds:.1f} s ({rate:.1f} frames/s)")
        return lines
