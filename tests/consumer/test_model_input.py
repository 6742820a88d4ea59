"""--model-input: parsed strictly, checked against the server's metadata, tensors made right."""

from __future__ import annotations

import numpy as np
import pytest

from kva.consumer.backend_api import ModelInfo
from kva.consumer.errors import MetadataError
from kva.consumer.model_input import InputFormat, InputOptions, input_format, parse_model_input

UINT8 = ModelInfo("m", "classifier", "image", 224, 224, ("classes", "scores"))
FLOAT_NCHW = ModelInfo("f", "detector", "x", 48, 64, ("boxes", "scores"), "float32", "NCHW")


def test_parse() -> None:
    name, options = parse_model_input("m:send=tensor,order=bgr,scale=0.5,mean=1/2/3,size=224x224")
    assert name == "m"
    assert options == InputOptions("tensor", None, None, (224, 224), "BGR", 0.5, (1.0, 2.0, 3.0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("m", "is not NAME:KEY=VALUE"),
        ("m:colour=red", "'colour=red' is not one of send, dtype"),
        ("m:send=maybe", "'maybe' is not one of auto, jpeg, tensor"),
        ("m:dtype=complex64", "'complex64' is not one of uint8"),
        ("m:mean=1/2", "mean must be three numbers"),
        ("m:size=0x10", "size must be WxH within 1..8192"),
        ("m:scale=nan", "scale and mean must be finite"),
        ("m:layout=CHW", "'CHW' is not one of NHWC, NCHW"),
    ],
)
def test_bad_values_are_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_model_input(text)


def test_auto_sends_a_jpeg_to_uint8_nhwc_and_a_tensor_otherwise() -> None:
    assert input_format(UINT8, InputOptions()) == InputFormat(False, 224, 224)
    fmt = input_format(FLOAT_NCHW, InputOptions())
    assert (fmt.tensor, fmt.dtype, fmt.layout, fmt.width, fmt.height) == (
        True, "float32", "NCHW", 64, 48,
    )  # fmt: skip
    assert input_format(UINT8, InputOptions(send="tensor")).tensor
    assert input_format(UINT8, InputOptions(order="BGR")).tensor  # only a tensor can be BGR


def test_options_that_contradict_the_server_are_refused() -> None:
    with pytest.raises(MetadataError, match="dtype float32 but the server says uint8"):
        input_format(UINT8, InputOptions(dtype="float32"))
    with pytest.raises(MetadataError, match=r"size \(100, 100\) but the server says \(224, 224\)"):
        input_format(UINT8, InputOptions(size=(100, 100)))
    with pytest.raises(MetadataError, match="layout NHWC but the server says NCHW"):
        input_format(FLOAT_NCHW, InputOptions(layout="NHWC"))
    with pytest.raises(MetadataError, match="scale/mean need a float input"):
        input_format(UINT8, InputOptions(send="tensor", scale=2.0))
    with pytest.raises(MetadataError, match="need send=tensor"):
        input_format(UINT8, InputOptions(send="jpeg", order="BGR"))


def test_the_tensor_is_resized_frame_in_order_layout_scale_and_mean() -> None:
    from kva.consumer.model_input import to_tensor

    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 20, 30  # B, G, R
    fmt = InputFormat(True, 3, 2, "float32", "NCHW", "RGB", 0.5, (30.0, 20.0, 10.0))
    tensor = to_tensor(bgr, fmt)
    assert tensor.shape == (1, 3, 2, 3) and tensor.dtype == np.float32
    assert tensor[0, :, 0, 0].tolist() == [0.0, 0.0, 0.0]  # (R-30, G-20, B-10) * 0.5
    raw = to_tensor(bgr, InputFormat(True, 3, 2, "uint8", "NHWC", "BGR"))
    assert raw.shape == (1, 2, 3, 3) and raw[0, 0, 0].tolist() == [10, 20, 30]
