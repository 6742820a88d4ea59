"""The whole pipeline into a real browser: the cat photo, produced by `kva produce`,
classified by `kva consume` through a real `kva serve` (MobileNetV2), shown by
`kva video` — the page in headless Chromium names the cat and shows the photo."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import pytest

from kva.paths import models_dir
from tests.video.browser import dump_dom, find_photo, have_chromium, screenshot
from tests.video.frames import photo

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not have_chromium(), reason="chromium is not installed"),
]
ROOT = Path(__file__).resolve().parents[2]
CAT_LABELS = ("tabby", "tiger cat", "egyptian cat")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own viewer
        return dict(json.loads(response.read()))


def _cat_video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 426))
    image = photo("chelsea", 640, 426)
    for _ in range(10):
        writer.write(image)
    writer.release()
    assert path.stat().st_size > 10000
    return path


def _wait_for(condition, timeout: float, what: str, procs: list[subprocess.Popen[str]]):
    deadline = time.monotonic() + timeout
    while True:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(
                    f"{proc.args[3]} exited early:\n{proc.communicate()[0][-3000:]}"
                )
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _cat_label(streams: dict) -> str | None:
    for stream in streams["streams"]:
        for model in (stream.get("predictions") or {}).get("models", []):
            for label in model["labels"][:1]:
                if any(cat in label["label"].lower() for cat in CAT_LABELS):
                    return str(label["label"])
    return None


def test_the_page_names_the_cat(kafka_bootstrap, make_topic, tmp_path) -> None:
    models = models_dir()  # where `kva models build` caches them
    subprocess.run(
        [
            sys.executable,
            "-m",
            "kva",
            "models",
            "build",
            "mobilenet_v2",
            "--models-dir",
            str(models),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    frames, annotated, preds = (
        make_topic(suffix="frames"),
        make_topic(suffix="annotated"),
        make_topic(suffix="preds"),
    )
    serve_port, view_port = _free_port(), _free_port()
    kafka = ["--bootstrap-server", kafka_bootstrap]
    commands = {
        "serve": [
            "serve",
            "--rest_api_port",
            str(serve_port),
            "--model_name",
            "mobilenet_v2",
            "--model_base_path",
            str(models / "mobilenet_v2"),
        ],
        "produce": [
            "produce",
            *kafka,
            "--source",
            f"cat={_cat_video(tmp_path / 'cat.avi')}",
            "--loop",
            "--topic",
            frames,
            "--fps",
            "5",
            "--metrics-port",
            str(_free_port()),
        ],
        "consume": [
            "consume",
            *kafka,
            "--input-topic",
            frames,
            "--output-topic",
            annotated,
            "--metadata-topic",
            preds,
            "--metrics-port",
            str(_free_port()),
            "--model",
            f"mobilenet_v2=http://127.0.0.1:{serve_port}/v1/models/mobilenet_v2",
        ],
        "video": [
            "video",
            *kafka,
            "--topic",
            annotated,
            "--metadata-topic",
            preds,
            "--port",
            str(view_port),
        ],
    }
    procs: list[subprocess.Popen[str]] = []
    try:
        for name, args in commands.items():
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "kva", *args],
                    cwd=ROOT,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
            )
            if name == "serve":  # the consumer checks the model at start
                status = f"http://127.0.0.1:{serve_port}/v1/models/mobilenet_v2"
                _wait_for(
                    lambda s=status: "AVAILABLE" in json.dumps(_get_json(s)),
                    120,
                    "kva serve",
                    procs,
                )
        _check_page(f"http://127.0.0.1:{view_port}", procs, tmp_path)
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def _check_page(url: str, procs: list[subprocess.Popen[str]], tmp_path: Path) -> None:
    label = _wait_for(
        lambda: _cat_label(_get_json(url + "/api/streams")), 120, "a cat label", procs
    )
    dom = dump_dom(url + "/")
    assert label in dom, f"{label!r} not on the rendered page"
    shot = screenshot(url + "/", tmp_path / "page.png")
    score, (_x, _y, w, _h) = find_photo(shot, photo("chelsea", 640, 426))
    assert score > 0.6 and w > 200, f"the cat photo is not on the page (match {score:.2f})"
