"""Model builders: each writes one model version into a model repository.

``BUILDERS`` maps a model name to ``build(base_path) -> version folder``;
``build_model(name, base_path, force=False)`` runs one by name.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from tfserving.modelbuild import half_plus_two

BUILDERS: dict[str, Callable[[Path], Path]] = {
    "half_plus_two": half_plus_two.build,
}


def build_model(name: str, base_path: Path, force: bool = False) -> Path:
    """Build model ``name`` into ``base_path`` (kept when already built, unless ``force``)."""
    try:
        builder = BUILDERS[name]
    except KeyError:
        known = ", ".join(sorted(BUILDERS))
        raise KeyError(f"unknown model {name!r}; known: {known}") from None
    if force:
        shutil.rmtree(Path(base_path) / name, ignore_errors=True)
    return builder(Path(base_path))
