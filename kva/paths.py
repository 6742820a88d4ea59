"""Where kva keeps what it builds or resolves: one home for cache and model paths.

Everything lives under one cache folder, ``$KVA_CACHE_DIR`` or
``$XDG_CACHE_HOME/kva`` (``~/.cache/kva``), outside the repository.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache folder: ``$KVA_CACHE_DIR``, else ``$XDG_CACHE_HOME/kva``, else ``~/.cache/kva``."""
    configured = os.environ.get("KVA_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kva"


def models_dir() -> Path:
    """The default model repository that ``kva models build`` fills and ``kva up`` serves."""
    return cache_root() / "models"


def demo_video() -> Path:
    """``vtest.avi``, the demo video ``scripts/fetch-demo-video.sh`` puts in the cache."""
    return cache_root() / "demo" / "vtest.avi"


def kafka_jars_dir(pom_digest: str) -> Path:
    """The folder of the Kafka jars resolved from a ``pom.xml`` with this digest."""
    return cache_root() / f"kafka-jars-{pom_digest}"
