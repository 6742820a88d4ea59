"""``kva produce`` as a process, an unreachable broker, and a broker restart mid-stream."""

from __future__ import annotations

import re
import signal
import threading
import time

import pytest

from kva.ports import free_port
from kva.producer.service import ProducerService
from kva.service import run_service
from kva.settings import KafkaSettings
from kva.zookeeper.cluster import ClusterSpec, KafkaCluster
from testbed.kafka import FrameCollector
from testbed.producer import producer_settings, running
from tests.support.process import run_kva
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


def test_subprocess_configured_by_environment_stops_cleanly_on_sigterm(
    kafka_settings, make_topic, collector_factory, start_kva
):
    topic = make_topic()
    collector = collector_factory(topic)
    port = free_port()
    process = start_kva(
        "produce",
        env={
            "KVA_BOOTSTRAP_SERVER": kafka_settings.bootstrap_server,
            "KVA_PRODUCE_SOURCE": "gate=testsrc",
            "KVA_PRODUCE_TOPIC": topic,
            "KVA_PRODUCE_FPS": "15",
            "KVA_PRODUCE_WIDTH": "320",
            "KVA_PRODUCE_METRICS_PORT": str(port),
            "KVA_PRODUCE_PROGRESS_INTERVAL": "1",
        },
    )
    try:
        frames = collector.count("gate", 20, timeout=30)
        assert len(frames) >= 20
        assert (frames[0].width, frames[0].height) == (320, 240)
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        assert 'kva_producer_camera_up{stream="gate"} 1.0' in text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    err = process.output()
    assert code == 0, err
    assert re.search(r"gate: \d+\.\d fps, \d+\.\d kB/frame, \d+ sent, 0 dropped", err), err
    assert "producer stopped" in err


def test_missing_file_exits_non_zero_with_the_reason(kafka_settings, make_topic, tmp_path):
    missing = tmp_path / "nope.mp4"
    process = run_kva(
        "produce",
        "--source",
        str(missing),
        "--bootstrap-server",
        kafka_settings.bootstrap_server,
        "--topic",
        make_topic(),
        "--metrics-port",
        "0",
    )
    err = process.stderr
    assert process.returncode == 1, err
    assert f"cam0: video file not found: {missing}; giving up on this stream" in err


def test_unreachable_broker_is_a_clear_error_after_the_timeout():
    port = free_port()
    started = time.monotonic()
    process = run_kva(
        "produce",
        "--source",
        "testsrc",
        "--bootstrap-server",
        f"127.0.0.1:{port}",
        "--broker-timeout",
        "2",
        "--metrics-port",
        "0",
    )
    err = process.stderr
    assert process.returncode == 1, err
    assert f"cannot reach Kafka at 127.0.0.1:{port} within 2s" in err
    assert time.monotonic() - started < 30


def test_bad_flag_exits_2_naming_flag_and_variable():
    process = run_kva(
        "produce", "--jpeg-quality", "500", "--source", "a=demo", "--source", "a=testsrc"
    )
    err = process.stderr
    assert process.returncode == 2
    assert "--jpeg-quality / KVA_PRODUCE_JPEG_QUALITY" in err


@pytest.mark.faults
@pytest.mark.slow
def test_production_resumes_after_a_broker_restart(tmp_path, unique_name):
    spec = ClusterSpec(mode="kraft", port=free_port(), data_dir=tmp_path / "kafka")
    with KafkaCluster(spec) as cluster:
        settings = KafkaSettings(bootstrap_server=cluster.bootstrap_server, broker_timeout=20)
        from kva.kafka import TopicSpec, ensure_topics

        topic = f"{unique_name}-frames"
        ensure_topics(settings, [TopicSpec(topic, partitions=1)])
        collector = FrameCollector(settings, topic, unique_name)
        try:
            producer = producer_settings(settings, topic, source=["testsrc"], camera_fps=10)
            # A second producer told to give up after 1 s without a broker.
            impatient = ProducerService(
                producer_settings(
                    settings,
                    topic,
                    source=["quitter=testsrc"],
                    broker_unavailable_exit=1.0,
                    flush_timeout=0.5,
                )
            )
            impatient_status: list[int] = []
            impatient_thread = threading.Thread(
                target=lambda: impatient_status.append(run_service(impatient, threading.Event())),
                daemon=True,
            )
            impatient_thread.start()
            with running(producer) as service:
                collector.count("cam0", 10, timeout=20)
                assert impatient.started.wait(20)
                cluster.stop_broker(0)
                sent = service.metrics.value("kva_producer_frames_sent_total", stream="cam0")
                # The outage lasts until the impatient producer has given up.
                impatient_thread.join(20)
                assert impatient_status == [1], "--broker-unavailable-exit did not exit non-zero"
                assert service.fleet is not None and service.fleet.runners["cam0"].is_alive()
                assert (
                    service.metrics.value("kva_producer_frames_sent_total", stream="cam0") == sent
                )
                back_ns = time.time_ns()
                cluster.start_broker(0)
                cluster.wait_ready(60)
                back = time.monotonic()
                wait_for(
                    lambda: (
                        service.metrics.value("kva_producer_frames_sent_total", stream="cam0")
                        > sent + 10
                    ),
                    60,
                    "deliveries after the broker restart",
                )
                waited = time.monotonic() - back
                print(f"\ndeliveries resumed {waited:.2f}s after the broker answered again")
                # What was acknowledged is really in the topic: read it with a fresh consumer.
                after = FrameCollector(settings, topic, unique_name + "-after")
                try:
                    fresh = after.count("cam0", 5, timeout=40)
                finally:
                    after.close()
                assert len(fresh) >= 5
                assert all(f.capture_ns > back_ns for f in fresh)
                sequences = [f.sequence for f in collector.of("cam0") + fresh]
                assert sequences == sorted(sequences)
                assert len(set(sequences)) == len(sequences)
        finally:
            collector.close()
