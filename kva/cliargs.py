"""Turn a settings model into argparse flags, and parsed flags back into settings.

Each field ``foo_bar`` becomes ``--foo-bar`` (or the flag named in
``json_schema_extra={"flag": ...}``) whose help text names the environment
variable (see :func:`kva.settings.env_names`) and the default. A flag left out
falls back to that variable and then to the default, all validated by pydantic
with a readable error.
"""

from __future__ import annotations

import argparse
import re
import types
import typing
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from kva.settings import env_names, flag_of

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class SettingsError(SystemExit):
    """Invalid settings: exits with status 2 and a readable message."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def add_settings_arguments(parser: argparse.ArgumentParser, model: type[BaseSettings]) -> None:
    """Add one flag per field of ``model`` to ``parser``."""
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("cli") is False:
            continue
        flag = flag_of(name, info)
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": _help(model, name, info)}
        if _is_bool(info.annotation):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif _is_list(info.annotation):
            kwargs["action"] = "append"
            kwargs["metavar"] = str(extra.get("metavar", name.upper()))
        elif _literal_choices(info.annotation):
            kwargs["choices"] = _literal_choices(info.annotation)
        else:
            kwargs["metavar"] = str(extra.get("metavar", name.upper()))
        aliases = [str(a) for a in extra.get("aliases", [])]  # type: ignore[union-attr]
        parser.add_argument(flag, *aliases, **kwargs)


#: What argparse takes for a value although it starts with "-": its own negative numbers
#: (``-5``, ``-.5``) and times before now (``-5m``, ``-1h30m``, see :mod:`kva.timerange`).
_NEGATIVE_VALUE = re.compile(r"^-\d+$|^-\d*\.\d+$|^-(\d+(ms|s|m|h|d))+$")


def accept_relative_times(parser: argparse.ArgumentParser) -> None:
    """Let ``parser``'s flags take ``-5m``-style values (``--from -5m``), which argparse
    would otherwise read as an unknown option (``expected one argument``)."""
    parser._negative_number_matcher = _NEGATIVE_VALUE  # argparse's hook for "-5" values


def settings_from_args(model: type[SettingsT], args: argparse.Namespace) -> SettingsT:
    """Build ``model`` from parsed flags (flags win over ``KVA_*`` environment variables)."""
    values = {
        name: getattr(args, name)
        for name in model.model_fields
        if getattr(args, name, None) is not None
    }
    try:
        return model(**values)
    except ValidationError as exc:
        raise SettingsError(format_validation_error(exc, model)) from None


def format_validation_error(exc: ValidationError, model: type[BaseSettings] | None = None) -> str:
    """A short, human message: one line per bad setting, naming flag and variable."""
    lines = ["invalid settings:"]
    for error in exc.errors():
        if not error["loc"]:  # a check across settings (a model validator): its message alone
            lines.append("  " + str(error["msg"]).removeprefix("Value error, "))
            continue
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        known = model is not None and field in model.model_fields
        flag = flag_of(field, model.model_fields[field]) if known and model else "--" + field
        env = env_names(model, field)[0] if known and model else field
        shown = error.get("input")
        value = "" if isinstance(shown, dict) else f" (got {shown!r})"
        lines.append(f"  {flag} / {env}: {error['msg']}{value}")
    return "\n".join(lines)


def _help(model: type[BaseSettings], name: str, info: FieldInfo) -> str:
    text = info.description or name.replace("_", " ")
    if info.is_required():
        return f"{text} [env {env_names(model, name)[0]}; required]".replace("%", "%%")
    default = info.get_default(call_default_factory=True)
    shown = "none" if default in (None, [], ()) else default
    return f"{text} [env {env_names(model, name)[0]}; default: {shown}]".replace("%", "%%")


def _literal_choices(annotation: Any) -> list[str]:
    if typing.get_origin(annotation) is typing.Literal:
        return [str(arg) for arg in typing.get_args(annotation)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if choices := _literal_choices(arg):
                return choices
    return []


def _is_bool(annotation: Any) -> bool:
    return annotation is bool


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return origin in (list, tuple)
