"""``kva broker``: run a real Apache Kafka on this machine in the foreground."""

from __future__ import annotations

import argparse
import logging

from kva.cliargs import add_settings_arguments, settings_from_args
from kva.zookeeper.config import BrokerSettings

logger = logging.getLogger(__name__)

NAME = "broker"
HELP = "run a real Apache Kafka (KRaft or ZooKeeper) on this machine"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=HELP + ". Jars are resolved with mvn on first use "
        "into ~/.cache/kva (or $KVA_CACHE_DIR). Stops cleanly on Ctrl-C / SIGTERM.",
    )
    add_settings_arguments(parser, BrokerSettings)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kva.lifecycle import install_stop_handlers
    from kva.zookeeper.cluster import BrokerStartError, ClusterSpec, KafkaCluster
    from kva.zookeeper.jars import ToolMissing

    settings = settings_from_args(BrokerSettings, args)
    stop = install_stop_handlers()
    spec = ClusterSpec(
        mode=settings.broker_mode,
        brokers=settings.brokers,
        host=settings.broker_host,
        port=settings.broker_port,
        zookeeper_port=settings.zookeeper_port,
        data_dir=settings.broker_data_dir,
        heap=settings.broker_heap,
    )
    try:
        cluster = KafkaCluster(spec).start()
    except (BrokerStartError, ToolMissing, RuntimeError) as exc:
        logger.error("%s", exc)
        return 1
    try:
        logger.info("bootstrap server: %s (Ctrl-C to stop)", cluster.bootstrap_server)
        print(f"KAFKA_BOOTSTRAP_SERVER={cluster.bootstrap_server}", flush=True)  # noqa: T201
        while not stop.wait(0.5):
            if not cluster.alive():
                logger.error("a broker process exited unexpectedly")
                return 1
    finally:
        logger.info("stopping Kafka")
        cluster.stop()
        logger.info("Kafka stopped")
    return 0
