"""``kva video``: serve the annotated streams to browsers (wiring only)."""

from __future__ import annotations

import argparse
import logging
import threading
from typing import TYPE_CHECKING

from kva.cliargs import add_settings_arguments, settings_from_args
from kva.video.config import VideoSettings

if TYPE_CHECKING:
    from kva.video.reader import KafkaReader

logger = logging.getLogger(__name__)

NAME = "video"
HELP = "serve the annotated streams to browsers (MJPEG grid page, JSON API, metrics)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``kva video`` and its flags."""
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=HELP + ". Open http://HOST:PORT/ (add ?token=T when a token is set).",
    )
    add_settings_arguments(parser, VideoSettings)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the viewer until SIGINT/SIGTERM; returns the exit status."""
    from kva.kafka import KafkaUnavailable, TopicSpec, ensure_topics, wait_for_broker
    from kva.lifecycle import install_stop_handlers
    from kva.video.app import create_app, viewer_state
    from kva.video.reader import KafkaReader
    from kva.video.server import ViewerServer

    settings = settings_from_args(VideoSettings, args)
    stop = install_stop_handlers()
    try:
        wait_for_broker(settings)
        ensure_topics(settings, [TopicSpec(t) for t in _topics(settings)])
    except KafkaUnavailable as exc:
        logger.error("%s", exc)
        return 1
    reader_box: list[KafkaReader] = []
    app = create_app(settings, healthy=lambda: all(r.alive() for r in reader_box))
    state = viewer_state(app)
    reader = KafkaReader(settings, state.store, state.metrics)
    reader_box.append(reader.start())
    try:
        server = ViewerServer(app).start()
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", settings.video_host, settings.video_port, exc)
        reader.stop()
        return 1
    try:
        return _watch(settings, reader, stop)
    finally:
        logger.info("stopping the viewer")
        server.stop()
        reader.stop()


def _topics(settings: VideoSettings) -> list[str]:
    return [t for t in (settings.video_topic, settings.video_metadata_topic) if t]


def _watch(settings: VideoSettings, reader: KafkaReader, stop: threading.Event) -> int:
    limit = settings.broker_unavailable_exit
    while not stop.wait(1.0):
        if not reader.alive():
            logger.error("the Kafka reader stopped: %s", reader.failed)
            return 1
        if limit and reader.broker_down_for() > limit:
            logger.error("Kafka unreachable for more than %gs: exiting", limit)
            return 1
    return 0
