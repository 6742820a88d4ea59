"""Class names of a model: from ``--labels`` (file or URL) or the server's labels endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import requests

MAX_LABELS_BYTES = 4 * 1024 * 1024
MAX_CLASSES = 100_000


class LabelsError(ValueError):
    """A labels source cannot be read or parsed."""


def load_labels(source: str, timeout: float = 5.0) -> list[str]:
    """Read class names from a path or an http(s) URL.

    Accepted forms: a JSON list of names (index = class id), a JSON object
    ``{"<id>": "name"}``, or plain text with one name per line.
    """
    if source.startswith(("http://", "https://")):
        text = _fetch(source, timeout)
    else:
        path = Path(source)
        try:
            if path.stat().st_size > MAX_LABELS_BYTES:
                raise LabelsError(f"{source}: larger than {MAX_LABELS_BYTES} bytes")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LabelsError(f"cannot read labels {source}: {exc}") from exc
    return parse_labels(text, source)


def parse_labels(text: str, source: str = "labels") -> list[str]:
    """Parse the text of a labels document (see :func:`load_labels`)."""
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            document = json.loads(stripped)
        except ValueError as exc:
            raise LabelsError(f"{source}: not valid JSON: {exc}") from exc
        if isinstance(document, list) and all(isinstance(x, str) for x in document):
            return document
        if isinstance(document, dict):
            return _from_mapping(document, source)
        raise LabelsError(f"{source}: expected a JSON list of names or an object id -> name")
    names = [line.strip() for line in stripped.splitlines()]
    if not stripped or len(names) > MAX_CLASSES:
        raise LabelsError(f"{source}: no labels (or more than {MAX_CLASSES})")
    return names


def _from_mapping(document: dict[str, object], source: str) -> list[str]:
    try:
        pairs = {int(k): str(v) for k, v in document.items()}
    except ValueError as exc:
        raise LabelsError(f"{source}: object keys must be class ids") from exc
    if not pairs or min(pairs) < 0 or max(pairs) >= MAX_CLASSES:
        raise LabelsError(f"{source}: class ids must be 0..{MAX_CLASSES - 1}")
    return [pairs.get(i, str(i)) for i in range(max(pairs) + 1)]


def _fetch(url: str, timeout: float) -> str:
    try:
        with requests.get(url, timeout=(timeout, timeout), stream=True) as response:
            response.raise_for_status()
            body = response.raw.read(MAX_LABELS_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise LabelsError(f"cannot fetch labels {url}: {exc}") from exc
    if len(body) > MAX_LABELS_BYTES:
        raise LabelsError(f"{url}: larger than {MAX_LABELS_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LabelsError(f"{url}: not UTF-8") from exc
