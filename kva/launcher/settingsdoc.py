"""Every setting of every ``kva`` command as Markdown tables, from the CLI itself.

``python -m kva.launcher.settingsdoc > docs/settings.md`` regenerates the reference; a
test keeps the committed file in step with the code.
"""

from __future__ import annotations

import argparse
import re
import sys

from kva.launcher.cli import build_parser
from kva.settings import env_names, settings_models

_ENV_DEFAULT = re.compile(
    r"^(?P<text>.*?)\s*\[env (?P<env>\S+); (?:default: (?P<default>.*)|required)\]$", re.S
)


def _subcommands(
    parser: argparse.ArgumentParser, prefix: str = "kva"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((f"{prefix} {name}", sub))
                found.extend(_subcommands(sub, f"{prefix} {name}"))
    return found


def _rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if (
            not action.option_strings
            or action.help in (None, argparse.SUPPRESS)
            or action.dest == "help"
        ):
            continue
        flags = ", ".join(f"`{flag}`" for flag in action.option_strings)
        text = " ".join(str(action.help).replace("%%", "%").split())
        match = _ENV_DEFAULT.match(text)
        env, default = ("—", "—")
        if match:
            shown = "required" if match["default"] is None else f"`{match['default']}`"
            text, env, default = match["text"], f"`{match['env']}`", shown
        if action.choices and not isinstance(action, argparse._SubParsersAction):
            text += " (" + ", ".join(f"`{c}`" for c in action.choices) + ")"
        rows.append(f"| {flags} | {env} | {default} | {text.replace('|', '&#124;')} |")
    return rows


def render() -> str:
    """The whole reference as Markdown."""
    lines = [
        "# Settings reference",
        "",
        "Generated from the `kva` command line (`python -m kva.launcher.settingsdoc`).",
        "Every flag is also an environment variable (flags win); secrets are environment-only.",
        "",
        "**One naming rule:** the variable of a flag is `KVA_` + the command + `_` + the flag,",
        "upper-case, dashes as underscores: `kva produce --jpeg-quality` is",
        "`KVA_PRODUCE_JPEG_QUALITY`, `kva serve --rest_api_port` is `KVA_SERVE_REST_API_PORT`.",
        "The settings every service shares (the Kafka connection, security and logging) are",
        "`KVA_` + the flag (`KVA_BOOTSTRAP_SERVER`, `KVA_LOG_LEVEL`), so one environment",
        "configures every service.",
        "",
    ]
    for name, parser in _subcommands(build_parser()):
        rows = _rows(parser)
        if not rows:
            continue
        lines += [
            f"## `{name}`",
            "",
            (parser.description or "").strip(),
            "",
            "| flag | environment | default | meaning |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
    lines += [
        "## Environment only",
        "",
        "| environment | meaning |",
        "| --- | --- |",
        "| `KVA_SASL_PASSWORD` | SASL password for every service that talks to Kafka |",
        "| `KVA_SSL_KEY_PASSWORD` | password of the client's TLS key |",
        "| `KVA_CACHE_DIR` | where Kafka jars and built models are kept (default `~/.cache/kva`) |",
        "",
        *_deprecated_rows(),
    ]
    return "\n".join(lines)


def _deprecated_rows() -> list[str]:
    """The names from before the rule, which still work for one release (with a warning)."""
    renamed: dict[str, list[str]] = {}
    for model in settings_models():
        for field in model.model_fields:
            new, old = env_names(model, field)
            if old is not None:
                renamed.setdefault(old, []).append(f"`{new}` (`kva {model.command}`)")
    return [
        "## Deprecated names",
        "",
        "These names from before the rule still work in this release, with a warning; they go in",
        "the next one.",
        "",
        "| old | new |",
        "| --- | --- |",
        *(f"| `{old}` | {', '.join(sorted(new))} |" for old, new in sorted(renamed.items())),
        "",
    ]


if __name__ == "__main__":
    sys.stdout.write(render())
