"""A camera file edited carelessly never stops the producer: a bad version keeps the cameras.

Issue 15, defect 3: ``- {1: 2, source: demo}`` raised ``TypeError: keywords must be strings``
and 20,000 nested ``[`` raised ``RecursionError``, and either one stopped ``kva produce``.
Generated documents of any shape (YAML and JSON, fixed seed, bounded) cover the rest.
"""

from __future__ import annotations

import json
import logging
import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kva.camerafile import MAX_CAMERA_FILE_BYTES, CameraFileWatch
from kva.producer.config import (
    CameraConfigError,
    ProducerSettings,
    parse_camera_text,
)
from testbed.producer import producer_settings, running
from tests.support.wait import wait_for

NON_STRING_KEY = "- {1: 2, source: demo}\n"
DEEP_LIST = "[" * 20_000
DEEP_MAPPING = "{a: " * 5_000 + "1" + "}" * 5_000
GOOD = "cameras:\n  - id: a\n    source: testsrc\n    width: 160\n"

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["id", "source", "fps", "cameras", "demo", "testsrc", "a"])
)
_keys = _scalars.filter(lambda key: not isinstance(key, float)) | st.tuples(st.integers())
#: Any tree of lists and mappings (keys of any scalar type, as YAML allows).
documents = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4)  # type: ignore[arg-type]
    ),
    max_leaves=20,
)


def _as_text(document: object, as_json: bool) -> str:
    if as_json:
        return json.dumps(document, default=str, skipkeys=True)
    return yaml.safe_dump(document, allow_unicode=True)


_texts = (
    st.builds(_as_text, documents, st.booleans())
    | st.builds(lambda doc: _as_text({"cameras": doc}, False), documents)
    | st.text(max_size=200)
    | st.integers(1, 30_000).map(lambda depth: "[" * depth)
    | st.integers(1, 30_000).map(lambda depth: "- " * depth + "x")
    | st.integers(1, 3_000).map(lambda depth: "{a: " * depth + "}" * depth)
)


@pytest.fixture
def producer() -> ProducerSettings:
    return ProducerSettings(bootstrap_server="localhost:1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (NON_STRING_KEY, "entry 0: keys must be text, not 1"),
        (DEEP_LIST, "nest"),
        (DEEP_MAPPING, "nest"),
        ("x" * (MAX_CAMERA_FILE_BYTES + 1), "is more than"),
    ],
    ids=["non-string-key", "deep-list", "deep-mapping", "too-big"],
)
def test_the_reproductions_are_refused_with_a_clear_message(producer, text, message):
    with pytest.raises(CameraConfigError, match=message):
        parse_camera_text(text, producer, "cameras.yaml")


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=_texts)
def test_any_document_is_cameras_or_a_camera_config_error(producer, text):
    try:
        cameras = parse_camera_text(text, producer, "cameras.yaml")
    except CameraConfigError as exc:
        assert str(exc).startswith("camera file cameras.yaml")
    else:
        assert isinstance(cameras, list)


@pytest.mark.integration
def test_generated_edits_never_stop_the_producer_and_the_cameras_stay(
    kafka_settings, make_topic, collector_factory, tmp_path, caplog
):
    path = tmp_path / "cameras.yaml"
    path.write_text(GOOD)
    topic = make_topic()
    collector = collector_factory(topic)
    config = producer_settings(
        kafka_settings, topic, camera_file=path, camera_fps=10, camera_file_poll=0.05
    )
    tried = {"refused": 0, "valid": 0}
    with running(config) as service, caplog.at_level(logging.ERROR, logger="producer"):
        fleet, watcher = service.fleet, service._watcher
        assert fleet is not None and watcher is not None
        collector.count("a", 3, timeout=15)
        runner = fleet.runners["a"]

        def edit(text: str) -> None:
            # Atomically: the producer must never see the empty file of a half-done write,
            # which is a valid "no cameras" list.
            (tmp_path / "next.yaml").write_text(text)
            os.replace(tmp_path / "next.yaml", path)
            stamp = CameraFileWatch(path, "cameras")._current_stamp()
            wait_for(lambda: watcher._watch._stamp == stamp, 10, "the producer to read the edit")

        @settings(max_examples=40, derandomize=True, database=None, deadline=None)
        @given(text=_texts)
        def try_edit(text: str) -> None:
            try:
                parse_camera_text(text, config, "check")
            except CameraConfigError:
                tried["refused"] += 1
            else:
                tried["valid"] += 1
                return  # a valid list replaces the cameras, as it should
            edit(text)
            assert fleet.runners == {"a": runner}
            assert runner.is_alive()

        for text in (NON_STRING_KEY, DEEP_LIST):
            edit(text)
            assert fleet.runners == {"a": runner}
        assert "entry 0: keys must be text, not 1: keeping the current cameras" in caplog.text
        assert "maximum nesting depth" in caplog.text
        try_edit()
        sent = len(collector.of("a"))
        collector.count("a", sent + 3, timeout=15)  # the camera still sends
    assert tried["refused"] >= 20


@pytest.mark.integration
def test_an_empty_file_is_a_save_in_progress_and_keeps_the_cameras(
    kafka_settings, make_topic, collector_factory, tmp_path, caplog
):
    """An editor that saves in place truncates the file first: the producer must not read
    that moment as "no cameras". An explicit ``[]`` still stops every camera."""
    path = tmp_path / "cameras.yaml"
    path.write_text(GOOD)
    topic = make_topic()
    collector = collector_factory(topic)
    config = producer_settings(
        kafka_settings, topic, camera_file=path, camera_fps=10, camera_file_poll=0.05
    )
    with running(config) as service, caplog.at_level(logging.WARNING, logger="producer"):
        fleet, watcher = service.fleet, service._watcher
        assert fleet is not None and watcher is not None
        collector.count("a", 3, timeout=15)
        runner = fleet.runners["a"]

        def write(text: str) -> None:
            path.write_text(text)  # in place, as editors do
            stamp = CameraFileWatch(path, "cameras")._current_stamp()
            wait_for(lambda: watcher._watch._stamp == stamp, 10, "the producer to look at the edit")

        write("")
        assert fleet.runners == {"a": runner} and runner.is_alive()
        assert "is empty (a save in progress?): keeping the current cameras" in caplog.text
        write("[]\n")
        wait_for(lambda: not fleet.runners, 10, "[] to stop every camera")
