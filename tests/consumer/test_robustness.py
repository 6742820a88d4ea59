"""Load balancing, latest-frame behaviour and every bad input, on the real broker."""

from __future__ import annotations

import time

import pytest

from kva.frame import encode_frame
from tests.consumer.conftest import consumer_settings, metadata_docs, metric, running_consumer
from tests.support.frames import jpeg, make_frame
from tests.support.kafka import Feeder, send, send_frames
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

PREDICT = "POST /v1/models/mobilenet_v2:predict"


def _dropped(service, reason: str, stream: str = "cam0") -> float:
    return metric(service, "kva_consume_frames_dropped_total", {"stream": stream, "reason": reason})


def test_two_replicas_share_then_one_dies_and_returns(
    kafka_settings, topics, unique_name, model_servers, reader
) -> None:
    a, b = model_servers(latency=0.03), model_servers(latency=0.03)
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=[f"mobilenet_v2={a.url()},{b.url()}"],
        consume_max_inflight=1,
        consume_probe_interval=0.2,
    )
    out = reader(topics.output)
    with running_consumer(settings) as service:
        feeder = Feeder(kafka_settings, topics.input, fps=40).start()
        try:
            wait_for(lambda: out.count() >= 60, 20, "frames to flow")
            counts = a.count(PREDICT), b.count(PREDICT)
            assert min(counts) / sum(counts) >= 0.4, counts
            a.stop()
            killed_at = time.monotonic()
            before = out.count()
            wait_for(lambda: out.count() >= before + 10, 5, "frames after a replica died")
            # frames keep flowing within one second of the kill
            gaps = _largest_gap_after(out, killed_at)
            assert gaps < 1.0, f"{gaps:.2f}s without output after the kill"
            wait_for(
                lambda: not dict((u, up) for u, up, *_ in service.models[0].pool.stats())[a.url()],
                5,
                "the dead replica ejected",
            )
            a.start()
            served_before = a.count(PREDICT)
            wait_for(lambda: a.count(PREDICT) > served_before + 5, 10, "the restarted replica used")
        finally:
            feeder.stop()
        assert _dropped(service, "model_error") <= 3


def _largest_gap_after(out, since: float) -> float:
    """Longest time without an output record in the second after ``since`` (wall clock)."""
    wait_for(lambda: time.monotonic() > since + 1.5, 3, "1.5 s of frames")
    since_ms = (time.time() - (time.monotonic() - since)) * 1000
    stamps = sorted(r.timestamp_ms for r in out.snapshot() if r.timestamp_ms >= since_ms - 1000)
    stamps = [s for s in stamps]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if b >= since_ms]
    return max(gaps, default=0) / 1000


def test_slow_model_publishes_newest_frames_only(
    kafka_settings, topics, unique_name, model_servers, reader
) -> None:
    server = model_servers(latency=0.2)
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=[f"mobilenet_v2={server.url()}"],
        consume_max_inflight=1,
        consume_max_frame_age=1.0,
    )
    meta = reader(topics.metadata)
    with running_consumer(settings) as service:
        feeder = Feeder(kafka_settings, topics.input, fps=30).start()
        try:
            wait_for(lambda: meta.count() >= 12, 20, "enough frames out")
        finally:
            feeder.stop()
        overload = _dropped(service, "overload") + metric(
            service, "kva_consume_frames_skipped_total", {"topic": topics.input}
        )
    docs = metadata_docs(meta.snapshot())
    seqs = [d["seq"] for d in docs]
    assert seqs == sorted(seqs)
    steps = [b - a for a, b in zip(seqs, seqs[1:], strict=False)]
    # 30 fps in, 5 fps of model: about every sixth frame, never a backlog
    assert sum(steps) / len(steps) >= 3, steps
    ages = [d["age_ms"] for d in docs[3:]]
    assert max(ages) < 600, ages
    assert overload >= 20


def test_old_frames_are_dropped_as_stale(
    kafka_settings, topics, unique_name, model_servers, reader
) -> None:
    server = model_servers(latency=0)
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=[f"mobilenet_v2={server.url()}"],
        consume_max_frame_age=0.5,
    )
    out = reader(topics.output)
    with running_consumer(settings) as service:
        old = make_frame("cam0", 1, jpeg()).replace(capture_ns=time.time_ns() - 5 * 10**9)
        send_frames(kafka_settings, topics.input, old)
        wait_for(lambda: _dropped(service, "stale") == 1, 10, "the old frame dropped")
        send_frames(kafka_settings, topics.input, make_frame("cam0", 2, jpeg()))
        wait_for(lambda: out.count() == 1, 10, "the good frame published")
    assert out.snapshot()[0].frame().sequence == 2


GOOD = jpeg()


def _bad_messages():
    frame = make_frame("cam0", 5, GOOD)
    key, value, headers = encode_frame(frame)
    big = make_frame("cam0", 6, b"\xff\xd8\xff" + b"x" * 300_000)
    not_jpeg = make_frame("cam0", 7, b"PNG? no, just text")
    corrupt = make_frame("cam0", 8, b"\xff\xd8\xff\xe0" + bytes(range(256)) * 10)
    return {
        "empty": (key, b"", headers, "_unknown"),
        "no headers": (key, value, [], "_unknown"),
        "no key": (None, value, headers, "_unknown"),
        "oversized": (*encode_frame(big)[:3], "_unknown"),
        "not jpeg": (*encode_frame(not_jpeg)[:3], "cam0"),
        "corrupt jpeg": (*encode_frame(corrupt)[:3], "cam0"),
        "bad header": (
            key,
            value,
            [*headers[:1], ("kva-seq", b"minus one"), *headers[2:]],
            "_unknown",
        ),
    }


