"""No camera password reaches a log line or an error message (issue 15, defect 6)."""

from __future__ import annotations

import io
import json
import logging
from unittest import mock

import pytest

from kva.logs import JsonFormatter, TextFormatter
from kva.producer.config import ProducerSettings, cameras_from_sources
from kva.producer.fleet import CameraFleet
from kva.redact import redact_text, redact_url

SECRET = "Pa55w0rd"
URL = f"rtsp://admin:{SECRET}@10.0.0.5:554/live"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (URL, "rtsp://admin:***@10.0.0.5:554/live"),
        (f"opened {URL} and http://u:p@h/x.", "opened rtsp://admin:***@10.0.0.5:554/live and "
         "http://u:***@h/x."),
        ("rtsp://a:b@c@h/x", "rtsp://a:***@h/x"),
        ("rtsp://user@h/x", "rtsp://user@h/x"),
        ("http://h/x?a=b:c@d", "http://h/x?a=b:c@d"),
        ("no url at all", "no url at all"),
    ],
)  # fmt: skip
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_url(text) == expected


def test_the_fleet_start_line_has_no_password(caplog: pytest.LogCaptureFixture) -> None:
    settings = ProducerSettings(bootstrap_server="localhost:1", source=[f"rtsp={URL}"])
    fleet = CameraFleet(lambda camera, _seq: mock.Mock(camera=camera))
    with caplog.at_level(logging.INFO, logger="kva.producer.fleet"):
        fleet.apply(cameras_from_sources(settings))
    assert "camera rtsp: starting (rtsp://admin:***@10.0.0.5:554/live" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()])
def test_every_log_line_is_redacted_by_the_formatter(formatter: logging.Formatter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log = logging.getLogger("test.redact")
    log.addHandler(handler)
    try:
        log.error("cannot open %s", URL, extra={"url": URL})
        try:
            raise OSError(f"refused: {URL}")
        except OSError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text
    assert "rtsp://admin:***@10.0.0.5:554/live" in text
    if isinstance(formatter, JsonFormatter):
        assert all(json.loads(line) for line in text.splitlines() if line.startswith("{"))


def test_an_error_about_a_source_flag_has_no_password() -> None:
    settings = ProducerSettings(bootstrap_server="localhost:1", source=[f"x={URL}/{'a' * 4100}"])
    with pytest.raises(ValueError, match=r"--source 'x=rtsp://admin:\*\*\*@") as caught:
        cameras_from_sources(settings)
    assert SECRET not in str(caught.value)


def test_the_viewer_warns_when_the_token_is_a_flag(caplog: pytest.LogCaptureFixture) -> None:
    from kva.launcher.cli import build_parser

    parser = build_parser()
    for argv, warned in ((["video", "--token", "s3cret"], True), (["video"], False)):
        args = parser.parse_args(argv)
        caplog.clear()
        with (
            mock.patch("kva.service.run_service", return_value=0),
            mock.patch("kva.lifecycle.install_stop_handlers"),
            mock.patch("kva.video.service.ViewerService"),
            caplog.at_level(logging.WARNING, logger="kva.video.cli"),
        ):
            assert args.run(args) == 0
        assert ("pass the token in the KVA_VIDEO_TOKEN" in caplog.text) is warned
        assert "s3cret" not in caplog.text
