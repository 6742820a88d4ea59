"""Shared fixtures: a real Apache Kafka for the whole session, fresh topics per test,
``kva`` child processes stopped after each test.

The broker is started through the same launcher as ``kva broker`` on free
ports, unless ``KVA_BOOTSTRAP_SERVER`` names an existing one. Marks follow
the fixtures: a test using the broker is marked ``integration``, one using a
fixture declared with ``@starts_processes`` is marked ``subprocess``; so
``make test-fast`` (unit tests only) starts neither. With
``--forbid-subprocess`` (what ``make test-fast`` passes) a test that starts a
child process without being marked for it fails and says so.

Helpers live in ``tests/support`` (what only the tests share) and ``testbed``
(what the benchmarks use too).
"""

from __future__ import annotations

import logging
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kva.kafka import TopicSpec, ensure_topics
from kva.settings import KafkaSettings
from testbed.kafka import broker
from tests.support import leaks
from tests.support.kafka import Reader, Topics
from tests.support.process import PROCESS_FIXTURES, KvaProcess, starts_processes
from tests.support.serve import build_conformance_repo

#: Tests with one of these marks may start child processes.
MAY_START_PROCESSES = ("subprocess", "integration", "browser", "faults")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--forbid-subprocess",
        action="store_true",
        help="fail a test that starts a child process but is not marked "
        + ", ".join(MAY_START_PROCESSES),
    )


def pytest_configure(config: pytest.Config) -> None:
    """Escaped grandchildren come back to the test process (see ``tests/support/leaks.py``)."""
    leaks.become_subreaper()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any process a test started, or any descendant, is still alive."""
    left = leaks.leftover_processes()
    if not left:
        return
    lines = "\n".join(f"  {pid}: {command}" for pid, command in left.items())
    session.config.get_terminal_writer().line(
        f"\nERROR: {len(left)} process(es) started by the tests outlived them (killed now):\n"
        f"{lines}",
        red=True,
    )
    leaks.kill_all(left)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks from fixtures: the session broker -> integration, child processes -> subprocess."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "kafka_bootstrap" in fixtures:
            item.add_marker(pytest.mark.integration)
        if fixtures & PROCESS_FIXTURES:
            item.add_marker(pytest.mark.subprocess)


@pytest.fixture(autouse=True)
def _forbid_unmarked_subprocess(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``--forbid-subprocess``: starting a child process fails an unmarked test."""
    if not request.config.getoption("forbid_subprocess"):
        return
    if any(request.node.get_closest_marker(mark) for mark in MAY_START_PROCESSES):
        return

    def refuse(_self: object, args: object, *_args: object, **_kwargs: object) -> None:
        raise AssertionError(
            f"{request.node.nodeid} starts a child process ({args!r:.120}): mark it "
            "@pytest.mark.subprocess, or declare its fixture with @starts_processes"
        )

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real Kafka broker for the test session."""
    with broker() as bootstrap:
        yield bootstrap


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


@pytest.fixture
def topics(make_topic: Callable[..., str]) -> Topics:
    """Fresh input, output and metadata topics of a consumer."""
    return Topics(
        make_topic(partitions=1, suffix="in"),
        make_topic(partitions=1, suffix="out"),
        make_topic(partitions=1, suffix="meta"),
    )


@pytest.fixture
def reader(kafka_settings: KafkaSettings, unique_name: str) -> Iterator[Callable[[str], Reader]]:
    """Factory: a :class:`Reader` of a topic from its start (closed after the test)."""
    readers: list[Reader] = []

    def make(topic: str) -> Reader:
        r = Reader(kafka_settings, topic, f"{unique_name}-reader-{len(readers)}")
        readers.append(r)
        return r

    yield make
    for r in readers:
        r.close()


@pytest.fixture
@starts_processes
def start_kva() -> Iterator[Callable[..., KvaProcess]]:
    """Factory: ``start_kva("video", "--port", "0", env=..., log=...)`` runs a ``kva`` command
    in the background (:class:`KvaProcess`); every one still running is stopped after the test."""
    started: list[KvaProcess] = []

    def start(*args: str, **kwargs: object) -> KvaProcess:
        process = KvaProcess(*args, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


@pytest.fixture(scope="session")
def built_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with every model ``kva models build`` knows, built once per session.

    Layout ``<base>/<name>/<version>/`` (mobilenet_v2/1, blazeface/1, person/1,
    half_plus_two/123); pass the returned base path to ``kva serve`` or read the IR directly.
    """
    from kva.tfserving.modelbuild import BUILDERS, build_model

    base = tmp_path_factory.mktemp("models")
    for name in BUILDERS:
        build_model(name, base)
    return base


@pytest.fixture(scope="session")
@starts_processes
def demo_video() -> Path:
    """``vtest.avi``, the demo video, in kva's cache: fetched now by
    ``scripts/fetch-demo-video.sh`` (as ``scripts/setup.sh`` does) if it is not there yet."""
    from kva.paths import demo_video as path
    from kva.producer.demo import FETCH_COMMAND

    if not path().is_file():
        script = Path(__file__).resolve().parents[1] / FETCH_COMMAND
        fetched = subprocess.run(  # noqa: S603 - our own script
            [str(script)], capture_output=True, text=True, timeout=600, check=False
        )
        assert fetched.returncode == 0, f"{FETCH_COMMAND} failed:\n{fetched.stderr}"
    return path()


@pytest.fixture(scope="session")
def conformance_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """half_plus_two / half_plus_three under TF Serving's test names, and ``models.config``."""
    return build_conformance_repo(tmp_path_factory.mktemp("conformance-models"))


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
