"""kva replay without a broker: the file's timeline, pacing, the progress bar, stream ids,
settings and the command line."""

from __future__ import annotations

import argparse
import io
import re
import threading
from pathlib import Path

import pytest

from kva.cliargs import SettingsError, settings_from_args
from kva.launcher.cli import build_parser
from kva.replay.config import ReplaySettings
from kva.replay.pacing import Pacer
from kva.replay.progress import ProgressBar
from kva.replay.timeline import SlotClock, estimate_fps
from kva.replay.toviewer import replay_stream_id
from kva.settings import KafkaSettings

MS = 1_000_000
PERIOD = 1_000_000_000 // 10  # 10 fps


def placed(
    capture_ms: list[int], fps: float = 10, max_gap_s: float = 5
) -> tuple[list[int], SlotClock]:
    """Copies written of each frame (in order), and the clock."""
    clock = SlotClock(fps, int(max_gap_s * 1e9))
    copies = [clock.add(t * MS) for t in capture_ms][1:] + [clock.finish()]
    return copies, clock


def test_regular_frames_fill_one_slot_each() -> None:
    copies, clock = placed([0, 100, 200, 300])
    assert copies == [1, 1, 1, 1]
    assert (clock.repeated, clock.dropped, clock.gaps_cut) == (0, 0, 0)


def test_jitter_below_half_a_period_changes_nothing() -> None:
    copies, _clock = placed([0, 140, 160, 300, 449])
    assert copies == [1, 1, 1, 1, 1]


def test_a_missing_frame_repeats_the_one_before() -> None:
    copies, clock = placed([0, 100, 400, 500])  # 200 and 300 never came
    assert copies == [1, 3, 1, 1] and clock.repeated == 2


def test_two_frames_in_one_slot_keep_the_later() -> None:
    copies, clock = placed([0, 100, 120, 200])
    assert copies == [1, 0, 1, 1] and clock.dropped == 1


def test_a_long_gap_is_cut_to_one_slot() -> None:
    copies, clock = placed([0, 100, 60_000, 60_100], max_gap_s=5)
    assert copies == [1, 1, 1, 1] and clock.gaps_cut == 1


def test_no_frame_writes_nothing() -> None:
    assert SlotClock(10, 5 * 10**9).finish() == 0


def test_the_rate_is_the_median_gap() -> None:
    assert estimate_fps([i * PERIOD for i in range(16)]) == 10.0
    assert estimate_fps([0, PERIOD, 2 * PERIOD, 9 * PERIOD, 10 * PERIOD]) == 10.0  # a gap
    assert estimate_fps([round(i * 1e9 / 15) for i in range(16)]) == 15.0
    assert estimate_fps([5], fallback=7.0) == 7.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_original_pace_waits_for_the_capture_gaps() -> None:
    clock = FakeClock()
    pacer = Pacer("original", max_gap_s=5, clock=clock)
    assert pacer.delay(0) == 0.0
    assert pacer.delay(100 * MS) == pytest.approx(0.1)
    clock.now += 0.25  # the replay fell behind: no waiting, no catching up in a burst
    assert pacer.delay(200 * MS) == 0.0
    assert pacer.delay(300 * MS) == pytest.approx(0.05)


def test_original_pace_does_not_wait_out_a_long_gap() -> None:
    clock = FakeClock()
    pacer = Pacer("original", max_gap_s=5, clock=clock)
    pacer.delay(0)
    assert pacer.delay(3600 * 1000 * MS) == 0.0 and pacer.gaps_cut == 1


def test_fast_pace_never_waits_and_stops_on_stop() -> None:
    pacer = Pacer("fast", max_gap_s=5)
    assert pacer.delay(0) == pacer.delay(10**12) == 0.0
    stop = threading.Event()
    assert pacer.wait(0, stop)
    stop.set()
    assert not pacer.wait(1, stop)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_redraws_one_line_on_a_terminal() -> None:
    out, clock = Tty(), FakeClock()
    bar = ProgressBar(out, clock=clock)
    bar.update(0, 900, 0)
    clock.now += 1
    bar.update(450, 900, 450)
    clock.now += 1
    bar.update(900, 900, 900, final=True)
    lines = out.getvalue().split("\r")[2:]
    assert lines[0].startswith("[" + "#" * 15 + "." * 15 + "]  50%  450/900 records  450 frames")
    assert lines[1] == "[" + "#" * 30 + "] 100%  900/900 records  900 frames  450 frames/s\n"


def test_the_progress_bar_writes_a_line_a_tenth_elsewhere() -> None:
    out = io.StringIO()
    bar = ProgressBar(out)
    for done in range(0, 1001, 5):
        bar.update(done, 1000, done)
    bar.update(1000, 1000, 1000, final=True)
    assert len(out.getvalue().splitlines()) == 11 and "\r" not in out.getvalue()


def test_a_replay_gets_the_first_free_stream_id() -> None:
    assert replay_stream_id("cam0", set()) == "cam0.replay-1"
    assert replay_stream_id("cam0", {"cam0", "cam0.replay-1", "cam0.replay-2"}) == "cam0.replay-3"
    long = "c" * 128
    assert len(replay_stream_id(long, set())) == 128


