"""The ``kva`` command: one entry point, one sub-command per service.

Each sub-command lives in its service (``<service>/cli.py`` exposing
``add_parser``); heavy imports happen only when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kva import __version__
from kva.cliargs import SettingsError
from kva.logs import setup_logging

#: Modules that register a sub-command, in the order ``kva --help`` lists them.
COMMAND_MODULES = (
    "kva.zookeeper.cli",
    "kva.zookeeper.tools_cli",
    "kva.tfserving.cli",
    "kva.tfserving.models_cli",
    "kva.producer.cli",
    "kva.consumer.cli",
    "kva.video.cli",
    "kva.sink.cli",
    "kva.replay.cli",
    "kva.compare.cli",
    "kva.launcher.up",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kva",
        description="kva: Kafka streaming video analytics. Cameras -> Kafka -> model servers "
        "(TF Serving / OpenVINO REST) -> annotated MJPEG in the browser.",
    )
    parser.add_argument("--version", action="version", version=f"kva {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that service has not landed yet
                continue
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    setup_logging(
        getattr(args, "log_level", None) or "INFO", getattr(args, "log_format", None) or "text"
    )
    try:
        return int(args.run(args) or 0)
    except SettingsError as exc:
        print(f"kva {sys.argv[1] if len(sys.argv) > 1 else ''}: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
