"""Encoded images (JPEG/PNG) sent to image models: size check, decode, RGB, resize.

The image size is read from the header *before* decoding, so a small file
claiming a huge image is refused without allocating it.
"""

from __future__ import annotations

import struct

import numpy as np

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageError(ValueError):
    """The bytes are not an acceptable JPEG/PNG image (maps to HTTP 400)."""


def image_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from a JPEG or PNG header.

    Raises:
        ImageError: not a JPEG/PNG, or the header is truncated/corrupt.
    """
    if data.startswith(_PNG_MAGIC):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("corrupt PNG header")
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
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


def decode_image(data: bytes, height: int, width: int, max_pixels: int) -> np.ndarray:
    """Decode JPEG/PNG ``data`` to RGB uint8 ``[height, width, 3]`` (stretched to fit).

    Args:
        data: the encoded image.
        height: target height (the model input's H).
        width: target width (the model input's W).
        max_pixels: refuse images with more pixels than this.

    Raises:
        ImageError: unsupported, oversized or corrupt image.
    """
    import cv2

    src_w, src_h = image_size(data)
    if src_w <= 0 or src_h <= 0:
        raise ImageError(f"image has no pixels ({src_w}x{src_h})")
    if src_w * src_h > max_pixels:
        raise ImageError(f"image {src_w}x{src_h} has more than {max_pixels} pixels")
    factor = _reduction(data, src_w, src_h, width, height)
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
             4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}  # fmt: skip
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags[factor])
    want_h, want_w = -(-src_h // factor), -(-src_w // factor)
    # (EXIF orientation is applied, so width and height may come back swapped)
    if decoded is None or decoded.shape[:2] not in ((want_h, want_w), (want_w, want_h)):
        raise ImageError("corrupt image: cannot be decoded")
    rgb = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    if rgb.shape[:2] != (height, width):
        shrinking = rgb.shape[0] * rgb.shape[1] > height * width
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (width, height), interpolation=interpolation)
    return np.ascontiguousarray(rgb)


def _reduction(data: bytes, src_w: int, src_h: int, width: int, height: int) -> int:
    """How much smaller a JPEG may be decoded (libjpeg scales by 1/2, 1/4, 1/8 for free).

    The decoded image keeps at least twice the target size, so the final
    area resize still averages enough pixels.
    """
    if not data.startswith(b"\xff\xd8"):
        return 1
    for factor in (8, 4, 2):
        if src_w // factor >= 2 * width and src_h // factor >= 2 * height:
            return factor
    return 1
