"""A strict reader for TF Serving's ``model_config_list`` protobuf text format.

Example (the format ``tensorflow_model_server --model_config_file`` reads)::

    model_config_list {
      config {
        name: "half_plus_two"
        base_path: "/models/half_plus_two"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 123 versions: 124 } }
        version_labels { key: "stable" value: 123 }
      }
    }

Unknown fields, duplicates, wrong value types and syntax errors are reported
with the file name and line number. A relative ``base_path`` is taken
relative to the config file's folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

PLATFORMS = ("tensorflow", "openvino")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_TOKEN_RE = re.compile(
    r"""(?P<ws>[ \t\r\f\v]+)|(?P<nl>\n)|(?P<comment>\#[^\n]*)
    |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[{}<>:,;\[\]])""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


class ModelConfigError(ValueError):
    """The config file is not a valid ``model_config_list`` (message names file and line)."""


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions of a model are served (TF Serving's ``model_version_policy``)."""

    kind: Literal["latest", "all", "specific"] = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int]) -> list[int]:
        """The versions to serve out of those present on disk."""
        if self.kind == "all":
            return sorted(available)
        if self.kind == "specific":
            return sorted(v for v in available if v in self.versions)
        return sorted(available)[-self.num_versions :]


@dataclass(frozen=True)
class ModelConfig:
    """One served model."""

    name: str
    base_path: Path
    platform: str = "openvino"
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    version_labels: dict[str, int] = field(default_factory=dict)


class _Ident(str):
    """An unquoted word (an enum value or true/false), not a string."""


@dataclass
class _Token:
    kind: str
    text: str
    line: int


@dataclass
class _Field:
    name: str
    line: int
    value: object  # str | int | float | list[_Field] (a message)
    is_message: bool


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.tokens = self._tokenize(text)
        self.pos = 0

    def error(self, line: int, message: str) -> ModelConfigError:
        return ModelConfigError(f"{self.source}:{line}: {message}")

    def _tokenize(self, text: str) -> list[_Token]:
        tokens: list[_Token] = []
        line, pos = 1, 0
        while pos < len(text):
            match = _TOKEN_RE.match(text, pos)
            if match is None:
                raise self.error(line, f"unexpected character {text[pos]!r}")
            kind = match.lastgroup or ""
            if kind == "nl":
                line += 1
            elif kind not in ("ws", "comment"):
                tokens.append(_Token(kind, match.group(), line))
            pos = match.end()
        tokens.append(_Token("eof", "", line))
        return tokens

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, text: str) -> _Token:
        token = self.take()
        if token.text != text:
            shown = repr(token.text) if token.kind != "eof" else "end of file"
            raise self.error(token.line, f"expected {text!r}, found {shown}")
        return token

    def message(self, closing: str | None) -> list[_Field]:
        fields: list[_Field] = []
        while True:
            token = self.peek()
            if closing is None and token.kind == "eof":
                return fields
            if closing is not None and token.text == closing:
                self.take()
                return fields
            if token.kind == "eof":
                raise self.error(token.line, f"expected {closing!r}, found end of file")
            fields.append(self.field())
            if self.peek().text in (",", ";"):
                self.take()

    def field(self) -> _Field:
        name = self.take()
        if name.kind != "ident":
            raise self.error(name.line, f"expected a field name, found {name.text!r}")
        colon = self.peek().text == ":"
        if colon:
            self.take()
        opening = self.peek()
        if opening.text in ("{", "<"):
            self.take()
            body = self.message("}" if opening.text == "{" else ">")
            return _Field(name.text, name.line, body, True)
        if not colon:
            raise self.error(opening.line, f"expected ':' or '{{' after {name.text!r}")
        return _Field(name.text, name.line, self.scalar(), False)

    def scalar(self) -> object:
        token = self.take()
        if token.kind == "string":
            text = _unquote(token.text)
            while self.peek().kind == "string":  # adjacent strings concatenate
                text += _unquote(self.take().text)
            return text
        if token.kind == "number":
            lowered = token.text.lower()
            if re.fullmatch(r"[-+]?(0x[0-9a-f]+|\d+)", lowered):
                return int(lowered, 0) if "x" in lowered else int(lowered)
            return float(lowered)
        if token.kind == "ident":
            return _Ident(token.text)
        if token.text == "[":
            raise self.error(token.line, "list syntax [...] is not supported: repeat the field")
        raise self.error(token.line, f"expected a value, found {token.text or 'end of file'!r}")


