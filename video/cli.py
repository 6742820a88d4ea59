"""``kva video``: serve the annotated streams to browsers (wiring only)."""

from __future__ import annotations

import argparse
import logging

from kva.cliargs import add_settings_arguments, settings_from_args
from kva.video.config import VideoSettings

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
    from kva.kafka import KafkaUnavailable
    from kva.lifecycle import install_stop_handlers
    from kva.service import run_service
    from kva.video.service import ViewerService

    settings = settings_from_args(VideoSettings, args)
    if getattr(args, "video_token", None) is not None:
        logger.warning(
            "--token is visible to every user of this machine (ps, /proc): "
            "pass the token in the KVA_VIDEO_TOKEN environment variable instead"
        )
    stop = install_stop_handlers()
    return run_service(ViewerService(settings), stop, (KafkaUnavailable, OSError))
