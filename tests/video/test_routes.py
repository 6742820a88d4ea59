"""The viewer's routes through Flask's test client: status codes, auth, JSON, metrics."""

from __future__ import annotations

import json

import pytest

from kva.predictions import Classification, FramePredictions, ModelResult
from kva.video.app import create_app
from kva.video.state import viewer_state
from kva.video.store import Predictions
from tests.support.frames import make_frame
from tests.video.frames import photo_frames

TOKEN = "s3cret-token"  # noqa: S105 - a test token
ROUTES = [
    "/",
    "/api/streams",
    "/api/events",
    "/metrics",
    "/healthz",
    "/streams/cam0.jpg",
    "/streams/cam0.mjpg",
    "/static/viewer.js",
    "/static/viewer.css",
]

PREDICTIONS = FramePredictions(
    "cam0",
    3,
    1,
    2,
    320,
    240,
    (
        ModelResult(
            "mobilenet_v2",
            "ok",
            Classification((281, 282), ("tabby cat", "tiger cat"), (0.81, 0.1)),
            latency_s=0.0125,
        ),
    ),
)


def test_index_is_the_grid_page(app) -> None:
    response = app.test_client().get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert 'id="grid"' in page and "viewer.js" in page and "annotated" in page


def test_api_streams_empty_then_describes_a_stream(app, cat_frames) -> None:
    client = app.test_client()
    assert client.get("/api/streams").get_json()["streams"] == []
    store = viewer_state(app).store
    for frame in cat_frames[:4]:
        store.put_frame(frame)
    store.put_predictions("cam0", Predictions(3, cat_frames[3].capture_ns, PREDICTIONS, "metadata"))
    body = client.get("/api/streams").get_json()
    assert body["stale_after"] == 5.0
    (stream,) = body["streams"]
    assert stream["id"] == "cam0"
    assert (stream["width"], stream["height"], stream["sequence"]) == (320, 240, 3)
    assert stream["fps"] > 0
    assert 0 <= stream["age_seconds"] < 10
    assert stream["stale"] is False
    (model,) = stream["predictions"]["models"]
    assert model["model"] == "mobilenet_v2"
    assert model["kind"] == "classification"
    assert model["labels"][0] == {"label": "tabby cat", "score": 0.81}
    assert model["latency_ms"] == 12.5


def test_the_page_starts_with_the_current_streams(app, cat_frames) -> None:
    viewer_state(app).store.put_frame(cat_frames[0])
    page = app.test_client().get("/").get_data(as_text=True)
    assert '"id": "cam0"' in page or '"id":"cam0"' in page


def test_stale_stream_is_marked(make_settings, cat_frames) -> None:
    clock = [100.0]
    app = create_app(make_settings(video_stale_after=2.0))
    store = viewer_state(app).store
    store._clock = lambda: clock[0]  # a controllable clock for "no frames for N s"
    store.put_frame(cat_frames[0])
    clock[0] += 3.5
    (stream,) = app.test_client().get("/api/streams").get_json()["streams"]
    assert stream["stale"] is True
    assert stream["silent_seconds"] == pytest.approx(3.5)


def test_snapshot_is_the_newest_frame(app, cat_frames) -> None:
    store = viewer_state(app).store
    for frame in cat_frames[:3]:
        store.put_frame(frame)
    response = app.test_client().get("/streams/cam0.jpg")
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert response.data == cat_frames[2].data
    assert response.headers["X-Kva-Seq"] == "2"
    assert "no-store" in response.headers["Cache-Control"]


def test_mjpeg_response_headers(app, cat_frames) -> None:
    viewer_state(app).store.put_frame(cat_frames[0])
    response = app.test_client().get("/streams/cam0.mjpg", buffered=False)
    try:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=kvaframe"
        first = next(iter(response.response))
        assert first.startswith(b"--kvaframe\r\nContent-Type: image/jpeg\r\n\r\n")
        # Chromium shows a part only when the next begins: the next boundary follows at once.
        assert first.endswith(
            cat_frames[0].data + b"\r\n--kvaframe\r\nContent-Type: image/jpeg\r\n\r\n"
        )
    finally:
        response.close()


@pytest.mark.parametrize("suffix", ["jpg", "mjpg"])
def test_unknown_stream_is_404(app, suffix) -> None:
    response = app.test_client().get(f"/streams/nope.{suffix}")
    assert response.status_code == 404
    assert "unknown stream 'nope'" in response.get_data(as_text=True)


@pytest.mark.parametrize("suffix", ["jpg", "mjpg"])
def test_invalid_stream_id_is_400(app, suffix) -> None:
    response = app.test_client().get(f"/streams/bad%20id%21.{suffix}")
    assert response.status_code == 400
    assert "invalid stream id" in response.get_data(as_text=True)


def test_stream_without_a_frame_has_no_snapshot(app) -> None:
    viewer_state(app).store.put_predictions(
        "cam9", Predictions(1, 1, FramePredictions("cam9", 1, 1, 1, 0, 0, ()), "metadata")
    )
    response = app.test_client().get("/streams/cam9.jpg")
    assert response.status_code == 404
    assert "has no frame yet" in response.get_data(as_text=True)


