"""``kva consume``: wiring only (parse, build, run)."""

from __future__ import annotations

import argparse

from kva.cliargs import accept_relative_times, add_settings_arguments, settings_from_args
from kva.consumer.config import ConsumerSettings

NAME = "consume"
HELP = "newest frame of each stream -> model servers -> annotated frames and predictions"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=HELP + ". Each --model URL is a replica: TF Serving REST "
        "(http://host:8501/v1/models/<m>) or KServe v2 (http://host:8501/v2/models/<m>). "
        "Requests go to the least-loaded replica; failing replicas are ejected and probed back. "
        "With --from (and --to) it re-scores a recorded range instead: every frame of it, "
        "exactly once (Kafka transactions), in its own group and into its own topics, then "
        "exits with a summary; run it again to resume.",
    )
    add_settings_arguments(parser, ConsumerSettings)
    accept_relative_times(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kva.consumer.models import ModelSetupError
    from kva.kafka import KafkaUnavailable
    from kva.lifecycle import install_stop_handlers
    from kva.service import Service, run_service

    settings = settings_from_args(ConsumerSettings, args)
    stop = install_stop_handlers()
    errors: tuple[type[BaseException], ...] = (KafkaUnavailable, ModelSetupError, OSError)
    service: Service
    if settings.rescore:
        from kva.consumer.rescore.plan import RescoreError
        from kva.consumer.rescore.service import RescoreService
        from kva.consumer.scenes import SceneConfigError
        from kva.kafka import TransactionError
        from kva.kafka.peek import RangeError
        from kva.timerange import TimeRangeError

        service = RescoreService(settings)
        errors += (RangeError, RescoreError, TransactionError, TimeRangeError, SceneConfigError)
    else:
        from kva.consumer.service import ConsumerService

        service = ConsumerService(settings)
    return run_service(service, stop, errors)
