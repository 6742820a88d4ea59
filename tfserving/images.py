"""Encoded images (JPEG/PNG) sent to image models: decode, RGB, resize.

Nothing is decoded before :func:`kva.images.check_image` passed it (header size,
pixel limit, complete JPEG), so a small file claiming a huge image is refused
without allocating it. Given a :class:`kva.images.PixelBudget`, the limit is
what is left of the request's budget, and the image's pixels are spent from it.
"""

from __future__ import annotations

import numpy as np

from kva.images import JPEG_MAGIC, ImageError, PixelBudget, check_image

__all__ = ["ImageError", "decode_image"]


def decode_image(data: bytes, height: int, width: int, max_pixels: int | PixelBudget) -> np.ndarray:
    """Decode JPEG/PNG ``data`` to RGB uint8 ``[height, width, 3]`` (stretched to fit).

    Args:
        data: the encoded image.
        height: target height (the model input's H).
        width: target width (the model input's W).
        max_pixels: refuse images with more pixels than this, or: the request's
            budget, which refuses what exceeds the pixels left and spends the image's.

    Raises:
        ImageError: unsupported, oversized or corrupt image.
    """
    import cv2

    if isinstance(max_pixels, PixelBudget):
        src_w, src_h = max_pixels.check(data)
    else:
        src_w, src_h = check_image(data, max_pixels)
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
    if not data.startswith(JPEG_MAGIC):
        return 1
    for factor in (8, 4, 2):
        if src_w // factor >= 2 * width and src_h // factor >= 2 * height:
            return factor
    return 1
