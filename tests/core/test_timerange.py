"""Time ranges a person types: relative, ISO, epoch ms; reversed and empty ranges refused."""

from __future__ import annotations

from datetime import datetime

import pytest

from kva.timerange import TimeRange, TimeRangeError, format_ms, parse_instant

NOW = 1_765_108_800_000  # 2025-12-07T12:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-5m", NOW - 300_000),
        ("-90s", NOW - 90_000),
        ("-1h30m", NOW - 5_400_000),
        ("-2d", NOW - 2 * 86_400_000),
        ("-500ms", NOW - 500),
        ("  -1m  ", NOW - 60_000),
        ("2025-12-07T12:00:00Z", NOW),
        ("2025-12-07T12:00:00.250z", NOW + 250),
        ("2025-12-07T13:00:00+01:00", NOW),
        ("1765108800123", NOW + 123),
    ],
)
def test_instants(text: str, expected: int) -> None:
    assert parse_instant(text, NOW) == expected


def test_a_naive_iso_time_is_local_time() -> None:
    local = datetime(2025, 12, 7, 9, 30).astimezone()
    assert parse_instant("2025-12-07T09:30:00", NOW) == int(local.timestamp() * 1000)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "-5x", "5m", "--5m", "-m", "12", "2025-13-01", "x" * 100, "-1e9s"]
)
def test_what_is_not_a_time_says_what_is(text: str) -> None:
    with pytest.raises(TimeRangeError, match="not a time"):
        parse_instant(text, NOW)


def test_a_range_defaults_to_now_and_knows_its_length() -> None:
    span = TimeRange.parse("-30s", now_ms=NOW)
    assert (span.start_ms, span.end_ms, span.duration_s) == (NOW - 30_000, NOW, 30.0)
    assert span.contains(NOW - 30_000) and not span.contains(NOW)
    assert str(span) == "2025-12-07T11:59:30.000Z .. 2025-12-07T12:00:00.000Z"


def test_reversed_and_empty_ranges_are_refused_with_their_times() -> None:
    with pytest.raises(TimeRangeError, match=r"reversed: it ends \(2025-12-07T11:55:00.000Z\)"):
        TimeRange.parse("-1m", "-5m", now_ms=NOW)
    with pytest.raises(TimeRangeError, match="empty"):
        TimeRange.parse("now", "now", now_ms=NOW)


def test_format_ms_is_utc_to_the_millisecond() -> None:
    assert format_ms(NOW + 7) == "2025-12-07T12:00:00.007Z"