def _unquote(quoted: str) -> str:
    body = quoted[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Reader:
    """Checks a parsed message against the expected fields."""

    def __init__(self, parser: _Parser) -> None:
        self.parser = parser

    def fields(
        self, fields: list[_Field], where: str, allowed: dict[str, tuple[str, bool]]
    ) -> dict[str, list[_Field]]:
        """Group ``fields`` by name; ``allowed`` maps name -> (kind, repeated)."""
        grouped: dict[str, list[_Field]] = {}
        for item in fields:
            if item.name not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.parser.error(
                    item.line, f"unknown field {item.name!r} in {where} (known: {known})"
                )
            kind, repeated = allowed[item.name]
            if (kind == "message") != item.is_message:
                expected = "a { ... } block" if kind == "message" else f"a {kind} value"
                raise self.parser.error(item.line, f"{where}.{item.name} must be {expected}")
            if kind == "string" and (
                not isinstance(item.value, str) or isinstance(item.value, _Ident)
            ):
                raise self.parser.error(item.line, f"{where}.{item.name} must be a quoted string")
            if kind == "int" and (isinstance(item.value, bool) or not isinstance(item.value, int)):
                raise self.parser.error(item.line, f"{where}.{item.name} must be an integer")
            if item.name in grouped and not repeated:
                raise self.parser.error(item.line, f"{where}.{item.name} given twice")
            grouped.setdefault(item.name, []).append(item)
        return grouped


def parse_model_config(
    text: str, source: str = "<model config>", root: Path | None = None
) -> list[ModelConfig]:
    """Parse the text of a ``model_config_list`` file into model configs.

    Args:
        text: the file contents.
        source: shown in error messages (the file name).
        root: folder relative ``base_path`` values are resolved against.

    Raises:
        ModelConfigError: with ``source:line:`` and what is wrong.
    """
    parser = _Parser(text, source)
    reader = _Reader(parser)
    top = reader.fields(
        parser.message(None), "ModelServerConfig", {"model_config_list": ("message", False)}
    )
    if "model_config_list" not in top:
        raise parser.error(1, "no model_config_list { ... } block")
    block = top["model_config_list"][0]
    listing = reader.fields(_msg(block), "model_config_list", {"config": ("message", True)})
    configs = [_model(reader, item, root) for item in listing.get("config", [])]
    if not configs:
        raise parser.error(block.line, "model_config_list has no config { ... } entry")
    seen: set[str] = set()
    for config, item in zip(configs, listing["config"], strict=True):
        if config.name in seen:
            raise parser.error(item.line, f"model name {config.name!r} configured twice")
        seen.add(config.name)
    return configs


def load_model_config(path: Path) -> list[ModelConfig]:
    """Read and parse a ``model_config_list`` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelConfigError(f"{path}: cannot read model config file: {exc}") from None
    return parse_model_config(text, str(path), path.resolve().parent)


def _msg(item: _Field) -> list[_Field]:
    assert isinstance(item.value, list)  # noqa: S101 - guaranteed by _Reader.fields
    return item.value


def _model(reader: _Reader, item: _Field, root: Path | None) -> ModelConfig:
    error = reader.parser.error
    allowed = {
        "name": ("string", False),
        "base_path": ("string", False),
        "model_platform": ("string", False),
        "model_version_policy": ("message", False),
        "version_labels": ("message", True),
    }
    got = reader.fields(_msg(item), "config", allowed)
    for required in ("name", "base_path"):
        if required not in got:
            raise error(item.line, f"config is missing {required!r}")
    name = str(got["name"][0].value)
    if not _NAME_RE.match(name):
        raise error(got["name"][0].line, f"model name {name!r} may use only letters, digits, _ . -")
    base = Path(str(got["base_path"][0].value)).expanduser()
    if not str(got["base_path"][0].value):
        raise error(got["base_path"][0].line, "base_path is empty")
    if not base.is_absolute() and root is not None:
        base = root / base
    platform = str(got["model_platform"][0].value) if "model_platform" in got else "openvino"
    if platform not in PLATFORMS:
        raise error(
            got["model_platform"][0].line,
            f"model_platform must be one of {PLATFORMS}, got {platform!r}",
        )
    policy = (
        _policy(reader, got["model_version_policy"][0])
        if "model_version_policy" in got
        else VersionPolicy()
    )
    labels: dict[str, int] = {}
    for entry in got.get("version_labels", []):
        pair = reader.fields(
            _msg(entry), "version_labels", {"key": ("string", False), "value": ("int", False)}
        )
        if "key" not in pair or "value" not in pair:
            raise error(entry.line, "version_labels needs both key and value")
        key, value = str(pair["key"][0].value), pair["value"][0].value
        assert isinstance(value, int)  # noqa: S101 - checked by _Reader.fields
        if not _NAME_RE.match(key):
            raise error(entry.line, f"version label {key!r} may use only letters, digits, _ . -")
        if value <= 0:
            raise error(entry.line, f"version label {key!r} must name a positive version")
        if key in labels:
            raise error(entry.line, f"version label {key!r} given twice")
        labels[key] = value
    return ModelConfig(name, base, platform, policy, labels)


def _policy(reader: _Reader, item: _Field) -> VersionPolicy:
    error = reader.parser.error
    got = reader.fields(
        _msg(item),
        "model_version_policy",
        {"latest": ("message", False), "all": ("message", False), "specific": ("message", False)},
    )
    if len(got) != 1:
        raise error(item.line, "model_version_policy needs exactly one of latest, all, specific")
    kind, (body,) = next(iter(got.items()))
    if kind == "all":
        reader.fields(_msg(body), "all", {})
        return VersionPolicy("all")
    if kind == "latest":
        fields = reader.fields(_msg(body), "latest", {"num_versions": ("int", False)})
        number = fields["num_versions"][0].value if "num_versions" in fields else 1
        assert isinstance(number, int)  # noqa: S101 - checked by _Reader.fields
        if number < 1:
            raise error(body.line, "latest.num_versions must be at least 1")
        return VersionPolicy("latest", num_versions=number)
    fields = reader.fields(_msg(body), "specific", {"versions": ("int", True)})
    versions = tuple(int(str(v.value)) for v in fields.get("versions", []))
    if not versions:
        raise error(body.line, "specific needs at least one versions: N")
    if any(v <= 0 for v in versions):
        raise error(body.line, "specific.versions must be positive integers")
    return VersionPolicy("specific", versions=versions)
