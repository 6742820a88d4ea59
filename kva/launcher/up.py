"""``kva up``: the whole pipeline on one machine, no Docker.

Stages, each started once the previous one is ready: the broker (unless
``--bootstrap-server`` names one) → the model build (skipped when cached) →
two ``kva serve`` replicas, the viewer and the producer (the demo camera unless
``--source`` names cameras) → the consumer with every model on both replicas. A
banner with the viewer URL is printed once the first annotated frame is out.
Ctrl-C stops everything, in reverse order, within 5 s; when `kva up` is killed,
its guard (:mod:`kva.launcher.guard`) stops what is left.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kva.cliargs import add_settings_arguments, settings_from_args
from kva.launcher.config import UpSettings

if TYPE_CHECKING:
    from kva.launcher.layout import Layout

logger = logging.getLogger(__name__)

NAME = "up"
HELP = "run the whole pipeline here: broker, models, 2 model servers, producer, consumer, viewer"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description=HELP + ". Ctrl-C stops everything.")
    add_settings_arguments(parser, UpSettings)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kva.lifecycle import install_stop_handlers

    settings = settings_from_args(UpSettings, args)
    stop = install_stop_handlers()
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="kva-up-"))
    guard = _start_guard(workdir)
    try:
        return _supervise(settings, workdir, guard.pid, stop, started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if guard.stdin is not None:
            guard.stdin.close()  # the guard finds the group empty and exits
        guard.wait(10)


def _start_guard(workdir: Path) -> subprocess.Popen[bytes]:
    """The leader of this run's process group: it cleans up when this process is gone.

    Every service joins its group, so a terminal's Ctrl-C reaches only ``kva up``, which
    stops the services in reverse order. See :mod:`kva.launcher.guard`.
    """
    return subprocess.Popen(  # noqa: S603 - our own module, no shell
        [sys.executable, "-m", "kva.launcher.guard", str(workdir)],
        stdin=subprocess.PIPE,
        process_group=0,
    )


def _supervise(
    settings: UpSettings, workdir: Path, group: int, stop: threading.Event, started: float
) -> int:
    from kva.launcher.layout import plan
    from kva.launcher.supervisor import ServiceFailed, Supervisor

    # The services' own temporary files (the broker's data folder...) go in the work folder,
    # which the guard removes even when nothing else could clean up.
    os.environ["TMPDIR"] = str(workdir)
    try:
        layout = plan(settings, workdir)
    except ServiceFailed as exc:
        logger.error("%s", exc)
        return 1
    supervisor = Supervisor(layout.stages, stop, process_group=group)
    try:
        supervisor.start()
        if stop.is_set():
            return 130
        threading.Thread(
            target=_announce,
            args=(layout, started, stop),
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


def _announce(layout: Layout, started: float, stop: threading.Event) -> None:
    """Print the banner once the first annotated frame is on the output topic."""
    from kva.kafka import LatestFrameConsumer
    from kva.settings import KafkaSettings

    consumer = LatestFrameConsumer(
        KafkaSettings(bootstrap_server=layout.bootstrap_server),
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
    notes = "".join(f"  note:    {note}\n" for note in layout.notes)
    sys.stdout.write(
        f"\n{line}\n  kva is up: first annotated frame after {elapsed:.1f}s\n"
        f"  viewer:  {layout.viewer_url}\n  Kafka:   {layout.bootstrap_server}\n"
        f"{notes}  Ctrl-C stops everything\n{line}\n\n"
    )
    sys.stdout.flush()
