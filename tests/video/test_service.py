"""The viewer as a :class:`kva.service.Service`: start, run, close, and each way it ends."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from kva.kafka import KafkaUnavailable
from kva.ports import free_port
from kva.service import run_service
from kva.video.config import VideoSettings
from kva.video.service import ViewerService


def test_close_and_health_before_start() -> None:
    service = ViewerService(VideoSettings(video_port=0))
    assert service.healthy()
    with pytest.raises(RuntimeError, match="call start"):
        service.run(threading.Event())
    with pytest.raises(RuntimeError, match="not started"):
        _ = service.url
    service.close()  # nothing started: nothing to stop


def test_unreachable_broker_fails_start_and_exits_1(caplog: pytest.LogCaptureFixture) -> None:
    settings = VideoSettings(bootstrap_server=f"127.0.0.1:{free_port()}", broker_timeout=1)
    service = ViewerService(settings)
    with pytest.raises(KafkaUnavailable, match="cannot reach Kafka"):
        service.start(threading.Event())
    assert run_service(ViewerService(settings), threading.Event(), (KafkaUnavailable,)) == 1
    assert "cannot start: cannot reach Kafka" in caplog.text


@pytest.mark.integration
def test_serves_until_stopped(kafka_settings, make_topic) -> None:
    settings = VideoSettings(
        bootstrap_server=kafka_settings.bootstrap_server,
        video_topic=make_topic(suffix="annotated"),
        video_metadata_topic=make_topic(suffix="predictions"),
        video_port=0,
        video_threads=16,
    )
    service, stop = ViewerService(settings), threading.Event()
    service.start(stop)
    try:
        assert requests.get(service.url + "/healthz", timeout=5).status_code == 200
        stop.set()
        assert service.run(stop) == 0
    finally:
        service.close()
    assert service.reader is not None and not service.reader.alive()
    with pytest.raises(requests.ConnectionError):
        requests.get(service.url + "/healthz", timeout=5)


@pytest.mark.integration
def test_a_dead_reader_ends_run_with_1(kafka_settings, make_topic) -> None:
    settings = VideoSettings(
        bootstrap_server=kafka_settings.bootstrap_server,
        video_topic=make_topic(suffix="annotated"),
        video_metadata_topic="",
        video_port=0,
        video_threads=16,
    )
    service, stop = ViewerService(settings), threading.Event()
    service.start(stop)
    try:
        assert service.reader is not None
        service.reader.stop()
        assert requests.get(service.url + "/healthz", timeout=5).status_code == 503
        assert service.run(stop) == 1
    finally:
        service.close()


@pytest.mark.integration
def test_a_taken_port_is_a_clear_start_error(kafka_settings, make_topic) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        settings = VideoSettings(
            bootstrap_server=kafka_settings.bootstrap_server,
            video_topic=make_topic(suffix="annotated"),
            video_metadata_topic="",
            video_port=port,
            video_threads=16,
        )
        service = ViewerService(settings)
        try:
            with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
                service.start(threading.Event())
        finally:
            service.close()
    assert service.reader is not None and not service.reader.alive()
