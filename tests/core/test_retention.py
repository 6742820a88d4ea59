"""Retention settings: durations and sizes as people type them, the topic configs they set."""

from __future__ import annotations

import pytest

from kva import retention
from kva.cliargs import SettingsError, settings_from_args
from kva.producer.config import ProducerSettings
from kva.retention import (
    Retention,
    format_duration,
    format_size,
    parse_duration_ms,
    parse_size_bytes,
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("3600000", 3_600_000), ("-1", -1), ("90s", 90_000), ("1h30m", 5_400_000), ("7d", 604_800_000),
     (" 45m ", 2_700_000), ("500ms", 500), (3600, 3600)],
)  # fmt: skip
def test_durations(text: object, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize(
    ("text", "size"),
    [("1073741824", retention.GIB), ("-1", -1), ("512MiB", 512 * retention.MIB), ("1GiB", retention.GIB),
     ("2GB", 2_000_000_000), ("1.5 GiB", 3 * retention.GIB // 2), ("10kb", 10_000)],
)  # fmt: skip
def test_sizes(text: str, size: int) -> None:
    assert parse_size_bytes(text) == size


@pytest.mark.parametrize("text", ["1x", "h", "", "1h-", "ten minutes"])
def test_a_bad_duration_says_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration.*90s.*milliseconds"):
        parse_duration_ms(text)


@pytest.mark.parametrize("text", ["1 XB", "GiB", "-2GiB", "lots"])
def test_a_bad_size_says_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="not a size.*512MiB"):
        parse_size_bytes(text)


def test_formats_for_people() -> None:
    assert [format_duration(v) for v in (3_600_000, 5_400_000, 604_800_000, 1500, -1)] == [
        "1h", "1h30m", "7d", "1s500ms", "unlimited",
    ]  # fmt: skip
    assert [format_size(v) for v in (retention.GIB, 512 * retention.MIB, 1000, -1)] == [
        "1GiB", "512MiB", "1000B", "unlimited",
    ]  # fmt: skip


def test_segments_follow_the_retention() -> None:
    """Kafka deletes whole segments: they roll often enough to keep the retention within 1/12."""
    assert retention.FRAMES.topic_config() == {
        "retention.ms": "3600000",
        "retention.bytes": str(retention.GIB),
        "segment.ms": "300000",
        "segment.bytes": str(64 * retention.MIB),
    }
    short = Retention(2 * retention.MINUTE_MS, 10 * retention.MIB).topic_config()
    assert (short["segment.ms"], short["segment.bytes"]) == ("60000", str(retention.MIB))
    forever = Retention(-1, -1).topic_config()
    assert (forever["segment.ms"], forever["segment.bytes"]) == ("3600000", str(64 * retention.MIB))


def test_a_setting_takes_words_and_refuses_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVA_PRODUCE_RETENTION_MS", "2h")
    monkeypatch.setenv("KVA_PRODUCE_RETENTION_BYTES", "512MiB")
    assert ProducerSettings().frames_retention() == Retention(7_200_000, 512 * retention.MIB)
    monkeypatch.setenv("KVA_PRODUCE_RETENTION_MS", "-5")
    import argparse

    with pytest.raises(SettingsError, match="--retention-ms / KVA_PRODUCE_RETENTION_MS"):
        settings_from_args(ProducerSettings, argparse.Namespace())
