"""Errors of the model builder; each message tells the user what to do."""

from __future__ import annotations


class ModelBuildError(RuntimeError):
    """A model could not be built."""


class UnknownModel(ModelBuildError):
    """No builder has that name."""


class SourceMissing(ModelBuildError):
    """A package carrying the weights is not installed (or holds other files)."""


class BasePathError(ModelBuildError):
    """The model repository folder cannot be created or written."""
