"""kva replay on the real broker: 60 s of testsrc recorded, seconds 20-30 replayed to a file
(frame count and first and last capture times checked against the topic); the topic and
viewer outputs; pacing; bad ranges and streams; corrupt records; bounded memory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from kva.frame import Frame, encode_frame
from kva.kafka import FrameProducer, Record, TopicSpec, apply_topic_config, ensure_topics
from kva.replay.config import ReplaySettings
from kva.replay.service import ReplayService
from kva.settings import KafkaSettings
from kva.timerange import format_ms
from kva.video.config import VideoSettings
from kva.video.service import ViewerService
from testbed.recording import (
    difference,
    image,
    record_testsrc,
    video_frames,
    whole_seconds_ago,
)
from tests.support.frames import jpeg
from tests.support.kafka import Reader, send_frames
from tests.support.process import ROOT, clean_env, run_kva
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

FPS = 15


def iso(ns: int) -> str:
    return format_ms(ns // 1_000_000)


def every_frame(reader: Reader, count: int) -> list[Frame]:
    """The topic's frames as an ordinary consumer reads them (not through the replay)."""
    records = wait_for(
        lambda: reader.snapshot() if reader.count() >= count else None, 60, f"{count} records"
    )
    return [r.frame() for r in records]


def replay(settings: KafkaSettings, **values: object) -> tuple[int, ReplayService]:
    """Run a replay in this process: (exit status, service)."""
    service = ReplayService(
        ReplaySettings(bootstrap_server=settings.bootstrap_server, replay_progress=False, **values)  # type: ignore[arg-type]
    )
    stop = threading.Event()
    try:
        service.start(stop)
        return service.run(stop), service
    finally:
        service.close()


@pytest.fixture(scope="module")
def recorded(kafka_bootstrap: str) -> tuple[str, int]:
    """60 s of a testsrc stream at 15 fps, captured from two minutes ago: (topic, t0 ns)."""
    settings = KafkaSettings(bootstrap_server=kafka_bootstrap)
    topic = f"replay-recorded-{time.monotonic_ns()}"
    ensure_topics(settings, [TopicSpec(topic, partitions=2)])
    t0 = whole_seconds_ago(180)
    assert record_testsrc(settings, topic, t0_ns=t0, fps=FPS, seconds=60) == 900
    return topic, t0


