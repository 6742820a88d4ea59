"""Settings of ``kva compare``: the two predictions topics, which models pair up, the range."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from kva.settings import KafkaSettings, split_list

ListSetting = Annotated[list[str], NoDecode, BeforeValidator(split_list)]


def parse_pair(text: str) -> tuple[str, str]:
    """``A_MODEL=B_MODEL`` -> (a, b); ValueError with the reason."""
    a, sep, b = text.partition("=")
    if not sep or not a.strip() or not b.strip():
        raise ValueError(f"{text!r} is not A_MODEL=B_MODEL")
    return a.strip(), b.strip()


class CompareSettings(KafkaSettings):
    """Everything ``kva compare`` can be told (flags or ``KVA_COMPARE_*`` variables)."""

    command: ClassVar[str] = "compare"

    compare_a: str = Field(
        "predictions",
        min_length=1,
        description="predictions topic of run A, the reference (e.g. the live run's)",
        json_schema_extra={"flag": "--a", "metavar": "TOPIC"},
    )
    compare_b: str | None = Field(
        None,
        description="predictions topic of run B (e.g. a re-score's --metadata-topic); required",
        json_schema_extra={"flag": "--b", "metavar": "TOPIC"},
    )
    compare_pairs: ListSetting = Field(
        default_factory=list,
        description="A_MODEL=B_MODEL: compare model A_MODEL of run A with B_MODEL of run B "
        "(repeatable); models of the same name pair up by themselves",
        json_schema_extra={"flag": "--pair", "metavar": "A_MODEL=B_MODEL"},
    )
    compare_from: str | None = Field(
        None,
        description="only frames captured from this time on (now, -5m, ISO 8601, epoch ms); "
        "default: all the topics hold",
        json_schema_extra={"flag": "--from", "metavar": "TIME"},
    )
    compare_to: str | None = Field(
        None,
        description="only frames captured before this time (default: all the topics hold)",
        json_schema_extra={"flag": "--to", "metavar": "TIME"},
    )
    compare_stream: str | None = Field(
        None,
        description="only this stream (default: every stream)",
        json_schema_extra={"flag": "--stream", "metavar": "ID"},
    )
    compare_iou: float = Field(
        0.5,
        gt=0,
        le=1,
        description="least IoU for a box of A and a box of B to be the same object",
        json_schema_extra={"flag": "--iou", "metavar": "IOU"},
    )
    compare_max_frames: int = Field(
        200_000,
        ge=1,
        description="most frames of run A held while joining (bounds memory; narrow the range "
        "with --from/--to for more)",
        json_schema_extra={"flag": "--max-frames", "metavar": "N"},
    )

    @field_validator("compare_pairs")
    @classmethod
    def _check_pairs(cls, value: list[str]) -> list[str]:
        pairs = [parse_pair(item) for item in value]
        if len({a for a, _b in pairs}) != len(pairs) or len({b for _a, b in pairs}) != len(pairs):
            raise ValueError("a model is paired twice")
        return value

    @model_validator(mode="after")
    def _check_topics(self) -> CompareSettings:
        if not self.compare_b:
            raise ValueError("--b TOPIC is required: the predictions topic of the second run")
        if self.compare_b == self.compare_a and not self.compare_pairs:
            raise ValueError(f"--a and --b are both {self.compare_a!r}: compare two runs")
        return self

    def pairs(self) -> dict[str, str]:
        """Model of A -> model of B, from ``--pair``."""
        return dict(parse_pair(item) for item in self.compare_pairs)
