"""``kva produce``: cameras into Kafka."""

from __future__ import annotations

import argparse

from kva.cliargs import add_settings_arguments, settings_from_args
from kva.producer.config import ProducerSettings

NAME = "produce"
HELP = "read cameras (webcam, RTSP, HTTP, files, testsrc, demo) into a Kafka topic"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=HELP + ". Each camera runs in its own thread, is paced to --fps and is "
        "reconnected with backoff whenever it fails. Examples: "
        "kva produce --source demo; kva produce --source door=rtsp://10.0.0.5/stream "
        "--source testsrc --fps 15; kva produce --camera-file cameras.yaml",
    )
    add_settings_arguments(parser, ProducerSettings)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kva.kafka import KafkaUnavailable
    from kva.lifecycle import install_stop_handlers
    from kva.producer.config import CameraConfigError
    from kva.producer.service import ProducerService
    from kva.service import run_service

    settings = settings_from_args(ProducerSettings, args)
    stop = install_stop_handlers()
    errors = (CameraConfigError, KafkaUnavailable, OSError)
    return run_service(ProducerService(settings), stop, errors)