def test_seconds_20_to_30_replay_to_a_file_with_their_frames(
    kafka_settings: KafkaSettings, recorded: tuple[str, int], tmp_path: Path, reader
) -> None:
    topic, t0 = recorded
    start, end = t0 + 20 * 10**9, t0 + 30 * 10**9
    out = tmp_path / "cam0.mp4"
    done = run_kva(
        "replay", "--bootstrap-server", kafka_settings.bootstrap_server, "--frames-topic", topic,
        "--stream", "cam0", "--from", iso(start), "--to", iso(end), "--to-file", str(out),
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    topic_frames = every_frame(reader(topic), 900)
    in_range = [f for f in topic_frames if start <= f.capture_ns < end]
    assert len(in_range) == 150
    first, last = in_range[0], in_range[-1]
    assert (first.capture_ns, last.capture_ns) == (start, t0 + round(449 * 1e9 / FPS))
    assert (
        f"replayed 150 frames of cam0 captured {iso(first.capture_ns)} .. {iso(last.capture_ns)}"
        in done.stderr
    )
    assert "150 frames at 15 fps (0 repeated, 0 dropped" in done.stderr
    assert "100%  " in done.stderr and "/" in done.stderr  # the progress bar
    pictures, fps = video_frames(str(out))
    assert (len(pictures), fps) == (150, 15.0)
    # the file's first and last pictures are those frames: nearer to them than to any neighbour
    by_seq = {f.sequence: f for f in topic_frames}

    def nearest(picture, around: int) -> int:
        return min(
            range(around - 5, around + 6), key=lambda s: difference(picture, image(by_seq[s]))
        )

    assert nearest(pictures[0], first.sequence) == first.sequence == 300
    assert nearest(pictures[-1], last.sequence) == last.sequence == 449


def test_an_avi_at_a_lower_rate_keeps_real_time(
    kafka_settings: KafkaSettings, recorded: tuple[str, int], tmp_path: Path
) -> None:
    topic, t0 = recorded
    out = tmp_path / "cam0.avi"
    status, service = replay(
        kafka_settings, replay_frames_topic=topic, replay_stream="cam0", replay_to_file=out,
        replay_from=iso(t0 + 10 * 10**9), replay_to=iso(t0 + 14 * 10**9), replay_fps=5,
    )  # fmt: skip
    assert status == 0 and service.frames == 60
    pictures, fps = video_frames(str(out))
    # captures 0 .. 3.933 s on a 5 fps clock: slots 0 .. 20 (3.933 s is nearest to 4.0 s), each
    # showing the frame captured nearest its time: two of every three frames dropped
    assert (len(pictures), fps) == (21, 5.0)
    assert service.output is not None


def test_to_a_topic_the_records_are_copied_with_headers_and_times(
    kafka_settings: KafkaSettings, recorded: tuple[str, int], make_topic, reader
) -> None:
    topic, t0 = recorded
    copy = make_topic(partitions=1, suffix="copy")
    status, service = replay(
        kafka_settings, replay_frames_topic=topic, replay_stream="cam0", replay_to_topic=copy,
        replay_from=iso(t0), replay_to=iso(t0 + 2 * 10**9),
    )  # fmt: skip
    assert status == 0 and service.frames == 30
    copied = reader(copy)
    records = wait_for(lambda: copied.snapshot() if copied.count() >= 30 else None, 60, "30 copies")
    originals = [
        r
        for r in every_frame_records(reader(topic), 900)
        if t0 <= r.timestamp_ms * 10**6 < t0 + 2 * 10**9
    ]
    assert [(r.key, r.value, r.headers, r.timestamp_ms) for r in records] == [
        (r.key, r.value, r.headers, r.timestamp_ms) for r in originals
    ]


def every_frame_records(reader: Reader, count: int) -> list[Record]:
    return wait_for(
        lambda: reader.snapshot() if reader.count() >= count else None, 60, f"{count} records"
    )


def test_to_the_viewer_the_replay_is_a_stream_of_its_own(
    kafka_settings: KafkaSettings, recorded: tuple[str, int], make_topic
) -> None:
    topic, t0 = recorded
    annotated = make_topic(partitions=2, suffix="annotated")
    viewer = ViewerService(
        VideoSettings(bootstrap_server=kafka_settings.bootstrap_server, video_topic=annotated,
                      video_metadata_topic="", video_events_topic="", video_port=0)
    )  # fmt: skip
    viewer.start(threading.Event())
    try:
        assert viewer.server is not None
        url = viewer.server.url + "/api/streams"
        for n in (1, 2):  # the second replay gets the next id
            status, service = replay(
                kafka_settings, replay_frames_topic=topic, replay_stream="cam0", replay_to_viewer=True,
                replay_annotated_topic=annotated, replay_pace="fast",
                replay_from=iso(t0 + 5 * 10**9), replay_to=iso(t0 + 6 * 10**9),
            )  # fmt: skip
            assert status == 0 and service.frames == 15

            def shown(n: int = n) -> dict | None:
                streams = {s["id"]: s for s in requests.get(url, timeout=5).json()["streams"]}
                return streams.get(f"cam0.replay-{n}")

            stream = wait_for(shown, 30, f"cam0.replay-{n} in the viewer")
            assert (stream["width"], stream["height"]) == (640, 480)
            assert stream["age_seconds"] > 100  # the original capture times: minutes ago
    finally:
        viewer.close()


def test_original_pace_takes_the_range_s_time_and_fast_does_not(
    kafka_settings: KafkaSettings, recorded: tuple[str, int], make_topic
) -> None:
    topic, t0 = recorded
    timings = {}
    for pace in ("original", "fast"):
        began = time.monotonic()
        status, service = replay(
            kafka_settings, replay_frames_topic=topic, replay_stream="cam0", replay_pace=pace,
            replay_to_topic=make_topic(suffix=pace),
            replay_from=iso(t0 + 40 * 10**9), replay_to=iso(t0 + 43 * 10**9),
        )  # fmt: skip
        assert status == 0 and service.frames == 45
        timings[pace] = time.monotonic() - began
    assert timings["original"] >= 44 / FPS  # the last frame leaves 44 periods after the first
    assert timings["fast"] < timings["original"]


def run_replay(settings: KafkaSettings, *args: str):  # type: ignore[no-untyped-def]
    return run_kva("replay", "--bootstrap-server", settings.bootstrap_server, *args, timeout=120)


def test_a_range_the_topic_no_longer_holds_says_what_it_holds(
    kafka_settings: KafkaSettings, recorded: tuple[str, int]
) -> None:
    topic, t0 = recorded
    done = run_replay(kafka_settings, "--frames-topic", topic, "--stream", "cam0",
                      "--from", "-10h", "--to", "-9h", "--to-viewer")  # fmt: skip
    assert done.returncode == 2
    assert f"topic {topic} holds {iso(t0)} .. " in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("-1m", "-2m", "the range is reversed: it ends"),
        ("-1m", "-1m", "the range is empty"),
        ("yesterday", "now", "not a time: 'yesterday'"),
    ],
)
def test_reversed_empty_or_unreadable_ranges_are_refused(
    kafka_settings: KafkaSettings, recorded: tuple[str, int], start: str, end: str, message: str
) -> None:
    topic, _t0 = recorded
    done = run_replay(kafka_settings, "--frames-topic", topic, "--stream", "cam0",
                      f"--from={start}", f"--to={end}", "--to-viewer")  # fmt: skip
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_stream_is_told_the_streams_there_are(
    kafka_settings: KafkaSettings, recorded: tuple[str, int]
) -> None:
    topic, t0 = recorded
    done = run_replay(kafka_settings, "--frames-topic", topic, "--stream", "cam9",
                      "--from", iso(t0), "--to", iso(t0 + 10**9), "--to-viewer", "--no-progress")  # fmt: skip
    assert done.returncode == 2
    assert "no stream cam9 in " in done.stderr and "streams there: cam0 (newest " in done.stderr
    assert "Traceback" not in done.stderr


