"""Renders docs/viewer.png: the viewer page in headless Chromium with four realistic streams.

Three live 720p streams made from scikit-image's photos with the annotations
the consumer draws (a classifier label, a face box) and their prediction
documents, plus one stream that has gone quiet, to show the stale state.

    python bench/viewer_screenshot.py [--out docs/viewer.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kva.frame import Frame  # noqa: E402
from kva.video.app import create_app  # noqa: E402
from kva.video.config import VideoSettings  # noqa: E402
from kva.video.server import ViewerServer  # noqa: E402
from kva.video.state import viewer_state  # noqa: E402
from kva.video.store import Predictions  # noqa: E402
from tests.video.browser import screenshot  # noqa: E402

W, H = 1280, 720
GREEN, WHITE, DARK = (90, 230, 140), (255, 255, 255), (30, 30, 30)


def wide(rgb: np.ndarray, top: float) -> np.ndarray:
    """A 16:9 crop starting at ``top`` (fraction of the spare rows), resized to 720p, BGR."""
    h, w = rgb.shape[:2]
    crop_h = min(h, round(w * 9 / 16))
    y0 = round((h - crop_h) * top)
    return cv2.resize(cv2.cvtColor(rgb[y0 : y0 + crop_h], cv2.COLOR_RGB2BGR), (W, H))


def label_box(image: np.ndarray, lines: list[str]) -> None:
    y = 20
    for i, text in enumerate(lines):
        scale = 1.1 if i == 0 else 0.8
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        cv2.rectangle(image, (16, y), (40 + tw, y + th + 22), DARK, -1)
        cv2.putText(
            image,
            text,
            (28, y + th + 10),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            GREEN if i == 0 else WHITE,
            2,
            cv2.LINE_AA,
        )
        y += th + 28


def footer(image: np.ndarray, stream: str, seq: int) -> None:
    text = f"{stream}  #{seq}  age 48 ms"
    cv2.rectangle(image, (0, H - 44), (W, H), DARK, -1)
    cv2.putText(image, text, (20, H - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.8, WHITE, 2, cv2.LINE_AA)


def classifier(stream: str, base: np.ndarray, labels: list[tuple[str, float]]):
    def render(seq: int) -> tuple[np.ndarray, dict]:
        image = base.copy()
        label_box(
            image, [f"{labels[0][0]} {labels[0][1]:.2f}"] + [f"{n} {s:.2f}" for n, s in labels[1:3]]
        )
        footer(image, stream, seq)
        doc = {
            "models": {
                "mobilenet_v2": {
                    "task": "classification",
                    "latency_ms": 11.8 + seq % 3,
                    "classes": [{"label": n, "score": s} for n, s in labels],
                }
            }
        }
        return image, doc

    return render


def detector(stream: str, base: np.ndarray, box: tuple[int, int, int, int], score: float):
    def render(seq: int) -> tuple[np.ndarray, dict]:
        image = base.copy()
        x0, y0, x1, y1 = box
        jitter = int(3 * np.sin(seq / 3))
        cv2.rectangle(image, (x0 + jitter, y0), (x1 + jitter, y1), GREEN, 4)
        cv2.rectangle(image, (x0 + jitter, y0 - 40), (x0 + jitter + 190, y0), GREEN, -1)
        cv2.putText(
            image,
            f"face {score:.2f}",
            (x0 + jitter + 10, y0 - 10),
            cv2.FONT_HERSHEY_SIMPLEX,
            1.0,
            DARK,
            2,
            cv2.LINE_AA,
        )
        footer(image, stream, seq)
        doc = {
            "models": {
                "blazeface": {
                    "task": "detection",
                    "latency_ms": 6.2,
                    "detections": [
                        {"label": "face", "score": score, "box": [x0 / W, y0 / H, x1 / W, y1 / H]}
                    ],
                }
            }
        }
        return image, doc

    return render


def frame(stream: str, seq: int, image: np.ndarray, age: float = 0.048) -> Frame:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return Frame(stream, seq, time.time_ns() - int(age * 1e9), W, H, data.tobytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "viewer.png")
    args = parser.parse_args()
    app = create_app(VideoSettings(video_port=0, video_threads=32))
    store = viewer_state(app).store
    shift = [0.0]
    store._clock = lambda: time.monotonic() - shift[0]  # to age the quiet stream
    shift[0] = 12.4
    quiet = wide(skimage.data.rocket(), 0.5)
    store.put_frame(frame("loading-dock", 5120, (quiet * 0.8).astype(np.uint8), age=shift[0]))
    store.put_predictions(
        "loading-dock",
        Predictions(
            5120,
            time.time_ns(),
            {"models": {"mobilenet_v2": {"classes": [{"label": "missile", "score": 0.41}]}}},
            "metadata",
        ),
    )
    shift[0] = 0.0
    streams = {
        "lobby": classifier(
            "lobby",
            wide(skimage.data.chelsea(), 0.4),
            [("tabby cat", 0.83), ("tiger cat", 0.09), ("Egyptian cat", 0.05)],
        ),
        "kitchen": classifier(
            "kitchen",
            wide(skimage.data.coffee(), 0.5),
            [("espresso", 0.71), ("cup", 0.14), ("coffee mug", 0.06)],
        ),
        "entrance": detector(
            "entrance", wide(skimage.data.astronaut(), 0.0), (425, 150, 700, 462), 0.97
        ),
    }
    stop = threading.Event()
    rendered = {
        name: [
            (frame(name, seq, image), doc)
            for seq in range(480, 504)
            for image, doc in [render(seq)]
        ]
        for name, render in streams.items()
    }

    def feed() -> None:
        seq = 0
        while not stop.wait(1 / 15):
            for name, frames in rendered.items():
                template, doc = frames[seq % len(frames)]
                f = template.replace(sequence=480 + seq, capture_ns=time.time_ns() - 48_000_000)
                store.put_frame(f)
                store.put_predictions(name, Predictions(f.sequence, f.capture_ns, doc, "metadata"))
            seq += 1

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    server = ViewerServer(app).start()
    try:
        time.sleep(3.5)  # a few seconds of frames, so the fps is real
        with tempfile.TemporaryDirectory() as tmp:
            image = screenshot(f"{server.url}/", Path(tmp) / "shot.png", 1440, 930, wait_ms=3500)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.out), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"wrote {args.out} ({image.shape[1]}x{image.shape[0]})")
    finally:
        stop.set()
        feeder.join(5)
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
