"""Encoded image headers (JPEG, PNG): what an image claims to be, read before decoding.

Shared by the services that must refuse a small file claiming a huge image
(a "decompression bomb") without allocating it.
"""

from __future__ import annotations

import struct

JPEG_MAGIC = b"\xff\xd8"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageError(ValueError):
    """The bytes are not an acceptable JPEG/PNG image."""


def image_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from a JPEG or PNG header.

    Raises:
        ImageError: not a JPEG/PNG, or the header is truncated/corrupt.
    """
    if data.startswith(PNG_MAGIC):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("corrupt PNG header")
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(JPEG_MAGIC):
        return _jpeg_size(data)
    raise ImageError("unsupported image format: only JPEG and PNG are accepted")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ImageError("corrupt JPEG: bad marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise ImageError("corrupt JPEG: bad segment length")
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    raise ImageError("corrupt JPEG: no frame header found")