def test_kafka_unreachable_is_exit_1_in_one_line() -> None:
    done = run_kva("replay", "--bootstrap-server", "127.0.0.1:1", "--broker-timeout", "2",
                   "--stream", "cam0", "--from", "-5m", "--to-viewer")  # fmt: skip
    assert done.returncode == 1
    assert "cannot reach Kafka at 127.0.0.1:1" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_corrupt_records_are_counted_and_the_replay_goes_on(
    kafka_settings: KafkaSettings, make_topic, tmp_path: Path
) -> None:
    topic = make_topic(partitions=1)
    t0 = whole_seconds_ago(30)
    picture = jpeg(320, 240)

    def frame(seq: int, data: bytes = picture) -> Frame:
        return Frame("cam0", seq, t0 + seq * 100_000_000, 320, 240, data)

    send_frames(kafka_settings, topic, *(frame(s) for s in range(5)))
    bad = [frame(5, b"not a jpeg at all"), frame(6, picture[: len(picture) // 2])]
    send_frames(kafka_settings, topic, *bad, *(frame(s) for s in range(7, 10)))
    key, value, headers = encode_frame(frame(10))
    producer = FrameProducer(kafka_settings)
    broken = [(n, b"x" if n == "kva-seq" else v) for n, v in headers]
    producer.send(topic, key, value, broken, timestamp_ms=t0 // 10**6 + 1000)  # bad_header
    producer.send(topic, key, None, headers, timestamp_ms=t0 // 10**6 + 1050)  # empty
    assert producer.flush(10) == 0
    send_frames(kafka_settings, topic, frame(11))
    status, service = replay(
        kafka_settings, replay_frames_topic=topic, replay_stream="cam0", replay_fps=10,
        replay_to_file=tmp_path / "out.avi", replay_from=iso(t0), replay_to=iso(t0 + 2 * 10**9),
    )  # fmt: skip
    assert status == 0
    assert service.frames == 9  # 0-4, 7-9, 11
    assert dict(service.skipped) == {"bad_image": 2, "bad_header": 1, "empty": 1}
    pictures, _fps = video_frames(str(tmp_path / "out.avi"))
    assert len(pictures) == 12  # 0..11 at 10 fps: the frames skipped are repeats of the one before


def peak_rss_mib(settings: KafkaSettings, topic: str, start: int, end: int, out: Path) -> float:
    """Peak resident memory (MiB) of one ``kva replay`` process, as the kernel counted it."""
    argv = [
        sys.executable, "-m", "kva", "replay", "--bootstrap-server", settings.bootstrap_server,
        "--frames-topic", topic, "--stream", "cam0", "--from", iso(start), "--to", iso(end),
        "--to-file", str(out), "--no-progress",
    ]  # fmt: skip
    with (out.parent / f"{out.name}.log").open("w+") as log:
        child = subprocess.Popen(argv, cwd=ROOT, env=clean_env(), stdout=log, stderr=log)  # noqa: S603
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        assert child.returncode == 0, log.read()
    return usage.ru_maxrss / 1024


@pytest.mark.slow
def test_memory_stays_bounded_whatever_the_range(
    kafka_settings: KafkaSettings, make_topic, tmp_path: Path
) -> None:
    """A 500 MB range costs the replay about what a 6 MB one does (measured: 196 vs 162 MiB
    peak RSS): records come one at a time."""
    topic = make_topic(partitions=1)
    rng = np.random.default_rng(18)
    noise = [  # JPEGs of noise hardly compress: ~350 KB each
        cv2.imencode(".jpg", rng.integers(0, 255, (480, 640, 3), np.uint8))[1].tobytes()
        for _ in range(8)
    ]
    t0, period = whole_seconds_ago(600), 10**9 // 10
    frames = [Frame("cam0", s, t0 + s * period, 640, 480, noise[s % 8]) for s in range(1500)]
    for batch in range(0, len(frames), 100):
        send_frames(kafka_settings, topic, *frames[batch : batch + 100])
    total = sum(len(f.data) for f in frames) / 2**20
    assert total > 400
    try:
        short = peak_rss_mib(kafka_settings, topic, t0, t0 + 4 * 10**9, tmp_path / "short.avi")
        long = peak_rss_mib(kafka_settings, topic, t0, t0 + 150 * 10**9, tmp_path / "long.avi")
    finally:  # give the broker's disk back (the closed segments go at its next retention check)
        apply_topic_config(kafka_settings, topic, {"retention.ms": "1"})
    assert len(video_frames(str(tmp_path / "long.avi"))[0]) == 1500
    # librdkafka's fetch queue (32 MiB) fills in the long replay only: well under the range
    assert long - short < 64, (
        f"peak RSS {short:.0f} MiB (6 MB range) vs {long:.0f} MiB ({total:.0f} MB)"
    )


def test_what_kva_produce_recorded_replays_frame_for_frame(
    kafka_settings: KafkaSettings, make_topic, reader, start_kva, tmp_path: Path
) -> None:
    """The real ``kva produce --source testsrc`` (wall-clock capture times, real jitter): the
    file holds every frame of the range, plus the repeats and less the drops it reports."""
    topic = make_topic(partitions=1)
    frames_seen = reader(topic)
    producer = start_kva(
        "produce", "--bootstrap-server", kafka_settings.bootstrap_server, "--topic", topic,
        "--source", "gate=testsrc", "--fps", "15", "--width", "320", "--metrics-port", "0",
    )  # fmt: skip
    try:
        records = every_frame_records(frames_seen, 60)
    finally:
        producer.send_signal(signal.SIGTERM)
        assert producer.wait(timeout=30) == 0, producer.tail()
    frames = [r.frame() for r in frames_seen.snapshot()]
    first, last = frames[0], frames[-1]
    assert len(records) >= 60
    out = tmp_path / "gate.mp4"
    done = run_replay(kafka_settings, "--frames-topic", topic, "--stream", "gate", "--fps", "15",
                      "--from", iso(first.capture_ns), "--to", iso(last.capture_ns + 10**6),
                      "--to-file", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = re.search(r"(\d+) frames at 15 fps \((\d+) repeated, (\d+) dropped", done.stderr)
    assert summary is not None, done.stderr
    written, repeated, dropped = (int(n) for n in summary.groups())
    assert f"replayed {len(frames)} frames of gate captured {iso(first.capture_ns)}" in done.stderr
    assert written == len(frames) + repeated - dropped
    assert len(video_frames(str(out))[0]) == written
    # the file lasts what the recording lasted, to the frame
    assert abs(written - ((last.capture_ns - first.capture_ns) * FPS / 1e9 + 1)) <= 1
