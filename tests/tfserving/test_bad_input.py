"""Bad input never breaks the server: the right 4xx with ``{"error"}``, and it keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.serve import ServeProcess

MODEL = "saved_model_half_plus_two_2_versions"
PREDICT = f"/v1/models/{MODEL}:predict"


@pytest.fixture(autouse=True)
def still_serving(server: ServeProcess) -> Iterator[None]:
    """After every test here the server still answers a real prediction."""
    yield
    reply = server.post(PREDICT, json={"instances": [[4.0]]})
    assert reply.status_code == 200 and reply.json() == {"predictions": [[4.0]]}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{", 400, "JSON Parse error: Missing a name for object member."),
        (b'{"instances": [1.0,]}', 400, "JSON Parse error: Invalid value."),  # rapidjson's words
        (b"foobar", 400, "JSON Parse error: Invalid value."),
        (b"{} {}", 400, "JSON Parse error: The document root must not be followed"),
        (b"\xff\xfe", 400, "JSON Parse error"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "JSON Parse error"),
        (b'"text"', 400, "Request body must be a JSON object"),
        (b'{"instances": 5}', 400, "Expecting 'instances' to be a list"),
        (b'{"instances": []}', 400, "'instances' is an empty list"),
        (b'{"instances": [[1.0], [2.0, 3.0]]}', 400, "Expecting tensor size 1 but got 2"),
        (b'{"instances": [[1.0], [[2.0]]]}', 400, "Expecting shape"),
        (b'{"instances": ["a", "b"]}', 400, 'JSON Value: "a" is not of expected type: float32'),
        (b'{"instances": [[true]]}', 400, "JSON Value: true is not of expected type"),
        (b'{"instances": [null]}', 400, "is not of expected type"),
        (b'{"instances": [{"b64": "AAAA"}]}', 400, "is not of expected type"),
        (b'{"instances": [{"x": [1.0]}, [2.0]]}', 400, "objects keyed by input name, or none"),
        (b'{"instances": [{"z": [1.0]}]}', 400, "Sent extra: {z}. Missing but required: {x}."),
        (b'{"inputs": {"x": [1.0], "w": [2.0]}}', 400, "input size does not match signature"),
        (b'{"inputs": [[]]}', 400, "is empty"),
        (b'{"signature_name": 5, "inputs": [1.0]}', 400, "'signature_name' key must be a string"),
        (b'{"signature_name": "nope", "inputs": [1.0]}', 400, 'name: "nope" not found'),
        (b'{"inputs": ' + b"[" * 20 + b"1" + b"]" * 20 + b"}", 400, "rank above 8"),
    ],
)
def test_bad_predict_bodies(server: ServeProcess, body: bytes, status: int, message: str) -> None:
    reply = server.post(PREDICT, data=body)
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"] == "application/json"
    error = reply.json()["error"]
    assert message in error


def test_nan_and_infinity_tokens_accepted(server: ServeProcess) -> None:
    reply = server.post(PREDICT, data=b'{"instances": [[NaN], [Infinity], [-Infinity]]}')
    assert reply.status_code == 200
    assert reply.text.replace(" ", "") == '{"predictions":[[NaN],[Infinity],[-Infinity]]}'


def test_named_and_columnar_forms(server: ServeProcess) -> None:
    rows = server.post(PREDICT, json={"instances": [{"x": [1.0]}, {"x": [3.0]}]})
    assert rows.json() == {"predictions": [[2.5], [3.5]]}
    columns = server.post(PREDICT, json={"inputs": {"x": [[1.0], [3.0]]}})
    assert columns.json() == {"outputs": [[2.5], [3.5]]}
    scalar = server.post(PREDICT, json={"inputs": 4})
    assert scalar.json() == {"outputs": 4.0}


def test_oversized_body_is_413_with_json(server: ServeProcess) -> None:
    body = json.dumps({"instances": [[1.0]] * 200_000}).encode()  # 1.4 MB > 1 MiB limit
    assert len(body) > 1024 * 1024
    reply = server.post(PREDICT, data=body)
    assert reply.status_code == 413
    assert reply.json() == {"error": f"request body of {len(body)} bytes exceeds 1048576"}
    v2 = server.post("/v2/models/saved_model_half_plus_three/infer", data=body)
    assert v2.status_code == 413 and "exceeds 1048576" in v2.json()["error"]


def test_far_oversized_body_is_refused_before_reading(server: ServeProcess) -> None:
    reply = server.post(PREDICT, data=b" " * (3 * 1024 * 1024))
    assert reply.status_code == 413


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("POST", "/v1/models/..%2F..%2Fetc%2Fpasswd:predict", 400, "Malformed request"),
        ("POST", "/v1/models/%2E%2E:predict", 404, "Servable not found for request: Latest(..)"),
        ("GET", "/v1/models/..%2Fsaved_model_half_plus_three", 400, "Malformed request"),
        ("GET", "/v1/models/x%00y/metadata", 404, "Servable not found"),
        ("GET", "/v2/models/..%2F..%2Fetc", 404, "Not found"),
        ("GET", "/v1/models/foo/versions/abc", 400, "Malformed request: GET"),
        ("GET", "/v1/models/foo/versions/99999999999999999999", 400, "Failed to convert version"),
        ("GET", f"/v1/models/{MODEL}/versions/124", 404, "Could not find version 124 of model"),
        ("GET", f"/v1/models/{MODEL}/labels/nope", 400, "Unrecognized servable version label"),
        ("GET", "/v1/models/nope", 404, "Could not find any versions of model nope"),
        ("POST", f"/v1/models/{MODEL}/versions/7:predict", 404, f"Specific({MODEL}, 7)"),
        ("PUT", PREDICT, 400, "Malformed request: PUT"),
        ("GET", "/v1/models/nope/labels", 404, "Servable not found"),
        ("GET", f"/v1/models/{MODEL}/labels", 404, "has no class labels"),
        ("GET", "/v3/anything", 404, "Not found: /v3/anything"),
        ("GET", "/v2/models/saved_model_half_plus_three/versions/%C2%B2", 400, "positive integer"),
        ("GET", f"/v1/models/{MODEL}/versions/%D9%A3", 400, "Malformed request"),
    ],
)
def test_bad_paths(server: ServeProcess, method: str, path: str, status: int, message: str) -> None:
    reply = server.session.request(method, server.url + path, data=b"{}", timeout=30)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]


def test_paths_are_case_insensitive_like_tf_serving(server: ServeProcess) -> None:
    reply = server.post(f"/V1/Models/{MODEL}:PREDICT", json={"instances": [[2.0]]})
    assert reply.json() == {"predictions": [[3.0]]}


def test_classify_regress_errors(server: ServeProcess) -> None:
    url = f"/v1/models/{MODEL}:regress"
    reply = server.post(url, json={"examples": [{"x": 1.0}]})
    assert reply.status_code == 400 and "Was: tensorflow/serving/predict" in reply.json()["error"]
    reply = server.post(url, json={"signature_name": "classify_x_to_y", "examples": [{"x": 1}]})
    assert reply.status_code == 400 and "Was: tensorflow/serving/classify" in reply.json()["error"]
    reply = server.post(url, json={"signature_name": "regress_x_to_y", "examples": [{"q": 1}]})
    assert reply.status_code == 400 and "exactly the feature 'x'" in reply.json()["error"]
    reply = server.post(
        url, json={"signature_name": "regress_x_to_y", "context": {"x": 4.0}, "examples": [{}]}
    )
    assert reply.json() == {"results": [4.0]}


_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["x", "b64", "inputs", "instances", "name"]), children, max_size=3
        )
    ),
    max_leaves=12,
)
_bodies = st.fixed_dictionaries(
    {},
    optional={
        "instances": _json,
        "inputs": _json,
        "signature_name": _json,
        "outputs": _json,
        "parameters": _json,
    },
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_bodies, v2=st.booleans())
def test_random_json_never_5xx(server: ServeProcess, body: dict[str, object], v2: bool) -> None:
    path = "/v2/models/saved_model_half_plus_three/infer" if v2 else PREDICT
    reply = server.post(path, data=json.dumps(body).encode())
    assert reply.status_code < 500, (body, reply.text)
    if reply.status_code >= 400:
        assert set(reply.json()) == {"error"}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=200), header=st.one_of(st.none(), st.integers(-5, 250).map(str)))
def test_random_bytes_never_5xx(server: ServeProcess, body: bytes, header: str | None) -> None:
    headers = {} if header is None else {"Inference-Header-Content-Length": header}
    for path in (PREDICT, "/v2/models/saved_model_half_plus_three/infer"):
        reply = server.post(path, data=body, headers=headers)
        assert reply.status_code < 500, (body, header, reply.text)
        assert set(reply.json()) == {"error"} or reply.status_code == 200


_segment = st.text(min_size=0, max_size=12).map(lambda t: quote(t, safe=""))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.sampled_from(["/v1/models/", "/v2/models/", "/V1/MODELS/", "/v2/"]),
    segments=st.lists(_segment, max_size=4),
    suffix=st.sampled_from(["", ":predict", ":classify", "/infer", "/ready", "/metadata"]),
    method=st.sampled_from(["GET", "POST"]),
)
def test_random_paths_never_5xx(
    server: ServeProcess, prefix: str, segments: list[str], suffix: str, method: str
) -> None:
    path = prefix + "/".join(segments) + suffix
    reply = server.session.request(method, server.url + path, data=b"{}", timeout=30)
    assert reply.status_code < 500, (path, reply.text)
