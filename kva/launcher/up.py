"""``kva up``: the whole pipeline on one machine, no Docker.

Stages, each started once the previous one is ready: the broker (unless
``--bootstrap-server`` names one) → the model build (skipped when cached) →
two ``kva serve`` replicas, the viewer and the producer → the consumer with
both models on both replicas. A banner with the viewer URL is printed once the
first annotated frame is out. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

from kva.cliargs import add_settings_arguments, settings_from_args
from kva.launcher.config import UpSettings

logger = logging.getLogger(__name__)

NAME = "up"
HELP = "run the whole pipeline here: broker, models, 2 model servers, producer, consumer, viewer"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description=HELP + ". Ctrl-C stops everything.")
    add_settings_arguments(parser, UpSettings)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kva.launcher.layout import plan
    from kva.launcher.supervisor import ServiceFailed, Supervisor
    from kva.lifecycle import install_stop_handlers

    settings = settings_from_args(UpSettings, args)
    stop = install_stop_handlers()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kva-up-") as workdir:
        try:
            layout = plan(settings, Path(workdir))
        except ServiceFailed as exc:
            logger.error("%s", exc)
            return 1
        supervisor = Supervisor(layout.stages, stop)
        try:
            supervisor.start()
            if stop.is_set():
                return 130
            threading.Thread(
                target=_announce,
                args=(layout.bootstrap_server, layout.viewer_url, started, stop),
                name="kva-up-banner",
                daemon=True,
            ).start()
            supervisor.watch()
        except ServiceFailed as exc:
            logger.error("%s", exc)
            return 1
        finally:
            logger.info("stopping all services")
            supervisor.stop_all()
    return 0


def _announce(
    bootstrap_server: str, viewer_url: str, started: float, stop: threading.Event
) -> None:
    """Print the banner once the first annotated frame is on the output topic."""
    from kva.kafka import LatestFrameConsumer
    from kva.settings import KafkaSettings

    consumer = LatestFrameConsumer(
        KafkaSettings(bootstrap_server=bootstrap_server),
        ["annotated"],
        f"kva-up-banner-{time.time_ns()}",
        max_lag=0,
    )
    try:
        while not stop.is_set():
            if consumer.poll(0.5) is not None:
                break
        else:
            return
    finally:
        consumer.close()
    line = "=" * 64
    elapsed = time.monotonic() - started
    sys.stdout.write(
        f"\n{line}\n  kva is up: first annotated frame after {elapsed:.1f}s\n"
        f"  viewer:  {viewer_url}\n  Kafka:   {bootstrap_server}\n"
        f"  Ctrl-C stops everything\n{line}\n\n"
    )
    sys.stdout.flush()
