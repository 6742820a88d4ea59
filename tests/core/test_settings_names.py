"""One naming rule for every environment variable, and the old names as deprecated aliases."""

from __future__ import annotations

import logging

import pytest

from kva.launcher.cli import build_parser
from kva.launcher.settingsdoc import _subcommands
from kva.settings import KafkaSettings, current_env_names, env_names, settings_models

SHARED_FLAGS = {
    "--" + name.replace("_", "-") for name in KafkaSettings.model_fields
}  # every Kafka client's connection, security and logging flags


def _documented() -> list[tuple[str, str, str]]:
    """(command, flag, variable) for every flag the CLI documents with a variable."""
    found = []
    for name, parser in _subcommands(build_parser()):
        command = name.split()[1]
        for action in parser._actions:
            help_text = str(action.help or "")
            if action.option_strings and "[env " in help_text:
                variable = help_text.split("[env ", 1)[1].split(";", 1)[0]
                found.append((command, action.option_strings[0], variable))
    return found


def test_every_variable_follows_the_rule() -> None:
    documented = _documented()
    assert len(documented) > 80
    for command, flag, variable in documented:
        words = flag.lstrip("-").replace("-", "_").upper()
        expected = f"KVA_{words}" if flag in SHARED_FLAGS else f"KVA_{command.upper()}_{words}"
        assert variable == expected, (command, flag)


def test_the_producer_and_the_consumer_name_jpeg_quality_alike() -> None:
    variables = {(c, v) for c, f, v in _documented() if f == "--jpeg-quality"}
    assert variables == {
        ("produce", "KVA_PRODUCE_JPEG_QUALITY"),
        ("consume", "KVA_CONSUME_JPEG_QUALITY"),
    }


def test_no_old_name_is_a_current_name() -> None:
    build_parser()  # defines every command's settings
    current = current_env_names()
    olds = {env_names(m, f)[1] for m in settings_models() for f in m.model_fields} - {None}
    assert "KVA_JPEG_QUALITY" in olds and "KVA_SERVE_PORT" not in olds
    assert olds.isdisjoint(current)


def _producer_settings():
    from kva.producer.config import ProducerSettings

    return ProducerSettings()


def test_an_old_name_still_works_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KVA_JPEG_QUALITY", "55")
    with caplog.at_level(logging.WARNING, logger="kva.settings"):
        assert _producer_settings().jpeg_quality == 55
    assert "KVA_JPEG_QUALITY is deprecated: set KVA_PRODUCE_JPEG_QUALITY instead" in caplog.text


def test_the_new_name_wins_and_needs_no_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KVA_JPEG_QUALITY", "55")
    monkeypatch.setenv("KVA_PRODUCE_JPEG_QUALITY", "66")
    with caplog.at_level(logging.WARNING, logger="kva.settings"):
        assert _producer_settings().jpeg_quality == 66
    assert "deprecated" not in caplog.text


def test_a_shared_setting_is_one_variable_for_every_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kva.consumer.config import ConsumerSettings
    from kva.video.config import VideoSettings

    monkeypatch.setenv("KVA_BOOTSTRAP_SERVER", "kafka:9093")
    assert _producer_settings().bootstrap_server == "kafka:9093"
    assert ConsumerSettings(consume_passthrough=True).bootstrap_server == "kafka:9093"
    assert VideoSettings().bootstrap_server == "kafka:9093"
