"""``testsrc`` and ``demo`` into a real Kafka: headers, order, rate, metrics."""

from __future__ import annotations

import pytest

from testbed.producer import producer_settings, running
from tests.producer.conftest import assert_well_formed, measured_fps, metrics_text

pytestmark = pytest.mark.integration


def test_testsrc_frames_arrive_in_order_at_the_requested_rate(
    kafka_settings, make_topic, collector_factory
):
    topic = make_topic()
    collector = collector_factory(topic)
    settings = producer_settings(kafka_settings, topic, source=["testsrc"], camera_fps=20)
    with running(settings) as service:
        frames = collector.count("cam0", 45, timeout=20)
        text = metrics_text(service)
    assert len(frames) >= 45
    assert frames[0].sequence == 0
    assert_well_formed(frames, "cam0", 640, 480)
    assert measured_fps(frames) == pytest.approx(20, rel=0.1)
    assert 'kva_producer_camera_up{stream="cam0"} 1.0' in text
    assert 'kva_producer_frames_sent_total{stream="cam0"}' in text
    assert service.metrics.value("kva_producer_frames_encoded_total", stream="cam0") >= 45


def test_demo_and_testsrc_side_by_side_with_resize_and_ids(
    kafka_settings, make_topic, collector_factory
):
    topic = make_topic(partitions=2)
    collector = collector_factory(topic)
    settings = producer_settings(
        kafka_settings,
        topic,
        source=["lobby=demo", "testsrc"],
        camera_fps=10,
        camera_width=320,
        jpeg_quality=70,
    )
    with running(settings):
        collector.collect(
            lambda _f: len(collector.of("lobby")) >= 25 and len(collector.of("cam1")) >= 25,
            timeout=20,
        )
    demo, pattern = collector.of("lobby"), collector.of("cam1")
    assert_well_formed(demo, "lobby", 320, 240)
    assert_well_formed(pattern, "cam1", 320, 240)
    assert measured_fps(demo) == pytest.approx(10, rel=0.1)
    assert measured_fps(pattern) == pytest.approx(10, rel=0.1)
    assert len({f.data for f in demo}) == len(demo), "the demo scene does not move"
