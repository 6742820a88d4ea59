"""Fixtures of the model-builder tests: compiled models from the session's repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ov_core() -> Any:
    import openvino as ov

    return ov.Core()


@pytest.fixture(scope="session")
def mobilenet(built_models: Path, ov_core: Any) -> Any:
    """The built mobilenet_v2, compiled for the CPU."""
    return ov_core.compile_model(str(built_models / "mobilenet_v2" / "1" / "model.xml"), "CPU")


@pytest.fixture(scope="session")
def imagenet_labels(built_models: Path) -> list[str]:
    labels: list[str] = json.loads(
        (built_models / "mobilenet_v2" / "1" / "labels.json").read_text()
    )
    return labels


@pytest.fixture(scope="session")
def blazeface(built_models: Path, ov_core: Any) -> Any:
    """The built blazeface, compiled for the CPU."""
    return ov_core.compile_model(str(built_models / "blazeface" / "1" / "model.xml"), "CPU")


@pytest.fixture(scope="session")
def person(built_models: Path, ov_core: Any) -> Any:
    """The built person detector, compiled for the CPU."""
    return ov_core.compile_model(str(built_models / "person" / "1" / "model.xml"), "CPU")
