"""`docker compose up` for real: the project's images and compose files, run under Podman.

Every project image is built from its Dockerfile, the stack comes up with ``up --wait``
(compose/docker-compose.yml plus tests/deploy/real/compose.override.yml, which adds host
ports and drops Grafana), and is checked from outside the containers only:

- annotated frames whose classifier labels name the demo scene's photos reach the
  ``annotated`` topic (read from the host through Kafka's 127.0.0.1 listener);
- the viewer's page renders in headless Chromium with those labels and a live stream
  (two screenshots a few seconds apart differ);
- Prometheus scrapes every target (``/api/v1/targets``, all ``up``).

``down -v`` then leaves no container, network or volume of the project. The same runs
for the ZooKeeper variant, and a copy of compose/ with a wrong consumer command fails
the frame check. Needs ``scripts/setup-containers.sh`` first (``make test-deploy``).
With ``KVA_SAVE_SCREENSHOT=1`` the viewer's screenshot is saved to
docs/compose-viewer.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from kva.frame import Frame
from kva.kafka import LatestFrameConsumer
from kva.ports import free_port
from kva.predictions import Classification, FramePredictions
from kva.settings import KafkaSettings
from testbed.browser import dump_dom, have_chromium, screenshot
from tests.deploy.real.compose import (
    HERE,
    ROOT,
    PodmanApi,
    compose_bin_dir,
    podman,
    project_leftovers,
)
from tests.support.process import starts_processes
from tests.support.wait import eventually, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser]

COMPOSE = ROOT / "compose"
OVERRIDE = HERE / "compose.override.yml"
ZOOKEEPER_OVERRIDE = HERE / "compose.zookeeper.override.yml"
#: What every scrape target of compose/prometheus/prometheus.yml is.
SCRAPED = {"serve-1:8501", "serve-2:8501", "producer:9100", "consumer:9100", "video:8080"}
WAIT_TIMEOUT = 300
#: What the compose producer's photo demo shows (the images carry no demo video): the
#: classifier's labels of its cat and espresso photos.
RECOGNISED = ("egyptian cat", "tabby", "tiger cat", "espresso")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the stack's own ports
        return bytes(response.read())


@dataclass
class Stack:
    """One compose project: its files, its name and the host ports the override maps."""

    api: PodmanApi
    files: list[Path]
    project: str
    ports: dict[str, int] = field(
        default_factory=lambda: {
            "KVA_TEST_KAFKA_PORT": free_port(),
            "KVA_TEST_VIEWER_PORT": free_port(),
            "KVA_TEST_PROMETHEUS_PORT": free_port(),
        }
    )

    def compose(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        files = [arg for path in self.files for arg in ("-f", str(path))]
        env = {name: str(port) for name, port in self.ports.items()}
        return self.api.compose(
            "-p", self.project, *files, *args, timeout=timeout, check=check, env=env
        )  # fmt: skip

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['KVA_TEST_KAFKA_PORT']}"

    @property
    def viewer(self) -> str:
        return f"http://127.0.0.1:{self.ports['KVA_TEST_VIEWER_PORT']}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.ports['KVA_TEST_PROMETHEUS_PORT']}"

    def up(self) -> None:
        """``up --wait``; on failure, the AssertionError carries the services' last logs."""
        done = self.compose(
            "up", "--no-build", "--wait", "--wait-timeout", str(WAIT_TIMEOUT),
            timeout=WAIT_TIMEOUT + 120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            logs = self.compose("logs", "--no-color", "--tail", "15", check=False).stdout
            raise AssertionError(
                f"up --wait failed ({done.returncode}):\n{done.stderr[-4000:]}\n{logs[-8000:]}"
            )

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=300)

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "20", check=False).stdout[-8000:]


@pytest.fixture(scope="module")
@starts_processes
def api() -> Iterator[PodmanApi]:
    if not (compose_bin_dir() / "docker-compose").is_file():
        pytest.fail(f"no docker-compose in {compose_bin_dir()}: run scripts/setup-containers.sh")
    with PodmanApi() as running:
        yield running


@pytest.fixture(scope="module")
def built(api: PodmanApi) -> float:
    """Every project image built from its Dockerfile; the seconds it took."""
    started = time.monotonic()
    Stack(api, [COMPOSE / "docker-compose.yml", OVERRIDE], "kva").compose("build", timeout=1800)
    elapsed = time.monotonic() - started
    print(f"docker-compose build: {elapsed:.0f} s")
    for name in ("serve", "producer", "consumer", "video"):
        image = json.loads(podman("image", "inspect", f"kva-{name}:0.1.0"))[0]
        health = image["Config"].get("Healthcheck") or image.get("Healthcheck")
        assert health, f"kva-{name}: the Dockerfile's HEALTHCHECK did not survive the build"
    return elapsed


def _classifier_labels(frame: Frame) -> list[str]:
    raw = frame.attributes.get("kva-predictions")
    if raw is None:
        return []
    document = FramePredictions.from_json(raw, 1 << 20)
    return [
        label.lower()
        for result in document.models
        if isinstance(result.prediction, Classification)
        for label in result.prediction.labels
    ]


