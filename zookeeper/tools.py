"""Kafka's own command-line tools, run from the jars ``kva broker`` resolves.

``kva kafka topics --list`` is ``kafka-topics.sh --bootstrap-server … --list`` of the
same Kafka version as the broker, with the bootstrap server and the SASL/SSL
settings taken from kva's settings (``KVA_BOOTSTRAP_SERVER``, ``KVA_SASL_*``, …)
unless the arguments give their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kva.settings import KafkaSettings


class ToolError(ValueError):
    """An unknown tool, or settings a tool cannot be given."""


@dataclass(frozen=True)
class KafkaTool:
    """One of Kafka's tools: its main class and the flag that takes client properties."""

    main_class: str
    config_flag: str
    summary: str


#: The tools, by the name of their ``kafka-NAME.sh`` script in Kafka's distribution.
TOOLS: dict[str, KafkaTool] = {
    "topics": KafkaTool(
        "org.apache.kafka.tools.TopicCommand",
        "--command-config",
        "create, list, describe, alter and delete topics",
    ),
    "console-consumer": KafkaTool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--consumer.config",
        "print records (--property print.headers=true for headers)",
    ),
    "console-producer": KafkaTool(
        "kafka.tools.ConsoleProducer",
        "--producer.config",
        "send lines as records (--property parse.headers=true for headers)",
    ),
    "consumer-groups": KafkaTool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "--command-config",
        "list and describe consumer groups, their offsets and lag; reset offsets",
    ),
    "get-offsets": KafkaTool(
        "org.apache.kafka.tools.GetOffsetShell",
        "--command-config",
        "the earliest, latest or by-time offsets of partitions",
    ),
    "configs": KafkaTool(
        "kafka.admin.ConfigCommand",
        "--command-config",
        "describe and alter topic, broker and client configs",
    ),
}

#: Fast start for a short-lived JVM.
JVM_OPTIONS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")

_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def tool(name: str) -> KafkaTool:
    """The tool called ``name`` (``kafka-`` and ``.sh`` may be given too)."""
    short = name.removeprefix("kafka-").removesuffix(".sh")
    if short not in TOOLS:
        raise ToolError(f"unknown Kafka tool {name!r}: choose from {', '.join(TOOLS)}")
    return TOOLS[short]


def _java_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def client_properties(settings: KafkaSettings) -> str:
    """Java client properties for kva's security settings ("" for PLAINTEXT).

    Contains secrets: write it to a private file, never log it.
    """
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return ""
    lines = [f"security.protocol={protocol}"]
    if protocol.startswith("SASL"):
        mechanism = settings.sasl_mechanism or "PLAIN"
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        lines += [
            f"sasl.mechanism={mechanism}",
            "sasl.jaas.config="
            f"{_JAAS_MODULES[mechanism]} required"
            f" username={_java_string(settings.sasl_username or '')}"
            f" password={_java_string(password)};",
        ]
    if protocol.endswith("SSL"):
        if settings.ssl_certificate_location or settings.ssl_key_location:
            raise ToolError(
                "client certificates are not passed to Kafka's tools: give your own client "
                "properties (e.g. --command-config FILE) with ssl.keystore.* settings"
            )
        if settings.ssl_ca_location:
            lines += [
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={settings.ssl_ca_location}",
            ]
    return "\n".join(lines) + "\n"


def log4j_config() -> Path:
    """The tools' logging set-up: warnings and up, to stderr."""
    return Path(str(resources.files("kva.zookeeper").joinpath("config/tools-log4j.properties")))


def tool_argv(
    name: str,
    args: Sequence[str],
    *,
    java: str,
    classpath: str,
    bootstrap_server: str,
    properties_file: Path | None,
) -> list[str]:
    """The ``java`` command line that runs tool ``name`` with ``args``.

    ``--bootstrap-server`` and the tool's client-properties flag are added only when
    ``args`` does not give them.
    """
    chosen = tool(name)
    given = {arg.split("=", 1)[0] for arg in args}
    extra: list[str] = []
    if "--bootstrap-server" not in given and not {"--help", "--version"} & given:
        extra += ["--bootstrap-server", bootstrap_server]
    if properties_file is not None and chosen.config_flag not in given:
        extra += [chosen.config_flag, str(properties_file)]
    return [
        java,
        *JVM_OPTIONS,
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{log4j_config()}",
        "-cp",
        classpath,
        chosen.main_class,
        *extra,
        *args,
    ]
