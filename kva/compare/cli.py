"""``kva compare``: wiring only (parse, read both runs, print the table)."""

from __future__ import annotations

import argparse
import logging
import sys

from kva.cliargs import accept_relative_times, add_settings_arguments, settings_from_args
from kva.compare.config import CompareSettings

logger = logging.getLogger(__name__)

NAME = "compare"
HELP = "how two runs agree on the same frames: top-1, matched boxes, counts, latency per model"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=HELP + ". Reads two predictions topics (committed documents only), "
        "joins them on the frame (stream, sequence number, capture time) and prints one "
        "row per model. Example: kva compare --a predictions --b predictions-rescore "
        "--pair mobilenet_v2=mobilenet_v3",
    )
    add_settings_arguments(parser, CompareSettings)
    accept_relative_times(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kva.compare.join import CompareError
    from kva.compare.report import compare
    from kva.kafka import KafkaUnavailable
    from kva.kafka.peek import RangeError
    from kva.timerange import TimeRangeError

    settings = settings_from_args(CompareSettings, args)
    try:
        sys.stdout.write(compare(settings))
    except (CompareError, RangeError, TimeRangeError, KafkaUnavailable) as exc:
        logger.error("cannot compare: %s", exc)
        return 1
    return 0
