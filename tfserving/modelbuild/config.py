"""Settings of ``kva models``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from kva.settings import KvaSettings


class ModelsSettings(KvaSettings):
    """Where ``kva models`` builds the model repository (``KVA_CACHE_DIR`` moves it for all)."""

    command: ClassVar[str] = "models"

    models_dir: Path | None = Field(
        None,
        json_schema_extra={"flag": "--base-path", "aliases": ["--models-dir"], "metavar": "DIR"},
        description="model repository folder (default: $KVA_CACHE_DIR/models, "
        "else ~/.cache/kva/models)",
    )

    def base_path(self) -> Path:
        """The configured folder, else the default one in kva's cache."""
        from kva.paths import models_dir

        return self.models_dir.expanduser() if self.models_dir else models_dir()
