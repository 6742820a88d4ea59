"""Typed settings shared by every service: the Kafka connection and logging.

Every field can be set by a CLI flag (see :mod:`kva.cliargs`) or by an
environment variable ``KVA_<FIELD_NAME>``. Secrets (passwords) are read from
the environment only and are :class:`~pydantic.SecretStr`, so they never show
up in a repr or a log line.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "KVA_"


class KvaSettings(BaseSettings):
    """Base class: ``KVA_`` environment prefix, unknown keys rejected."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, frozen=True
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")
    log_format: Literal["text", "json"] = Field(
        "text", description="log line format: human text or one JSON object per line"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class KafkaSettings(KvaSettings):
    """How a service reaches Kafka. SASL/SSL settings are passed to librdkafka as they are."""

    bootstrap_server: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap server(s), HOST:PORT[,HOST:PORT...]"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*"
    )
    sasl_username: str | None = Field(None, description="SASL user name")
    sasl_password: SecretStr | None = Field(
        None,
        description="SASL password (environment only: KVA_SASL_PASSWORD)",
        json_schema_extra={"cli": False},
    )
    ssl_ca_location: str | None = Field(None, description="CA certificate file for SSL")
    ssl_certificate_location: str | None = Field(None, description="client certificate for SSL")
    ssl_key_location: str | None = Field(None, description="client private key for SSL")
    ssl_key_password: SecretStr | None = Field(
        None,
        description="client key password (environment only: KVA_SSL_KEY_PASSWORD)",
        json_schema_extra={"cli": False},
    )
    broker_timeout: float = Field(
        15.0, gt=0, description="seconds to wait for the broker at start before failing"
    )
    broker_unavailable_exit: float = Field(
        0.0,
        ge=0,
        description="exit non-zero when the broker has been unreachable this many seconds "
        "(0 = keep retrying forever)",
    )

    @field_validator("bootstrap_server")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not HOST:PORT")
        return value


def split_list(value: object) -> object:
    """``before`` validator for list settings: a JSON list, or words split on whitespace.

    Use with ``Annotated[list[str], NoDecode]`` so an environment variable such
    as ``KVA_SOURCE="cam0=demo cam1=testsrc"`` becomes two items.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return text.split()
    return value
