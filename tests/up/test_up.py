"""`kva up` end to end: the whole pipeline from one command, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from kva.process import descendant_pids, is_running

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECOGNISED = ("egyptian cat", "tabby", "tiger cat", "espresso")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own viewer
        return bytes(response.read())


def _labels(streams: dict) -> list[str]:
    return [
        label["label"].lower()
        for stream in streams.get("streams", [])
        for model in (stream.get("predictions") or {}).get("models", [])
        for label in model.get("labels", [])
    ]


def test_kva_up_serves_a_recognised_frame_and_stops_cleanly(tmp_path: Path) -> None:
    """Started as users start it, from a folder that holds a ``kva/`` of its own (the parent of
    a clone named kva): that folder must not shadow the installed package in any child."""
    decoy = tmp_path / "here" / "kva"
    decoy.mkdir(parents=True)
    (decoy / "README.md").write_text("a folder named kva, not the package\n")
    started = time.monotonic()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "kva"),
            "up",
            "--port",
            "0",
            "--kafka-port",
            "0",
            "--serve-port",
            "0",
            "--metrics-port",
            "0",
            "--models-dir",
            str(tmp_path / "models"),
        ],
        cwd=decoy.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    banner = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "viewer:" in line:
                banner.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    pids: set[int] = set()
    try:
        assert banner.wait(90), "no banner:\n" + "".join(lines[-40:])
        url = re.search(r"viewer:\s+(http://\S+)", "".join(lines)).group(1)  # type: ignore[union-attr]
        pids = descendant_pids(process.pid)
        assert len(pids) >= 7, "expected broker, 2 servers, producer, consumer, viewer (+JVM)"
        seen: list[str] = []
        while time.monotonic() - started < 60 and not any(r in " ".join(seen) for r in RECOGNISED):
            seen = _labels(json.loads(_get(url + "api/streams")))
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        assert any(r in " ".join(seen) for r in RECOGNISED), f"labels after 60 s: {seen}"
        print(f"recognised label after {elapsed:.1f}s: {seen[:3]}")
        image = cv2.imdecode(
            np.frombuffer(_get(url + "streams/cam0.jpg"), np.uint8), cv2.IMREAD_COLOR
        )
        assert image is not None and image.shape[0] > 100
    finally:
        pids |= descendant_pids(process.pid)
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(60)
        finally:
            process.kill()
        reader.join(10)
    assert code == 0, "".join(lines[-30:])
    assert [pid for pid in pids if is_running(pid)] == []
    assert "status: broker=stopped" in "".join(lines)
