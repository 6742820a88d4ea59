"""Typed settings shared by every service: the Kafka connection and logging.

Every field can be set by a CLI flag (see :mod:`kva.cliargs`) or by an
environment variable named by **one rule**: ``KVA_`` + the command + ``_`` +
the flag, upper-case, dashes as underscores (``kva produce --jpeg-quality`` is
``KVA_PRODUCE_JPEG_QUALITY``, ``kva serve --rest_api_port`` is
``KVA_SERVE_REST_API_PORT``). The settings every service shares, the Kafka
connection and logging (the fields of :class:`KafkaSettings`), are ``KVA_`` +
the flag (``KVA_BOOTSTRAP_SERVER``, ``KVA_LOG_LEVEL``), so one environment
configures every service. Names from before the rule still work for one release,
with a warning. Secrets (passwords) are read from the environment only and are
:class:`~pydantic.SecretStr`, so they never show up in a repr or a log line.
"""

from __future__ import annotations

import logging
import os
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

logger = logging.getLogger(__name__)

ENV_PREFIX = "KVA_"
#: Every settings class, in definition order (see :func:`current_env_names`).
_MODELS: list[type[KvaSettings]] = []


def flag_of(name: str, info: FieldInfo) -> str:
    """The command-line flag of a settings field (``--foo-bar``, or the one it names)."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return str(extra.get("flag", "--" + name.replace("_", "-")))


def env_names(model: type[BaseSettings], name: str) -> tuple[str, str | None]:
    """``(variable, deprecated variable or None)`` of field ``name`` of ``model``, by the rule."""
    variable = _variable(model, name)
    old = ENV_PREFIX + name.upper()
    return variable, (None if old == variable or old in current_env_names() else old)


def current_env_names() -> set[str]:
    """Every variable named by the rule, of every settings class defined so far.

    An old name that is now another setting's name is no alias: ``KVA_SERVE_PORT``
    was ``kva up --serve-port`` and is now ``kva serve --port``.
    """
    return {_variable(model, name) for model in _MODELS for name in model.model_fields}


def settings_models() -> list[type[KvaSettings]]:
    """Every settings class defined so far (import a command's module to define its own)."""
    return list(_MODELS)


def _variable(model: type[BaseSettings], name: str) -> str:
    words = flag_of(name, model.model_fields[name]).lstrip("-").replace("-", "_").upper()
    command = str(getattr(model, "command", ""))
    if not command or name in KafkaSettings.model_fields:
        return ENV_PREFIX + words
    return f"{ENV_PREFIX}{command.upper()}_{words}"


def listen_host(description: str, flag: str, *aliases: str) -> Any:
    """A bind-address setting: loopback unless configured (nothing listens beyond localhost)."""
    extra: dict[str, Any] = {"flag": flag, "metavar": "HOST"}
    if aliases:
        extra["aliases"] = list(aliases)
    return Field("127.0.0.1", description=description, json_schema_extra=extra)


def listen_port(default: int | None, description: str, flag: str) -> Any:
    """A TCP port setting (0 = any free port)."""
    extra: dict[str, Any] = {"flag": flag, "metavar": "PORT"}
    return Field(default, ge=0, le=65535, description=description, json_schema_extra=extra)


#: What a Kafka topic name may be (Kafka's own rule).
TOPIC_NAME = r"^[A-Za-z0-9._-]+$"


def topic_setting(default: str | None, description: str, flag: str) -> Any:
    """A Kafka topic setting: a name Kafka accepts (at most 249 of ``[A-Za-z0-9._-]``)."""
    extra: dict[str, Any] = {"flag": flag, "metavar": "TOPIC"}
    return Field(default, pattern=TOPIC_NAME, max_length=249, description=description,
                 json_schema_extra=extra)  # fmt: skip


class KvaEnvSource(PydanticBaseSettingsSource):
    """Reads each field from its variable (see :func:`env_names`); old names with a warning."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable, _old = env_names(self.settings_cls, field_name)
        return os.environ.get(variable), variable, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.settings_cls.model_fields:
            variable, old = env_names(self.settings_cls, name)
            if variable in os.environ:
                values[name] = os.environ[variable]
            elif old is not None and old in os.environ:
                logger.warning(
                    "%s is deprecated: set %s instead (the old name goes in the next release)",
                    old,
                    variable,
                )
                values[name] = os.environ[old]
        return values


class KvaSettings(BaseSettings):
    """Base class: environment variables by the one rule, unknown keys rejected."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True, frozen=True)

    #: The command these settings belong to (``produce`` for ``kva produce``); '' when shared.
    command: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _MODELS.append(cls)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, KvaEnvSource(settings_cls))

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
    as ``KVA_PRODUCE_SOURCE="cam0=demo cam1=testsrc"`` becomes two items.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return text.split()
    return value
