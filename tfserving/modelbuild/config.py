"""Settings of ``kva models``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from kva.settings import KvaSettings


class ModelsSettings(KvaSettings):
    """Where ``kva models`` builds the model repository."""

    models_base_path: Path | None = Field(
        None,
        json_schema_extra={"flag": "--base-path", "metavar": "DIR"},
        description="model repository folder (default: $KVA_CACHE_DIR/models, "
        "else ~/.cache/kva/models)",
    )

    def base_path(self) -> Path:
        """The configured folder, else the default one in kva's cache."""
        from tfserving.modelbuild.repository import default_base_path

        return self.models_base_path.expanduser() if self.models_base_path else default_base_path()
