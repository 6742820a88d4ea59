"""The frame envelope codec: round trip and every way a message can be wrong."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kva.frame import (
    H_CAPTURE_NS,
    H_CONTENT_TYPE,
    H_SEQUENCE,
    H_SIZE,
    H_WIDTH,
    Frame,
    FrameDecodeError,
    decode_frame,
    encode_frame,
    is_valid_stream_id,
)

FRAME = Frame(
    stream_id="cam0",
    sequence=7,
    capture_ns=1_700_000_000_000_000_000,
    width=640,
    height=360,
    data=b"\xff\xd8jpeg-bytes\xff\xd9",
    attributes={"kva-predictions": '{"m": 1}'},
)


def _replace_header(headers: list[tuple[str, bytes]], name: str, value: bytes | None) -> list:
    return [(k, value if k == name else v) for k, v in headers]


def test_round_trip_keeps_every_field() -> None:
    key, value, headers = encode_frame(FRAME)
    assert key == b"cam0"
    assert decode_frame(key, value, headers) == FRAME


def test_headers_are_plain_ascii_for_kcat() -> None:
    _key, _value, headers = encode_frame(FRAME)
    fields = dict(headers)
    assert fields[H_SEQUENCE] == b"7"
    assert fields[H_SIZE] == str(len(FRAME.data)).encode()
    assert fields[H_CONTENT_TYPE] == b"image/jpeg"


def test_unknown_non_kva_headers_are_ignored() -> None:
    key, value, headers = encode_frame(FRAME)
    frame = decode_frame(key, value, [*headers, ("traceparent", b"00-abc")])
    assert "traceparent" not in frame.attributes


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda k, v, h: (k, b"", h), "empty"),
        (lambda k, v, h: (k, None, h), "empty"),
        (lambda k, v, h: (None, v, h), "missing_key"),
        (lambda k, v, h: (b"\xff\xfe", v, h), "bad_key"),
        (lambda k, v, h: (b"../etc", v, h), "bad_key"),
        (lambda k, v, h: (b"x" * 200, v, h), "bad_key"),
        (lambda k, v, h: (k, v, []), "missing_header"),
        (lambda k, v, h: (k, v, None), "missing_header"),
        (lambda k, v, h: (k, v, [x for x in h if x[0] != H_WIDTH]), "missing_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_SEQUENCE, b"-1")), "bad_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_SEQUENCE, b"seven")), "bad_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_SEQUENCE, None)), "bad_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_WIDTH, b"0")), "bad_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_WIDTH, b"99999999")), "bad_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_CAPTURE_NS, b"\xff")), "bad_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_CAPTURE_NS, b"1" * 40)), "bad_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_CONTENT_TYPE, b"jpeg")), "bad_header"),
        (lambda k, v, h: (k, v, [*h, ("kva-x", b"y" * 300_000)]), "bad_header"),
        (lambda k, v, h: (k, v, [*h, *[("kva-n", b"1")] * 70]), "bad_header"),
        (lambda k, v, h: (k, v + b"extra", h), "size_mismatch"),
        # issue 15, defect 1: digits str.isdigit() accepts but int() refuses or misreads
        (lambda k, v, h: (k, v, _replace_header(h, H_SEQUENCE, "²".encode())), "bad_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_SEQUENCE, "٣".encode())), "bad_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_WIDTH, "６４０".encode())), "bad_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_SIZE, "1²".encode())), "bad_header"),
        (lambda k, v, h: (k, v, _replace_header(h, H_SEQUENCE, b"9" * 10_000)), "bad_header"),
    ],
)
def test_malformed_messages_raise_a_typed_error(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    key, value, headers = mutate(*encode_frame(FRAME))
    with pytest.raises(FrameDecodeError) as caught:
        decode_frame(key, value, headers)
    assert caught.value.reason == reason


def test_oversized_payload_is_rejected_before_anything_else() -> None:
    key, value, headers = encode_frame(FRAME)
    with pytest.raises(FrameDecodeError) as caught:
        decode_frame(key, value, headers, max_frame_bytes=10)
    assert caught.value.reason == "oversized"


def test_attributes_must_be_kva_prefixed() -> None:
    with pytest.raises(ValueError, match="kva-"):
        encode_frame(FRAME.replace(attributes={"x": "1"}))


@pytest.mark.parametrize(
    ("stream_id", "valid"),
    [
        ("cam0", True),
        ("front-door_2.a", True),
        ("", False),
        ("a b", False),
        ("é", False),
        (".hidden", False),
        ("a/b", False),
    ],
)
def test_stream_id_rules(stream_id: str, valid: bool) -> None:
    assert is_valid_stream_id(stream_id) is valid


def test_age_is_measured_from_capture_time() -> None:
    assert FRAME.age_seconds(now_ns=FRAME.capture_ns + 1_500_000_000) == pytest.approx(1.5)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(
    key=st.none() | st.binary(max_size=200),
    value=st.none() | st.binary(max_size=64),
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                [H_SEQUENCE, H_CAPTURE_NS, H_WIDTH, H_SIZE, H_CONTENT_TYPE, "kva-height", "kva-x"]
            )
            | st.text(max_size=20),
            st.none()
            | st.binary(max_size=40)
            | st.text(alphabet=st.characters(categories=["Nd", "No"]), max_size=30).map(str.encode)
            | st.integers().map(lambda n: str(n).encode()),
        ),
        max_size=12,
    ),
)
def test_decoding_anything_raises_only_the_typed_error(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]]
) -> None:
    """Whatever a record holds (any bytes, any Unicode digits, huge numbers)."""
    with contextlib.suppress(FrameDecodeError):
        decode_frame(key, value, headers)