def parse(*argv: str) -> ReplaySettings:
    args = build_parser().parse_args(["replay", *argv])
    return settings_from_args(ReplaySettings, args)


def test_relative_times_are_values_not_flags(tmp_path) -> None:
    settings = parse(
        "--stream", "cam0", "--from", "-1h30m", "--to", "-5m", "--to-file", str(tmp_path / "a.mp4")
    )
    assert (settings.replay_from, settings.replay_to) == ("-1h30m", "-5m")
    assert settings.pace == "fast"
    assert parse("--stream", "cam0", "--from", "-90s", "--to-viewer").pace == "original"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "-5m", "--to-viewer"], "--stream / KVA_REPLAY_STREAM: Field required"),
        (["--stream", "cam0", "--to-viewer"], "--from / KVA_REPLAY_FROM: Field required"),
        (["--stream", "cam0", "--from", "-5m"], "choose one output: --to-file PATH, --to-topic TOPIC or --to-viewer"),
        (["--stream", "cam0", "--from", "-5m", "--to-viewer", "--to-topic", "x"], "(got --to-topic, --to-viewer)"),
        (["--stream", "cam 0", "--from", "-5m", "--to-viewer"], "is not a stream id"),
        (["--stream", "cam0", "--from", "-5m", "--to-file", "out.mkv"], "must end in .mp4 or .avi"),
        (["--stream", "cam0", "--from", "-5m", "--to-topic", "frames"], "is the topic the replay reads"),
        (["--stream", "cam0", "--from", "-5m", "--to-topic", "x", "--viewer-stream", "y"], "--viewer-stream names"),
    ],
)  # fmt: skip
def test_bad_arguments_say_what_is_wrong(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse(*argv)
    assert message in str(caught.value)
    assert caught.value.code == 2


README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_has_every_flag_of_kva_replay_and_no_other() -> None:
    """The flags in the "Time travel" section's table are those ``kva replay --help`` lists
    (less the Kafka settings every service shares, which have their own table)."""
    section = README.read_text().split("### `kva replay`")[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("| `--")]
    flags_of_rows = [re.findall(r"`(--[a-z-]+)", line.split("|")[1]) for line in table]
    documented = {flag for row in flags_of_rows for flag in row if not flag.startswith("--no-")}
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = commands.choices["replay"]
    shared = set(KafkaSettings.model_fields)
    flags = {
        option
        for action in parser._actions
        if action.dest not in shared and action.dest != "help"
        for option in action.option_strings
        if not option.startswith("--no-")
    }
    assert documented == flags


class BrokenOutput:
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def write(self, frame: object, record: object) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a bug in an output")

    def close(self) -> str:
        return "closed"


def test_a_frame_an_output_fails_on_is_counted_and_the_replay_goes_on(tmp_path) -> None:
    from kva.frame import Frame, encode_frame
    from kva.kafka import Record
    from kva.replay.service import ReplayService

    service = ReplayService(
        parse("--stream", "cam0", "--from", "-5m", "--to-file", str(tmp_path / "a.avi"))
    )
    key, value, headers = encode_frame(Frame("cam0", 1, 10**18, 2, 2, b"\xff\xd8\xff"))
    record = Record("frames", 0, 7, key, value, list(headers), 10**12)
    output, stop = BrokenOutput(), threading.Event()
    pacer = Pacer("fast", 5)
    assert service._replay(record, output, pacer, stop)  # type: ignore[arg-type]
    assert service._replay(Record("frames", 0, 8, key, b"", list(headers)), output, pacer, stop)  # type: ignore[arg-type]
    assert service._replay(record, output, pacer, stop)  # type: ignore[arg-type]
    assert dict(service.skipped) == {"internal_error": 1, "empty": 1}
    assert service.frames == 1


class LostReader:
    """A range reader whose broker goes away after one record."""

    total_offsets = 10
    done_offsets = 1

    def __init__(self, record: object) -> None:
        self._record = record

    def __iter__(self):  # type: ignore[no-untyped-def]
        from kva.kafka import KafkaUnavailable

        yield self._record
        raise KafkaUnavailable("no record of frames arrived for 30s (1 partition(s) unfinished)")

    def close(self) -> None:
        pass


def test_kafka_lost_mid_replay_is_exit_1_with_the_reason(tmp_path, caplog) -> None:
    from kva.frame import Frame, encode_frame
    from kva.kafka import Record
    from kva.replay.service import ReplayService

    service = ReplayService(
        parse("--stream", "cam0", "--from", "-5m", "--to-file", str(tmp_path / "a.avi"))
    )
    key, value, headers = encode_frame(Frame("cam0", 1, 10**18, 2, 2, b"\xff\xd8\xff"))
    service.reader = LostReader(Record("frames", 0, 7, key, value, list(headers)))  # type: ignore[assignment]
    service.output = BrokenOutput()  # type: ignore[assignment]
    assert service.run(threading.Event()) == 1
    assert "replay interrupted: no record of frames arrived for 30s" in caplog.text
    assert "kept: closed" in caplog.text  # what was written is kept (a file is playable)
