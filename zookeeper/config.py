"""Settings of ``kva broker``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from kva.settings import KafkaSettings, KvaSettings, listen_host, listen_port


class BrokerSettings(KvaSettings):
    """A real Kafka cluster on this machine."""

    command: ClassVar[str] = "broker"

    broker_mode: Literal["kraft", "zookeeper"] = Field(
        "kraft",
        json_schema_extra={"flag": "--mode"},
        description="kraft: one process per broker (fastest); zookeeper: ZooKeeper + Kafka",
    )
    broker_host: str = listen_host("address to listen on (only this machine by default)", "--host")
    broker_port: int = listen_port(9092, "port of the first broker (0 = any free port)", "--port")
    zookeeper_port: int = Field(2181, ge=0, lt=65536, description="ZooKeeper port (zookeeper mode)")
    brokers: int = Field(1, ge=1, le=9, description="number of brokers (ports PORT, PORT+1, ...)")
    broker_data_dir: Path | None = Field(
        None,
        json_schema_extra={"flag": "--data-dir"},
        description="keep data here (default: a fresh temporary folder removed on exit)",
    )
    broker_heap: str = Field(
        "512m",
        json_schema_extra={"flag": "--heap"},
        pattern=r"^\d+[kKmMgG]$",
        description="JVM heap per broker, e.g. 512m",
    )


class KafkaToolSettings(KafkaSettings):
    """``kva kafka TOOL``: which Kafka to point Kafka's own tools at, and how to log in."""

    command: ClassVar[str] = "kafka"
