"""The viewer's event feed on the real broker: events produced to Kafka reach /api/events
and the counts; the newest of each partition are read back on start; corrupt records are
counted and skipped; an events topic that does not exist yet is no error."""

from __future__ import annotations

import logging
import threading

import pytest
import requests

from kva.kafka import FrameProducer, TopicSpec, ensure_topics
from kva.video.config import VideoSettings
from kva.video.service import ViewerService
from tests.support.wait import wait_for
from tests.video.events import LineCounter, zone_event

pytestmark = pytest.mark.integration


def _settings(kafka_settings, frames: str, events: str, **values: object) -> VideoSettings:
    return VideoSettings(
        bootstrap_server=kafka_settings.bootstrap_server,
        video_topic=frames,
        video_metadata_topic="",
        video_events_topic=events,
        video_port=0,
        video_threads=16,
        **values,  # type: ignore[arg-type]
    )


@pytest.fixture
def viewer():
    services: list[ViewerService] = []

    def start(settings: VideoSettings) -> ViewerService:
        service = ViewerService(settings)
        services.append(service)
        service.start(threading.Event())
        return service

    yield start
    for service in services:
        service.close()


def _get(service: ViewerService, path: str) -> requests.Response:
    return requests.get(service.url + path, timeout=5)


def test_events_from_kafka_reach_the_api_and_corrupt_ones_are_skipped(
    kafka_settings, make_topic, viewer
) -> None:
    frames, events = make_topic(suffix="annotated"), make_topic(partitions=2, suffix="events")
    producer = FrameProducer(kafka_settings)
    line = LineCounter("cam0", "walkway")
    for track in range(8):  # before the viewer starts: only the newest 5 are read back
        producer.send(events, b"cam0", line.cross("in", track).to_json().encode())
    producer.flush(10)
    service = viewer(_settings(kafka_settings, frames, events, video_max_events=5))
    newest = wait_for(
        lambda: _get(service, "/api/events").json()["events"], 60, "the newest events read back"
    )
    assert [e["track"] for e in newest] == [7, 6, 5, 4, 3]

    corrupt = [b"", b"{not json", b'{"v": 1, "type": "line_cross"}']
    for value in corrupt:
        producer.send(events, b"cam0", value)
    producer.send(events, b"cam0", line.cross("out", 8).to_json().encode())
    zone = zone_event("cam1", "bench", "zone_enter", 9, {"inside": 1, "entered": 1})
    producer.send(events, b"cam1", zone.to_json().encode())
    producer.send(events, b"cam1", zone.to_json().encode())  # at least once: a duplicate
    producer.flush(10)
    wait_for(
        lambda: (
            len(_get(service, "/api/events?stream=cam1").json()["events"]) == 1
            and _get(service, "/api/events?stream=cam0&limit=1").json()["events"][0]["track"] == 8
        ),
        30,
        "the new events",
    )
    state = service.state
    assert state.events.summary("cam0", 1)["lines"][0]["counts"] == {"in": 8, "out": 1}  # type: ignore[index]
    registry = state.metrics.registry

    def rejected(reason: str) -> float | None:
        labels = {"topic": events, "reason": reason}
        return registry.get_sample_value("kva_video_messages_rejected_total", labels)

    wait_for(lambda: rejected("duplicate") == 1, 10, "the duplicate counted")
    assert (rejected("empty"), rejected("bad_json"), rejected("bad_schema")) == (1, 1, 1)
    kept = registry.get_sample_value(
        "kva_video_events_received_total", {"stream": "cam0", "type": "line_cross"}
    )
    assert kept == 6  # 5 read back + 1 new: the 3 older ones were never read
    metrics = _get(service, "/metrics").text
    assert f'kva_video_messages_rejected_total{{reason="bad_json",topic="{events}"}}' in metrics
    assert _get(service, "/healthz").status_code == 200
    assert service.event_reader is not None and service.event_reader.alive()


def test_an_absent_events_topic_is_no_error_until_it_exists(
    kafka_settings, make_topic, unique_name, viewer, caplog
) -> None:
    frames, events = make_topic(suffix="annotated"), f"{unique_name}-late-events"
    caplog.set_level(logging.INFO, logger="kva.kafka.consumer")
    service = viewer(_settings(kafka_settings, frames, events))
    wait_for(
        lambda: any("waiting for a topic to exist" in r.getMessage() for r in caplog.records),
        30,
        "the reader to find the topic absent",
    )
    assert _get(service, "/healthz").status_code == 200
    assert _get(service, "/api/events").json()["events"] == []
    ours = ("kva.kafka", "kva.video")  # (not the broker's own log lines)
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith(ours)
    ]
    ensure_topics(kafka_settings, [TopicSpec(events)])  # e.g. the consumer starts later
    producer = FrameProducer(kafka_settings)
    line = LineCounter("cam0", "walkway")

    def arrived() -> bool:
        producer.send(events, b"cam0", line.cross("in", line.seq).to_json().encode())
        producer.flush(10)
        return bool(_get(service, "/api/events").json()["events"])

    wait_for(arrived, 60, "events once the topic exists", step=0.5)
    assert service.healthy()


def test_no_events_topic_means_no_events_reader(kafka_settings, make_topic, viewer) -> None:
    service = viewer(_settings(kafka_settings, make_topic(suffix="annotated"), ""))
    assert service.event_reader is None
    body = _get(service, "/api/events").json()
    assert body == {"topic": None, "limit": 100, "events": []}