@pytest.mark.parametrize("case", list(_bad_messages()))
def test_bad_input_is_counted_and_skipped(
    case, kafka_settings, topics, unique_name, model_servers, reader
) -> None:
    server = model_servers(latency=0)
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=[f"mobilenet_v2={server.url()}"],
        consume_max_frame_bytes=200_000,
    )
    key, value, headers, stream = _bad_messages()[case]
    out = reader(topics.output)
    with running_consumer(settings) as service:
        send(kafka_settings, topics.input, key, value, headers)
        wait_for(
            lambda: _dropped(service, "decode_error", stream) == 1, 10, "the bad message counted"
        )
        send_frames(kafka_settings, topics.input, make_frame("cam0", 100, GOOD))
        wait_for(lambda: out.count() == 1, 10, "the next good frame processed")
    assert out.snapshot()[0].frame().sequence == 100


@pytest.mark.parametrize("mode", ["error", "garbage", "wrong_shape", "hang"])
def test_model_failures_then_unavailable_then_recovery(
    mode, kafka_settings, topics, unique_name, model_servers, reader
) -> None:
    server = model_servers(latency=0)
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=[f"mobilenet_v2={server.url()}"],
        consume_read_timeout=0.3,
        consume_eject_after=2,
        consume_retries=0,
        consume_probe_interval=0.2,
    )
    meta = reader(topics.metadata)
    with running_consumer(settings) as service:
        server.mode = mode
        for seq in range(1, 4):
            send_frames(kafka_settings, topics.input, make_frame("cam0", seq, GOOD))
            wait_for(
                lambda s=seq: _dropped(service, "model_error") + meta.count() >= s,
                10,
                "the loop to go on",
            )
        # two failures dropped (model_error), then the replica is out: frames pass, marked
        assert _dropped(service, "model_error") == 2
        docs = metadata_docs(meta.snapshot())
        assert [d["models"][0]["status"] for d in docs] == ["unavailable"]
        server.mode = "ok"
        wait_for(lambda: service.models[0].pool.up_count() == 1, 10, "the replica probed back")
        send_frames(kafka_settings, topics.input, make_frame("cam0", 10, GOOD))
        wait_for(lambda: meta.count() >= 2, 10, "a frame after the recovery")
    assert metadata_docs(meta.snapshot())[-1]["models"][0]["status"] == "ok"


def test_two_consumers_in_one_group_share_partitions(
    kafka_settings, make_topic, unique_name, model_servers, reader
) -> None:
    from tests.support.kafka import Topics

    topics = Topics(
        make_topic(partitions=4, suffix="in"), make_topic(suffix="out"), make_topic(suffix="meta")
    )
    server = model_servers(latency=0, concurrency=4)
    settings = consumer_settings(
        kafka_settings, topics, unique_name, consume_models=[f"mobilenet_v2={server.url()}"]
    )
    meta = reader(topics.metadata)
    streams = tuple(f"cam{i}" for i in range(8))
    with (
        running_consumer(settings, wait_ready=False) as first,
        running_consumer(settings, wait_ready=False) as second,
    ):
        wait_for(
            lambda: (
                first._consumer.assignment
                and second._consumer.assignment
                and len(first._consumer.assignment | second._consumer.assignment) == 4
            ),
            30,
            "the partitions shared",
        )
        assert not first._consumer.assignment & second._consumer.assignment
        feeder = Feeder(kafka_settings, topics.input, fps=10, streams=streams).start()
        try:
            wait_for(
                lambda: {d["stream"] for d in metadata_docs(meta.snapshot())} == set(streams),
                20,
                "every stream served",
            )
        finally:
            feeder.stop()
        assert (
            metric(first, "kva_consume_frames_out_total", {"stream": "cam0"})
            + metric(second, "kva_consume_frames_out_total", {"stream": "cam0"})
            > 0
        )
        outs = [
            sum(metric(c, "kva_consume_frames_out_total", {"stream": s}) for s in streams)
            for c in (first, second)
        ]
        assert min(outs) > 0, outs


def test_stream_count_is_bounded(kafka_settings, topics, unique_name, reader) -> None:
    settings = consumer_settings(
        kafka_settings, topics, unique_name, consume_passthrough=True, consume_max_streams=2
    )
    out = reader(topics.output)
    with running_consumer(settings) as service:
        for stream in ("a", "b", "c", "a"):
            send_frames(kafka_settings, topics.input, make_frame(stream, 1, GOOD))
        wait_for(lambda: out.count() == 3, 10, "frames of the known streams published")
        wait_for(
            lambda: _dropped(service, "too_many_streams", "_unknown") == 1,
            10,
            "the third stream dropped",
        )
    assert sorted(r.frame().stream_id for r in out.snapshot()) == ["a", "a", "b"]
