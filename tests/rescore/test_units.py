"""The re-score mode without a broker: its settings, its plan of offsets, its window."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from kva.cliargs import SettingsError, settings_from_args
from kva.consumer.config import ConsumerSettings
from kva.consumer.rescore.plan import (
    RescoreError,
    new_plan,
    parse_metadata,
    resumed_plan,
)
from kva.consumer.rescore.summary import RescoreSummary
from kva.consumer.rescore.window import OffsetWindow
from kva.kafka import CommittedOffset
from kva.launcher.cli import build_parser
from kva.timerange import TimeRange

MODEL = "--model=m=http://127.0.0.1:1/v1/models/m"
OWN = [
    "--group-id=rescore-1",
    "--output-topic=annotated-1",
    "--metadata-topic=predictions-1",
    "--events-topic=events-1",
]


def _settings(*flags: str) -> ConsumerSettings:
    args = build_parser().parse_args(["consume", MODEL, *flags])
    return settings_from_args(ConsumerSettings, args)


def test_a_rescore_with_its_own_group_and_topics_is_accepted() -> None:
    settings = _settings(
        "--from", "-1h30m", "--to", "-5m", *OWN[:2], "--metadata-topic", "p-1", OWN[3]
    )
    assert settings.rescore and settings.consume_from == "-1h30m" and settings.consume_to == "-5m"
    assert not _settings().rescore


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--from=-5m"], "--group-id is 'kva-consume', the live pipeline's"),
        (["--from=-5m"], "--metadata-topic is 'predictions', the live pipeline's"),
        (["--from=-5m", *OWN[:3]], "--events-topic is 'events', the live pipeline's"),
        (
            ["--from=-5m", *OWN[:3], "--events-topic=frames"],
            "--events-topic is 'frames', the input",
        ),
        (
            ["--from=-5m", *OWN[:2], "--metadata-topic=x", "--events-topic=x"],
            "--events-topic and --metadata-topic are both 'x'",
        ),
        (["--from", "-1m", "--to", "-5m", *OWN], "the range is reversed"),
        (["--from=yesterday", *OWN], "not a time: 'yesterday'"),
        (["--from=-5m", "--passthrough", *OWN], "--passthrough has no models"),
        (["--to=now"], "--to needs --from"),
    ],
)
def test_bad_rescore_settings_are_refused_with_the_reason(flags: list[str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        _settings(*flags)
    assert message in str(refused.value), str(refused.value)


RANGE = TimeRange(1_000, 2_000)


def test_a_new_plan_commits_its_range_with_its_offsets() -> None:
    plan = new_plan("frames", RANGE, {0: (10, 20), 1: (5, 5 + 3)})
    assert plan.total == 13 and plan.remaining == 13 and not plan.resumed
    offsets = plan.offsets({0: 12})
    assert offsets[0] == CommittedOffset(12, "kva-rescore/1 1000 2000 10 20")
    assert offsets[1] == CommittedOffset(5, "kva-rescore/1 1000 2000 5 8")
    assert parse_metadata(offsets[0].metadata) == (1_000, 2_000, 10, 20)


def test_a_resumed_plan_keeps_its_range_and_never_goes_back() -> None:
    committed = {
        0: CommittedOffset(15, "kva-rescore/1 1000 2000 10 20"),
        1: CommittedOffset(8, "kva-rescore/1 1000 2000 5 8"),
    }
    plan = resumed_plan("frames", "g", committed)
    assert plan is not None and plan.resumed and plan.time_range == RANGE
    assert plan.remaining == 5 and not plan.finished
    assert plan.read_from(replay=False) == {0: 15}, "partition 1 is finished"
    assert plan.read_from(replay=True) == {0: 10}, "replay: from the range's start"
    assert plan.offsets({0: 11})[0].offset == 15, "a replayed frame does not move it back"
    assert resumed_plan("frames", "g", {}) is None


@pytest.mark.parametrize(
    ("committed", "message"),
    [
        ({0: CommittedOffset(7, "")}, "no re-score committed (is it a live consumer's group?)"),
        (
            {
                0: CommittedOffset(7, "kva-rescore/1 1000 2000 0 9"),
                1: CommittedOffset(7, "kva-rescore/1 1000 3000 0 9"),
            },
            "offsets of several ranges",
        ),
    ],
)
def test_a_group_that_is_not_one_rescore_is_refused(committed, message: str) -> None:
    with pytest.raises(RescoreError) as refused:
        resumed_plan("frames", "g", committed)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    "text",
    ["", "kva-rescore/1", "kva-rescore/1 2000 1000 0 1", "kva-rescore/1 1 2 5 4", "x 1 2 3 4"],
)
def test_foreign_metadata_is_not_a_range(text: str) -> None:
    assert parse_metadata(text) is None


def _future(value: str | None = None) -> Future[str]:
    future: Future[str] = Future()
    if value is not None:
        future.set_result(value)
    return future


def test_the_window_hands_frames_back_in_offset_order_per_partition() -> None:
    window: OffsetWindow[str] = OffsetWindow(4)
    first, second, other = _future(), _future(), _future()
    window.add(0, 10, first)
    window.add(0, 11, second)
    window.add(1, 3, other)
    assert not window.full() and len(window) == 3
    second.set_result("b")
    assert window.ready() == [], "offset 11 waits for offset 10"
    other.set_result("x")
    assert [(p, o) for p, o, _f in window.ready()] == [(1, 3)]
    first.set_result("a")
    assert [(p, o, f.result()) for p, o, f in window.ready()] == [(0, 10, "a"), (0, 11, "b")]
    assert len(window) == 0
    window.add(0, 12, _future("c"))
    with pytest.raises(ValueError, match="not after 12"):
        window.add(0, 12, _future("d"))


def test_a_full_window_is_full() -> None:
    window: OffsetWindow[str] = OffsetWindow(2)
    window.add(0, 1, _future())
    window.add(0, 2, _future())
    assert window.full()
    window.wait(0.01)  # nothing finished: returns after the timeout
    window.cancel()
    assert len(window) == 0 and not window.full()


def test_the_summary_says_what_was_done() -> None:
    summary = RescoreSummary("frames", str(RANGE), "g", ("", "p", "e"))
    summary.frames, summary.seconds, summary.outcome = 50, 2.0, "done"
    summary.streams.update({"a", "b"})
    summary.skipped.update({"empty": 2, "bad_jpeg": 1})
    text = "\n".join(summary.lines())
    assert "(group g, into p, e): done" in text
    assert "frames processed: 50 (2 stream(s))" in text
    assert "skipped records: 3 (bad_jpeg: 1, empty: 2)" in text
    assert "time: 2.0 s (25.0 frames/s)" in text