def test_metrics_name_viewers_frames_bytes_and_fps(app, cat_frames) -> None:
    store = viewer_state(app).store
    for frame in cat_frames[:3]:
        store.put_frame(frame)
    client = app.test_client()
    client.get("/streams/cam0.jpg")
    text = client.get("/metrics").get_data(as_text=True)
    assert "kva_video_viewers 0.0" in text
    assert 'kva_video_frames_sent_total{stream="cam0"} 1.0' in text
    assert f'kva_video_sent_bytes_total{{stream="cam0"}} {float(len(cat_frames[2].data))}' in text
    assert 'kva_video_stream_fps{stream="cam0"}' in text
    assert 'kva_video_frame_age_seconds{stream="cam0"}' in text
    assert "kva_video_streams 1.0" in text


def test_healthz_reports_the_reader(make_settings) -> None:
    healthy = [True]
    app = create_app(make_settings(), healthy=lambda: healthy[0])
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    healthy[0] = False
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "Kafka reader stopped" in response.get_data(as_text=True)


def test_apps_share_nothing(make_settings, cat_frames) -> None:
    first, second = create_app(make_settings()), create_app(make_settings())
    viewer_state(first).store.put_frame(cat_frames[0])
    assert second.test_client().get("/api/streams").get_json()["streams"] == []


@pytest.fixture
def token_app(make_settings, cat_frames):
    app = create_app(make_settings(video_token=TOKEN))
    viewer_state(app).store.put_frame(cat_frames[0])
    return app


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_needs_the_token(token_app, route) -> None:
    response = token_app.test_client().get(route)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "access token is required" in response.get_data(as_text=True)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("how", ["header", "query"])
def test_the_token_opens_every_route(token_app, route, how) -> None:
    client = token_app.test_client()
    if how == "header":
        response = client.get(route, headers={"Authorization": f"Bearer {TOKEN}"}, buffered=False)
    else:
        sep = "&" if "?" in route else "?"
        response = client.get(f"{route}{sep}token={TOKEN}", buffered=False)
    try:
        assert response.status_code == 200
    finally:
        response.close()


@pytest.mark.parametrize(
    "headers,query",
    [
        ({"Authorization": "Bearer wrong"}, ""),
        ({"Authorization": f"Basic {TOKEN}"}, ""),
        ({}, "?token=" + TOKEN[:-1]),
        ({}, "?token="),
    ],
)
def test_wrong_tokens_are_refused(token_app, headers, query) -> None:
    response = token_app.test_client().get("/api/streams" + query, headers=headers)
    assert response.status_code == 401


def test_token_from_environment(monkeypatch, make_settings) -> None:
    from kva.video.config import VideoSettings

    monkeypatch.setenv("KVA_VIDEO_TOKEN", "from-env")
    app = create_app(VideoSettings(video_port=0))
    client = app.test_client()
    assert client.get("/healthz").status_code == 401
    assert client.get("/healthz?token=from-env").status_code == 200


def test_jpeg_of_another_content_type_is_served_as_is(app) -> None:
    frame = make_frame("png0", 1, b"\x89PNG fake", 1, 1).replace(content_type="image/png")
    viewer_state(app).store.put_frame(frame)
    response = app.test_client().get("/streams/png0.jpg")
    assert response.mimetype == "image/png"


def test_api_describes_predictions_without_models(app) -> None:
    store = viewer_state(app).store
    store.put_frame(photo_frames("coffee", "cup", 1)[0])
    store.put_predictions(
        "cup", Predictions(0, 0, FramePredictions("cup", 0, 0, 0, 0, 0, ()), "metadata")
    )
    body = app.test_client().get("/api/streams").get_json()
    assert body["streams"][0]["predictions"]["models"] == []


def test_a_page_opened_with_the_token_passes_it_on(token_app) -> None:
    page = token_app.test_client().get(f"/?token={TOKEN}").get_data(as_text=True)
    assert f"viewer.css?token={TOKEN}" in page and f"viewer.js?token={TOKEN}" in page


def test_api_json_stays_strict_with_hostile_numbers(app, cat_frames) -> None:
    """NaN, infinities and huge numbers from Kafka never reach the browser's JSON.parse:
    the schema refuses them, and what it accepts is plain JSON."""
    from kva.predictions import PredictionsError
    from kva.video.predictions import parse_metadata

    for hostile in (b"NaN", b"Infinity", b"-Infinity", b"1" + b"0" * 400):
        raw = (
            b'{"stream": "cam0", "seq": 1, "capture_ns": 1, "models": [{"model": "m", '
            b'"status": "ok", "kind": "classifier", "classes": [{"id": 1, "label": "x", '
            b'"score": ' + hostile + b"}]}]}"
        )
        with pytest.raises(PredictionsError, match="bad_schema: class score is not finite"):
            parse_metadata(raw, 4096)
    store = viewer_state(app).store
    store.put_frame(cat_frames[0])
    stream, predictions = parse_metadata(raw.replace(b"1" + b"0" * 400, b"0.5"), 4096)
    store.put_predictions(stream, predictions)
    text = app.test_client().get("/api/streams").get_data(as_text=True)
    body = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the API's JSON"))
    (model,) = body["streams"][0]["predictions"]["models"]
    assert [label["score"] for label in model["labels"]] == [0.5]
