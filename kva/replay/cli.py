"""``kva replay``: wiring only (parse, build, run)."""

from __future__ import annotations

import argparse
import re

from kva.cliargs import add_settings_arguments, settings_from_args
from kva.replay.config import ReplaySettings

NAME = "replay"
#: What argparse must read as a value, not a flag: -5, -.5, and relative times (-5m, -1h30m).
RELATIVE_TIME = re.compile(r"^-\d+$|^-\d*\.\d+$|^-(\d+(ms|s|m|h|d))+$")
HELP = "replay a stream's recorded frames from Kafka to a video file, a topic or the viewer"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=HELP + ". The time range is resolved with offsets_for_times (every "
        "record's timestamp is its capture time); no consumer group is joined, so live "
        "consumers are not disturbed. Corrupt records are counted and skipped. Exit status: "
        "0 done, 2 bad arguments or a range/stream the topic does not hold (the message says "
        "what it holds), 1 Kafka unreachable. Examples: "
        "kva replay --stream cam0 --from -5m --to-file cam0.mp4; "
        "kva replay --stream cam0 --from 2026-12-07T12:00:00Z --to 2026-12-07T12:10:00Z "
        "--annotated --to-viewer; kva replay --stream cam0 --from -1h --to-topic frames.rescore",
    )
    add_settings_arguments(parser, ReplaySettings)
    # argparse takes "-5m" for an unknown flag (only "-5" or "-.5" look like values to it);
    # a relative time is a value here, as this parser has no flag that starts with a digit
    parser._negative_number_matcher = RELATIVE_TIME
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from kva.kafka import KafkaUnavailable
    from kva.lifecycle import install_stop_handlers
    from kva.replay.errors import ReplayError
    from kva.replay.progress import ProgressBar
    from kva.replay.service import ReplayService
    from kva.service import run_service

    settings = settings_from_args(ReplaySettings, args)
    bar = ProgressBar(sys.stderr) if settings.replay_progress else None
    stop = install_stop_handlers()
    service = ReplayService(settings, bar.update if bar else None)
    return run_service(service, stop, (ReplayError, KafkaUnavailable, OSError))
