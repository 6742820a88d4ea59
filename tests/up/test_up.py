"""`kva up` end to end: the whole pipeline from one command, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from kva.process import descendant_pids, group_pids, is_running
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: What the default demo (vtest.avi, people walking) must show: the person model's boxes.
RECOGNISED = ("person",)


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


def _recognised(streams: dict) -> list[str] | None:
    """The labels shown, once one of them is a recognised photo."""
    seen = _labels(streams)
    return seen if any(r in " ".join(seen) for r in RECOGNISED) else None


def test_kva_up_serves_a_recognised_frame_and_stops_cleanly(
    tmp_path: Path, start_kva, demo_video: Path
) -> None:
    """Started as users start it, from a folder that holds a ``kva/`` of its own (the parent of
    a clone named kva): that folder must not shadow the installed package in any child. The
    default demo is the video, its people found by the person model."""
    decoy = tmp_path / "here" / "kva"
    decoy.mkdir(parents=True)
    (decoy / "README.md").write_text("a folder named kva, not the package\n")
    started = time.monotonic()
    up = start_kva(
        "up",
        "--port", "0",
        "--kafka-port", "0",
        "--serve-port", "0",
        "--metrics-port", "0",
        "--models-dir", str(tmp_path / "models"),
        command=[str(Path(sys.executable).parent / "kva")],  # the console script
        cwd=decoy.parent,
    )  # fmt: skip
    pids: set[int] = set()
    try:
        banner = up.wait_line("viewer:", 90)
        url = re.search(r"viewer:\s+(http://\S+)", banner).group(1)  # type: ignore[union-attr]
        pids = descendant_pids(up.pid)
        assert len(pids) >= 7, "expected broker, 2 servers, producer, consumer, viewer (+JVM)"
        seen = up.wait_until(
            lambda: _recognised(json.loads(_get(url + "api/streams"))),
            max(0.0, 60 - (time.monotonic() - started)),  # 60 s from the command
            "a recognised label within 60 s of `kva up`",
            step=0.5,
        )
        elapsed = time.monotonic() - started
        print(f"recognised label after {elapsed:.1f}s: {[s for s in seen if s in RECOGNISED][:3]}")
        image = cv2.imdecode(
            np.frombuffer(_get(url + "streams/cam0.jpg"), np.uint8), cv2.IMREAD_COLOR
        )
        assert image is not None and image.shape == (576, 768, 3), "the demo video's frames"
    finally:
        pids |= descendant_pids(up.pid)
        code = up.interrupt(60)
    output = up.output()
    assert code == 0, up.tail(30)
    assert [pid for pid in pids if is_running(pid)] == []
    assert "status: broker=stopped" in output


def _up(start_kva, tmp_path: Path, built_models: Path):  # noqa: ANN202 - a KvaProcess
    """``kva up`` with its work folder under ``tmp_path/tmp`` (TMPDIR), once it is all up."""
    (tmp_path / "tmp").mkdir()
    up = start_kva(
        "up",
        "--port", "0",
        "--kafka-port", "0",
        "--serve-port", "0",
        "--metrics-port", "0",
        "--models-dir", str(built_models),
        env={"TMPDIR": str(tmp_path / "tmp")},
    )  # fmt: skip
    up.wait_line("viewer:", 120)
    return up


def _left(pids: set[int], group: int) -> set[int]:
    return {pid for pid in pids if is_running(pid)} | group_pids(group)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_nothing_is_left_after_ctrl_c_or_kill_9(
    tmp_path: Path, start_kva, built_models: Path, signum: int
) -> None:
    """Issue 15, defects 4 and 5: after Ctrl-C (in reverse order, within 5 s, no error
    lines) and after ``kill -9`` of the supervisor, no descendant is left, neither by
    parent chain nor in the run's process group, and the work folder is gone."""
    up = _up(start_kva, tmp_path, built_models)
    pids = descendant_pids(up.pid)
    groups = {os.getpgid(pid) for pid in pids} - {os.getpgid(0)}
    assert len(groups) == 1, "every service in the one group of this run"
    group = groups.pop()
    assert group in pids and len(group_pids(group)) >= 7
    assert os.getpgid(up.pid) != group, "a terminal's Ctrl-C reaches only the supervisor"
    work = [p.name for p in (tmp_path / "tmp").iterdir()]
    assert len(work) == 1 and work[0].startswith("kva-up-"), work
    started = time.monotonic()
    up.send_signal(signum)
    code = up.wait(30)
    wait_for(lambda: not _left(pids, group), 10, "every descendant of kva up to exit")
    elapsed = time.monotonic() - started
    wait_for(lambda: not list((tmp_path / "tmp").iterdir()), 5, "the work folder to go")
    if signum == signal.SIGINT:
        print(f"kva up stopped in {elapsed:.2f}s after Ctrl-C")
        assert code == 0, up.tail(30)
        assert elapsed < 5, up.tail(60)
        output = up.output()
        assert "ERROR" not in output and "killing it" not in output, up.tail(40)
        assert "status: broker=stopped" in output