def recognised_frames(bootstrap: str, timeout: float) -> list[str]:
    """Labels of the first annotated frame naming a demo photo (AssertionError on timeout)."""
    settings = KafkaSettings(bootstrap_server=bootstrap)
    consumer = LatestFrameConsumer(
        settings, ["annotated"], f"test-{uuid.uuid4().hex[:8]}", max_lag=None, start_at="end"
    )
    seen: list[int] = [0]

    def one_recognised() -> list[str]:
        """The labels of the next frame if they name a demo photo, else [] (not yet)."""
        record = consumer.poll(0.5)
        if record is None:
            return []
        seen[0] += 1
        labels = _classifier_labels(record.frame())
        return labels if any(r in " ".join(labels) for r in RECOGNISED) else []

    try:
        return wait_for(
            one_recognised,
            timeout,
            f"an annotated frame on 'annotated' via {bootstrap} naming one of {RECOGNISED}",
            step=0,
        )
    finally:
        print(f"annotated frames read from {bootstrap}: {seen[0]}")
        consumer.close()


def check_viewer(viewer: str, shot: Path) -> None:
    """The page renders the labels, and the stream on it moves."""
    streams = wait_for(
        lambda: json.loads(_get(viewer + "/api/streams")).get("streams"), 60, "a stream"
    )
    assert any(s["id"] == "cam0" for s in streams), streams
    # The demo scene cycles through its photos: wait for one the classifier names.
    wait_for(
        lambda: any(r in dump_dom(viewer + "/", wait_ms=4000).lower() for r in RECOGNISED),
        90,
        f"the rendered page to show one of {RECOGNISED}",
        step=0,
    )
    first = screenshot(viewer + "/", shot.with_name("first.png"), wait_ms=4000)
    second = screenshot(viewer + "/", shot, wait_ms=4000)
    changed = np.count_nonzero(cv2.absdiff(first, second).max(axis=2) > 30)
    assert changed > 500, f"the stream did not move between two screenshots ({changed} px)"


def check_prometheus(prometheus: str) -> None:
    def all_up() -> dict[str, str] | None:
        targets = json.loads(_get(prometheus + "/api/v1/targets"))["data"]["activeTargets"]
        health = {t["labels"]["instance"]: t["health"] for t in targets}
        return health if set(health) == SCRAPED and set(health.values()) == {"up"} else None

    health = eventually(all_up, 60, step=1)
    assert health, json.loads(_get(prometheus + "/api/v1/targets"))["data"]["activeTargets"]


def run_stack(stack: Stack, shot: Path) -> None:
    """Up, the three checks from outside, down; nothing of the project left."""
    started = time.monotonic()
    try:
        stack.up()
        print(f"{stack.project}: up --wait in {time.monotonic() - started:.0f} s")
        labels = recognised_frames(stack.bootstrap, 120)
        print(f"{stack.project}: recognised {labels[:3]} after {time.monotonic() - started:.0f} s")
        check_viewer(stack.viewer, shot)
        check_prometheus(stack.prometheus)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- logs:\n{stack.logs()}") from None
    finally:
        stack.down()
    assert project_leftovers(stack.project) == {"containers": [], "networks": [], "volumes": []}


@pytest.mark.usefixtures("built")
def test_compose_up_runs_the_pipeline_and_down_leaves_nothing(
    api: PodmanApi, tmp_path: Path
) -> None:
    assert have_chromium()
    shot = tmp_path / "viewer.png"
    run_stack(Stack(api, [COMPOSE / "docker-compose.yml", OVERRIDE], "kva"), shot)
    if os.environ.get("KVA_SAVE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "compose-viewer.png")


@pytest.mark.usefixtures("built")
def test_the_zookeeper_variant_runs_the_pipeline_too(api: PodmanApi, tmp_path: Path) -> None:
    files = [
        COMPOSE / "docker-compose.yml",
        COMPOSE / "docker-compose.zookeeper.yml",
        OVERRIDE,
        ZOOKEEPER_OVERRIDE,
    ]
    run_stack(Stack(api, files, "kva"), tmp_path / "viewer.png")


@pytest.mark.usefixtures("built")
def test_a_wrong_command_in_a_copy_fails_the_check(api: PodmanApi, tmp_path: Path) -> None:
    copy = tmp_path / "compose"
    shutil.copytree(COMPOSE, copy)
    text = (copy / "docker-compose.yml").read_text()
    wrong = text.replace('"--input-topic", "frames"', '"--input-topic", "frames-typo"')
    assert wrong != text
    (copy / "docker-compose.yml").write_text(wrong)
    stack = Stack(api, [copy / "docker-compose.yml", OVERRIDE], "kva-broken")
    with pytest.raises(AssertionError) as failed:
        run_stack(stack, tmp_path / "viewer.png")
    assert "naming one of" in str(failed.value) or "up --wait failed" in str(failed.value)
    assert project_leftovers(stack.project) == {"containers": [], "networks": [], "volumes": []}
    print(f"the broken copy failed as it should: {str(failed.value).splitlines()[0]}")
