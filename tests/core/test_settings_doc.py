"""docs/settings.md lists every flag of every command, as the code has them."""

from __future__ import annotations

from pathlib import Path

from kva.launcher.settingsdoc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_the_settings_reference_is_up_to_date() -> None:
    assert DOC.read_text() == render(), (
        "regenerate: python -m kva.launcher.settingsdoc > docs/settings.md"
    )


def test_every_command_and_its_env_variables_are_documented() -> None:
    text = DOC.read_text()
    for command in (
        "kva broker",
        "kva serve",
        "kva models build",
        "kva produce",
        "kva consume",
        "kva video",
        "kva up",
    ):
        assert f"## `{command}`" in text
    assert "`KVA_BOOTSTRAP_SERVER`" in text and "`KVA_VIDEO_TOKEN`" in text
