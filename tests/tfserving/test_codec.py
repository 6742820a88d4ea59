"""Unit tests of the pieces under the HTTP layer: image header parsing and decoding, JSON codec."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kva.images import PixelBudget, image_size
from kva.tfserving.errors import InvalidArgument
from kva.tfserving.images import ImageError, decode_image
from kva.tfserving.tensors import TensorInfo, decode_predict_request, parse_json, to_json


def _encode(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, data = cv2.imencode(ext, image, params or [])
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    ("ext", "params"),
    [
        (".jpg", []),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        (".png", []),
    ],
)
def test_image_size_from_header(ext: str, params: list[int]) -> None:
    image = np.zeros((37, 53, 3), np.uint8)
    assert image_size(_encode(ext, image, params)) == (53, 37)


def test_decode_gray_png_to_rgb_and_resize() -> None:
    gray = np.full((10, 20), 200, np.uint8)
    out = decode_image(_encode(".png", gray), 8, 6, 10_000)
    assert out.shape == (8, 6, 3) and out.dtype == np.uint8 and int(out.min()) == 200


def test_decode_keeps_rgb_order() -> None:
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's BGR
    out = decode_image(_encode(".png", bgr), 4, 4, 100)
    assert out[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "only JPEG and PNG"),
        (b"\x89PNG\r\n\x1a\n", "corrupt PNG header"),
        (b"\xff\xd8\xff\xc0\x00\x01", "bad segment length"),
        (b"\xff\xd8\x00", "no frame header"),
    ],
)
def test_bad_headers(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        decode_image(data, 4, 4, 100)


def test_pixel_limit_checked_before_decoding() -> None:
    data = _encode(".jpg", np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ImageError, match=r"claims 100x100 pixels \(limit 9999\)"):
        decode_image(data, 4, 4, 9999)


def test_a_pixel_budget_spans_the_images_of_a_request() -> None:
    image = _encode(".png", np.zeros((10, 10, 3), np.uint8))  # 100 pixels, under 150
    budget = PixelBudget(150)
    assert decode_image(image, 4, 4, budget).shape == (4, 4, 3)
    with pytest.raises(ImageError, match="together may have at most 150 pixels"):
        decode_image(image, 4, 4, budget)
    assert decode_image(image, 4, 4, PixelBudget(150)).shape == (4, 4, 3)


def test_floats_written_in_shortest_form() -> None:
    values = np.array([0.1, 2.5, 1 / 3, np.nan], np.float32)
    out = to_json(values, "y")
    assert out[:3] == [0.1, 2.5, 0.33333334] and np.isnan(out[3])
    assert to_json(np.array([1, 2], np.int32), "c") == [1, 2]


def test_parse_json_errors() -> None:
    with pytest.raises(InvalidArgument, match="The document is empty"):
        parse_json(b"  \n")
    with pytest.raises(InvalidArgument, match="at offset 1"):
        parse_json(b"[}")
    assert parse_json(b"[NaN, -Infinity]")[1] == float("-inf")


def test_image_input_accepts_b64_raw_and_named_rows() -> None:
    info = TensorInfo("image", np.dtype(np.uint8), (-1, 4, 4, 3), (4, 4))
    seen: list[bytes] = []

    def recording_decoder(data: bytes, height: int, width: int) -> np.ndarray:
        seen.append(data)
        return np.zeros((height, width, 3), np.uint8)

    feeds, rows = decode_predict_request(
        {"instances": [{"image": {"b64": "aGk="}}, {"image": {"b64": "eW8="}}]},
        {"image": info},
        recording_decoder,
    )
    assert rows and feeds["image"].shape == (2, 4, 4, 3) and seen == [b"hi", b"yo"]
    feeds, rows = decode_predict_request(
        {"inputs": {"b64": "aGk"}}, {"image": info}, recording_decoder
    )
    assert not rows and feeds["image"].shape == (1, 4, 4, 3)  # padding optional
    raw = np.ones((1, 4, 4, 3), np.uint8).tolist()
    feeds, _ = decode_predict_request({"inputs": raw}, {"image": info}, recording_decoder)
    assert feeds["image"].dtype == np.uint8 and int(feeds["image"].sum()) == 48


def test_large_jpeg_decoded_reduced_matches_full_decode() -> None:
    import skimage.data

    large = cv2.resize(skimage.data.chelsea(), (1920, 1280), interpolation=cv2.INTER_CUBIC)
    data = _encode(".jpg", cv2.cvtColor(large, cv2.COLOR_RGB2BGR))
    fast = decode_image(data, 224, 224, 10_000_000)
    full = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    full = cv2.resize(
        cv2.cvtColor(full, cv2.COLOR_BGR2RGB), (224, 224), interpolation=cv2.INTER_AREA
    )
    assert fast.shape == (224, 224, 3)
    assert float(np.abs(fast.astype(int) - full.astype(int)).mean()) < 2.0


def test_exif_rotated_jpeg_is_decoded_upright() -> None:
    image = np.zeros((30, 60, 3), np.uint8)  # wide
    plain = _encode(".jpg", image)
    # APP1 Exif segment with one IFD entry: Orientation (0x0112) = 6 (rotate 90 degrees)
    tiff = b"II*\x00" + (8).to_bytes(4, "little") + (1).to_bytes(2, "little")
    tiff += b"\x12\x01" + (3).to_bytes(2, "little") + (1).to_bytes(4, "little")
    tiff += (6).to_bytes(2, "little") + b"\x00\x00" + (0).to_bytes(4, "little")
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    rotated = plain[:2] + app1 + plain[2:]
    assert image_size(rotated) == (60, 30)
    upright = cv2.imdecode(np.frombuffer(rotated, np.uint8), cv2.IMREAD_COLOR)
    assert upright.shape[:2] == (60, 30)  # OpenCV applies the orientation: 30 wide, 60 high
    out = decode_image(rotated, 10, 10, 10_000)
    assert out.shape == (10, 10, 3)
