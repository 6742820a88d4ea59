"""Compressed request bodies, decoded without a server: formats, limits, bad data."""

from __future__ import annotations

import gzip
import zlib

import pytest

from kva.tfserving.encoding import decode_body
from kva.tfserving.errors import InvalidArgument, PayloadTooLarge

DATA = b'{"instances": [[1.0], [2.0]]}' * 50


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (DATA, None),
        (DATA, "identity"),
        (gzip.compress(DATA), "gzip"),
        (gzip.compress(DATA), "GZIP"),
        (gzip.compress(DATA), "x-gzip"),
        (zlib.compress(DATA), "deflate"),  # what tritonclient sends
        (_raw_deflate(DATA), "deflate"),  # what some other clients send under the same name
        (gzip.compress(DATA[:100]) + gzip.compress(DATA[100:]), "gzip"),  # two members
        (gzip.compress(zlib.compress(DATA)), "deflate, gzip"),  # applied in this order
    ],
    ids=["none", "identity", "gzip", "case", "x-gzip", "zlib", "raw-deflate", "members", "both"],
)
def test_decodes(body: bytes, encoding: str | None) -> None:
    assert decode_body(body, encoding, len(DATA)) == DATA


def test_a_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(bytes(50_000_000))  # 50 MB of zeros in ~50 kB
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge, match="decompressed request body exceeds 1000000 bytes"):
        decode_body(bomb, "gzip", 1_000_000)
    assert decode_body(gzip.compress(DATA), "gzip", len(DATA)) == DATA  # exactly at the limit


@pytest.mark.parametrize(
    ("body", "encoding", "message"),
    [
        (DATA, "gzip", "Content-Encoding gzip: the body is not gzip data"),
        (DATA, "deflate", "Content-Encoding deflate: the body is not deflate data"),
        (gzip.compress(DATA)[:-12], "gzip", "Content-Encoding gzip: the compressed body is truncated"),
        (b"", "gzip", "truncated"),
        (DATA, "br", "Unsupported Content-Encoding: br (gzip, deflate and identity are)"),
    ],
    ids=["not-gzip", "not-deflate", "truncated", "empty", "brotli"],
)  # fmt: skip
def test_bad_bodies(body: bytes, encoding: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_body(body, encoding, 1 << 20)
    assert message in caught.value.message
