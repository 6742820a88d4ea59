"""``kva events``: wiring only (parse, build, run)."""

from __future__ import annotations

import argparse

from kva.cliargs import add_settings_arguments, settings_from_args
from kva.sink.config import EventsSettings

NAME = "events"
HELP = "deliver the events topic to MQTT and/or a webhook, at least once"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=HELP + ". An event's offset is committed only once every destination "
        "acknowledged it (MQTT QoS 1 PUBACK, webhook 2xx); a destination that is down is "
        "retried with backoff while the events wait in Kafka; a webhook's 4xx (but 408/429) "
        "sends the event to the dead-letter topic. Receivers de-duplicate by event id. "
        "Examples: kva events --mqtt mqtt://127.0.0.1:1883; "
        "kva events --webhook https://example.org/hook --mqtt-topic 'site1/{stream}/{type}'",
    )
    add_settings_arguments(parser, EventsSettings)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kva.kafka import KafkaUnavailable
    from kva.lifecycle import install_stop_handlers
    from kva.service import run_service
    from kva.sink.service import EventsService

    settings = settings_from_args(EventsSettings, args)
    stop = install_stop_handlers()
    return run_service(EventsService(settings), stop, (KafkaUnavailable, OSError))
