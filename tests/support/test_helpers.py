"""The shared test helpers do what the tests rely on: waits return or fail with a message,
a child's output and exit are seen, a dead child fails a wait at once."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.support.process import KvaProcess
from tests.support.wait import eventually, wait_for


def test_wait_for_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_for(lambda: next(counter) >= 3 and "done", 5, "three polls", step=0) == "done"


def test_wait_for_fails_naming_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.1 s waiting for the moon"):
        wait_for(lambda: None, 0.1, "the moon")


def test_eventually_checks_once_more_at_the_deadline() -> None:
    deadline = time.monotonic() + 0.1
    assert eventually(lambda: time.monotonic() >= deadline, 0.1, step=1.0) is True
    assert eventually(lambda: 0, 0.05) is None


@pytest.mark.subprocess
def test_a_child_that_exits_fails_the_wait_with_its_output() -> None:
    child = KvaProcess("video", "--port", "70000")  # refused at once: exit 2
    try:
        with pytest.raises(AssertionError, match=r"(?s)kva video exited with 2:.*KVA_VIDEO_PORT"):
            child.wait_until(lambda: False, 60, "nothing")
        assert "KVA_VIDEO_PORT" in child.wait_line("KVA_VIDEO_PORT", 5)  # printed before the exit
    finally:
        assert child.stop() == 2
