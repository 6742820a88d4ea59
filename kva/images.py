"""Image safety, the one home for it: what encoded bytes (JPEG, PNG) claim, checked before decoding.

Every service that decodes an image someone else sent runs :func:`check_image`
first: the magic bytes, the size read from the header (a few hundred bytes may
claim a 30000x30000 image that would cost gigabytes to allocate), and for JPEG
the end-of-image marker (a truncated JPEG decodes "successfully" with a grey
bottom while libjpeg writes an unthrottled warning to stderr). A
:class:`PixelBudget` bounds the decoding work of a whole request, not only of
one image.
"""

from __future__ import annotations

import struct

JPEG_MAGIC = b"\xff\xd8"
#: SOI followed by the first marker: what a real JPEG starts with.
JPEG_START = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


#: A complete JPEG ends with EOI; a few bytes of padding after it are tolerated.
JPEG_END = b"\xff\xd9"
JPEG_END_WINDOW = 64
#: Largest image decoded by default (8K UHD fits): about 100 MB of BGR pixels.
MAX_DECODE_PIXELS = 1 << 25


class ImageError(ValueError):
    """The bytes are not an acceptable JPEG/PNG image."""


#: Content types kva serves as images, with the signature their payload must start with.
#: Anything else (text/html, image/svg+xml, ...) would be served from the viewer's origin.
IMAGE_SIGNATURES = {"image/jpeg": JPEG_MAGIC, "image/png": PNG_MAGIC}


def check_image(
    data: bytes, max_pixels: int = MAX_DECODE_PIXELS, *, jpeg_only: bool = False
) -> tuple[int, int]:
    """``(width, height)`` of an image that is safe to decode; read from the header only.

    Args:
        data: the encoded image.
        max_pixels: refuse images that claim more pixels than this.
        jpeg_only: refuse anything but a complete JPEG (Kafka frames are JPEG).

    Raises:
        ImageError: the reason, in words a log line can carry.
    """
    if jpeg_only and not data.startswith(JPEG_START):
        raise ImageError("payload is not JPEG")
    width, height = image_size(data)
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(f"image claims {width}x{height} pixels (limit {max_pixels})")
    if (
        data.startswith(JPEG_MAGIC)
        and data.rfind(JPEG_END, max(0, len(data) - JPEG_END_WINDOW)) < 0
    ):
        raise ImageError("JPEG is truncated (no end-of-image marker)")
    return width, height


class PixelBudget:
    """The pixels one request may decode, over all its images (one per request, not thread-safe).

    A 16 MB request can carry a hundred small files that each claim the largest
    allowed image; the budget bounds the work of the whole request.
    """

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self.spent = 0

    def check(self, data: bytes, *, jpeg_only: bool = False) -> tuple[int, int]:
        """:func:`check_image` against what is left, then count the image's pixels as spent."""
        left = self.max_pixels - self.spent
        try:
            width, height = check_image(data, left, jpeg_only=jpeg_only)
        except ImageError as exc:
            if left < self.max_pixels and "pixels (limit" in str(exc):
                raise ImageError(
                    f"{exc}: the request's images together may have at most "
                    f"{self.max_pixels} pixels"
                ) from None
            raise
        self.spent += width * height
        return width, height


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
