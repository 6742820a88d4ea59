"""The camera file: reading it (bounded, safe YAML) and noticing when it changes.

The camera file is a YAML (or JSON) list of cameras, or ``{"cameras": [...]}``.
``kva produce`` reads each entry's source settings from it; ``kva consume`` reads
the same entries' zones and counting lines (:mod:`kva.scene`). Both read it with
:func:`read_camera_entries` and watch it with :class:`CameraFileWatch`, so a file
one of them accepts the other reads the same way.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

#: A camera file larger than this is refused (it is a short list of cameras).
MAX_CAMERA_FILE_BYTES = 1024 * 1024
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CameraFileError(ValueError):
    """A camera file that cannot be read or parsed (the message says why)."""


def read_camera_entries(path: Path) -> list[dict[str, Any]]:
    """The entries of the camera file at ``path`` (see :func:`parse_camera_entries`).

    Raises:
        CameraFileError: missing, too big, unreadable or unparsable file.
    """
    try:
        size = path.stat().st_size
        if size > MAX_CAMERA_FILE_BYTES:
            raise CameraFileError(
                f"camera file {path}: {size} bytes is more than {MAX_CAMERA_FILE_BYTES}"
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CameraFileError(f"camera file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CameraFileError(f"camera file {path}: cannot read it: {exc}") from None
    return parse_camera_entries(text, str(path))


def parse_camera_entries(text: str, name: str) -> list[dict[str, Any]]:
    """The camera entries of a camera file's text: mappings with text keys, each with an
    ``id`` (``cam<index>`` when the entry gives none).

    Raises:
        CameraFileError: too long, not YAML/JSON, or not a list of mappings.
    """
    if len(text) > MAX_CAMERA_FILE_BYTES:
        raise CameraFileError(
            f"camera file {name}: {len(text)} characters is more than {MAX_CAMERA_FILE_BYTES}"
        )
    try:
        # JSON is YAML too. libyaml bounds the nesting depth and scans ``[[[[...`` in linear
        # time; the pure-Python scanner takes seconds for 20,000 ``[`` then overflows the stack.
        data = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise CameraFileError(f"camera file {name}: not valid YAML/JSON: {exc}") from None
    except RecursionError:
        # PyYAML's composer recurses once per nesting level: ``[[[[...`` exhausts the stack.
        raise CameraFileError(f"camera file {name}: nested too deeply") from None
    if isinstance(data, dict) and set(data) == {"cameras"}:
        data = data["cameras"]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise CameraFileError(
            f"camera file {name}: expected a list of cameras or {{cameras: [...]}}"
        )
    entries = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise CameraFileError(f"camera file {name}: entry {index} is not a mapping")
        odd_keys = [key for key in entry if not isinstance(key, str)]
        if odd_keys:
            # ``CameraConfig(**entry)`` would raise TypeError: keywords must be strings.
            raise CameraFileError(
                f"camera file {name}, entry {index}: keys must be text, not {odd_keys[0]!r:.40}"
            )
        entries.append({"id": f"cam{index}", **entry})
    return entries


#: What tells one version of the camera file from another: mtime, size and a content digest.
Stamp = tuple[int, int, bytes]


class CameraFileWatch:
    """Tells when the camera file changed and is worth reading.

    A change is a new modification time, size *or content*: two saves of the same size
    within the file system's time granularity have the same mtime, so the content's
    digest is compared too (the file is at most ``MAX_CAMERA_FILE_BYTES``, read per poll).

    ``what`` names what the reader keeps when the file is not usable, for its log lines
    (``"cameras"``, ``"zones and lines"``).
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._stamp: Stamp | None = None

    def _current_stamp(self) -> Stamp | None:
        try:
            stat = self.path.stat()
            with self.path.open("rb") as file:
                digest = hashlib.sha256(file.read(MAX_CAMERA_FILE_BYTES + 1)).digest()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, digest

    def mark(self) -> None:
        """Remember the file as it is now (call when reading it outside :meth:`changed`)."""
        self._stamp = self._current_stamp()

    def changed(self) -> bool:
        """True when the file changed since the last call and should be read again.

        A file that disappeared or is empty is not worth reading: that is logged and the
        reader keeps what it has.
        """
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None:
            logger.warning(
                "camera file %s disappeared: keeping the current %s", self.path, self.what
            )
            return False
        if stamp[1] == 0:
            # An editor that saves in place truncates the file first: an empty file is a save
            # in progress, not "no cameras". ``[]`` stops every camera.
            logger.warning(
                "camera file %s is empty (a save in progress?): keeping the current %s;"
                " write [] to stop every camera",
                self.path,
                self.what,
            )
            return False
        return True
