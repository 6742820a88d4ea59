"""Build real trained models into an OpenVINO model repository, offline (``kva models``).

``BUILDERS[name](base_path)`` writes ``<base_path>/<name>/<version>/`` and
returns that folder; :func:`build_model` wraps it with caching and atomic
installation. OpenVINO is imported only when a model is built.
"""

from kva.tfserving.modelbuild.errors import (
    BasePathError,
    ModelBuildError,
    SourceMissing,
    UnknownModel,
)
from kva.tfserving.modelbuild.registry import (
    BUILDERS,
    MODELS,
    ModelSpec,
    build_model,
    get_spec,
    is_built,
    version_dir,
)

__all__ = [
    "BUILDERS",
    "MODELS",
    "BasePathError",
    "ModelBuildError",
    "ModelSpec",
    "SourceMissing",
    "UnknownModel",
    "build_model",
    "get_spec",
    "is_built",
    "version_dir",
]
