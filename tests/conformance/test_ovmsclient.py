"""``ovmsclient`` (OpenVINO Model Server's own Python client) against ``kva serve``.

The calls are those of the client's README, without ``model_version``: the
client then sends version 0, which OVMS, and now kva, read as "latest".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.support.serve import ServeProcess

ovmsclient = pytest.importorskip("ovmsclient")  # the test extra installs it

MODEL = "saved_model_half_plus_three"


@pytest.fixture(params=["grpc", "http"])
def client(request: pytest.FixtureRequest, kva_serve: ServeProcess) -> Any:
    if request.param == "grpc":
        return ovmsclient.make_grpc_client(kva_serve.grpc_target)
    return ovmsclient.make_http_client(kva_serve.url.removeprefix("http://"))


def test_status_and_predict_without_a_version(client: Any) -> None:
    status = client.get_model_status(model_name=MODEL)
    assert status == {123: {"state": "AVAILABLE", "error_code": 0, "error_message": ""}}
    inputs = {"x": np.array([[1.0], [2.0], [5.0]], np.float32)}
    np.testing.assert_allclose(
        client.predict(inputs=inputs, model_name=MODEL), [[3.5], [4.0], [5.5]]
    )


def test_metadata_without_a_version(client: Any) -> None:
    """Over HTTP too: ovmsclient reads OVMS's spelling (``modelSpec``, ``signatureDef``,
    ``tensorShape``), which kva's /v1 metadata carries next to TF Serving's."""
    assert client.get_model_metadata(model_name=MODEL) == {
        "model_version": 123,
        "inputs": {"x": {"shape": [-1, 1], "dtype": "DT_FLOAT"}},
        "outputs": {"y": {"shape": [-1, 1], "dtype": "DT_FLOAT"}},
    }


def test_errors(client: Any) -> None:
    with pytest.raises(ovmsclient.tfs_compat.base.errors.ModelNotFoundError):
        client.get_model_status(model_name="nope")
    with pytest.raises(ovmsclient.tfs_compat.base.errors.ModelNotFoundError):
        client.predict(
            inputs={"x": np.zeros((1, 1), np.float32)}, model_name=MODEL, model_version=7
        )
