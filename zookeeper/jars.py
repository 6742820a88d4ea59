"""Resolve the Kafka broker's jars from Maven Central with ``mvn``, once, into a cache.

The cache lives outside the repository (``$KVA_CACHE_DIR`` or
``~/.cache/kva``), one folder per hash of ``pom.xml``, and is reused as long
as the pom does not change.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from kva.paths import kafka_jars_dir

logger = logging.getLogger(__name__)

_COMPLETE_MARKER = ".complete"


class ToolMissing(RuntimeError):
    """A required program (``java``, ``mvn``) is not installed."""


def pom_path() -> Path:
    """The ``pom.xml`` shipped in this package."""
    return Path(str(resources.files("kva.zookeeper").joinpath("pom.xml")))


def require_tool(name: str, hint: str) -> str:
    """Path of program ``name`` or a :class:`ToolMissing` that says how to install it."""
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"'{name}' not found on PATH: {hint}")
    return found


def jar_dir(cache: Path | None = None) -> Path:
    """The folder with the resolved jars, resolving them with ``mvn`` if needed."""
    pom = pom_path()
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    target = cache / f"kafka-jars-{digest}" if cache else kafka_jars_dir(digest)
    if (target / _COMPLETE_MARKER).exists():
        return target
    _resolve(pom, target)
    return target


def _resolve(pom: Path, target: Path) -> None:
    mvn = require_tool("mvn", "install Maven (Debian: apt-get install -y maven)")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    logger.info("resolving Apache Kafka jars with Maven into %s (first run only)", target)
    command = [
        mvn,
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]
    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if process.stdout is None:
        raise RuntimeError("mvn produced no output pipe")
    downloaded = 0
    tail: list[str] = []
    for line in process.stdout:
        tail = (tail + [line.rstrip()])[-30:]
        if "Downloaded from" in line:
            downloaded += 1
            if downloaded % 10 == 0:
                logger.info("  ... %d files downloaded", downloaded)
    if process.wait() != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError("mvn could not resolve the Kafka jars:\n" + "\n".join(tail))
    (staging / _COMPLETE_MARKER).write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    logger.info("Kafka jars ready: %d jars", len(list(target.glob("*.jar"))))
