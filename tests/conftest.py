"""Shared fixtures: a real Apache Kafka for the whole session, fresh topics per test.

The broker is started through the same launcher as ``kva broker`` on free
ports, unless ``KVA_BOOTSTRAP_SERVER`` names an existing one.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kva.kafka import TopicSpec, ensure_topics
from kva.settings import KafkaSettings


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real Kafka broker for the test session."""
    existing = os.environ.get("KVA_BOOTSTRAP_SERVER")
    if existing:
        yield existing
        return
    from kva.zookeeper.cluster import ClusterSpec, KafkaCluster

    with KafkaCluster(ClusterSpec(mode="kraft", port=0)) as cluster:
        yield cluster.bootstrap_server


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Settings pointing at the session broker."""
    return KafkaSettings(bootstrap_server=kafka_bootstrap, broker_timeout=20)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name no other test uses (for topics and consumer groups)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_topic(kafka_settings: KafkaSettings, unique_name: str):  # type: ignore[no-untyped-def]
    """Factory: create a fresh topic (``partitions`` partitions) and return its name."""
    counter = iter(range(1000))

    def create(partitions: int = 1, suffix: str = "") -> str:
        name = f"{unique_name}-{suffix or next(counter)}"
        ensure_topics(kafka_settings, [TopicSpec(name, partitions=partitions)])
        return name

    return create


@pytest.fixture(scope="session")
def built_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with every model ``kva models build`` knows, built once per session.

    Layout ``<base>/<name>/<version>/`` (mobilenet_v2/1, blazeface/1, half_plus_two/123);
    pass the returned base path to ``kva serve`` or read the IR directly.
    """
    from kva.tfserving.modelbuild import BUILDERS, build_model

    base = tmp_path_factory.mktemp("models")
    for name in BUILDERS:
        build_model(name, base)
    return base


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """Tests that run a ``kva`` entry point in-process set up logging on the
    stream pytest captured for them; put the root logger back afterwards so a
    later test never logs into a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
