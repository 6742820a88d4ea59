"""The whole pipeline into a real browser: the cat photo, produced by `kva produce`,
classified by `kva consume` through a real `kva serve` (MobileNetV2), shown by
`kva video` — the page in headless Chromium names the cat and shows the photo."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import cv2
import pytest

from kva.paths import models_dir
from kva.ports import free_port
from testbed.browser import dump_dom, find_photo, have_chromium, screenshot
from tests.support.process import KvaProcess, run_kva, wait_until
from tests.video.frames import photo

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not have_chromium(), reason="chromium is not installed"),
]
CAT_LABELS = ("tabby", "tiger cat", "egyptian cat")


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


def _cat_label(streams: dict) -> str | None:
    for stream in streams["streams"]:
        for model in (stream.get("predictions") or {}).get("models", []):
            for label in model["labels"][:1]:
                if any(cat in label["label"].lower() for cat in CAT_LABELS):
                    return str(label["label"])
    return None


def test_the_page_names_the_cat(kafka_bootstrap, make_topic, tmp_path, start_kva) -> None:
    models = models_dir()  # where `kva models build` caches them
    built = run_kva("models", "build", "mobilenet_v2", "--models-dir", str(models), timeout=600)
    assert built.returncode == 0, built.stderr
    frames, annotated, preds = (
        make_topic(suffix="frames"),
        make_topic(suffix="annotated"),
        make_topic(suffix="preds"),
    )
    serve_port, view_port = free_port(), free_port()
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
            str(free_port()),
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
            str(free_port()),
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
    procs: list[KvaProcess] = []
    for name, args in commands.items():
        procs.append(start_kva(*args))
        if name == "serve":  # the consumer checks the model at start
            status = f"http://127.0.0.1:{serve_port}/v1/models/mobilenet_v2"
            wait_until(
                lambda s=status: "AVAILABLE" in json.dumps(_get_json(s)),
                120,
                "kva serve",
                processes=procs,
                step=0.5,
            )
    _check_page(f"http://127.0.0.1:{view_port}", procs, tmp_path)


def _check_page(url: str, procs: list[KvaProcess], tmp_path: Path) -> None:
    label = wait_until(
        lambda: _cat_label(_get_json(url + "/api/streams")),
        120,
        "a cat label",
        processes=procs,
        step=0.5,
    )
    dom = dump_dom(url + "/")
    assert label in dom, f"{label!r} not on the rendered page"
    shot = screenshot(url + "/", tmp_path / "page.png")
    score, (_x, _y, w, _h) = find_photo(shot, photo("chelsea", 640, 426))
    assert score > 0.6 and w > 200, f"the cat photo is not on the page (match {score:.2f})"
