"""The supervisor behind `kva up`, on real child processes."""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

import pytest

from kva.launcher.supervisor import ServiceFailed, ServiceSpec, Supervisor
from kva.process import is_running

pytestmark = pytest.mark.subprocess  # the supervisor runs real (python -c) children

PY = sys.executable


def _spec(name: str, code: str, **kwargs) -> ServiceSpec:  # type: ignore[no-untyped-def]
    return ServiceSpec(name, [PY, "-c", code], **kwargs)


def test_stages_start_in_order_and_output_is_prefixed(tmp_path: Path) -> None:
    marker = tmp_path / "first-ready"
    out = io.StringIO()
    first = _spec(
        "first",
        f"import pathlib, time; print('hello', flush=True); pathlib.Path({str(marker)!r}).touch(); time.sleep(60)",
        ready=marker.exists,
    )
    second = _spec(
        "second",
        f"import pathlib, sys, time; sys.exit(0 if pathlib.Path({str(marker)!r}).exists() else 9)",
        oneshot=True,
    )
    supervisor = Supervisor([[first], [second]], threading.Event(), out=out)
    try:
        supervisor.start()
        assert [s.status for s in supervisor.services] == ["ready", "done"]
    finally:
        supervisor.stop_all(timeout=5)
    assert "first     | hello" in out.getvalue()


def test_a_failing_one_shot_job_reports_its_last_lines() -> None:
    job = _spec(
        "models",
        "import sys; print('weights package missing', flush=True); sys.exit(3)",
        oneshot=True,
    )
    supervisor = Supervisor([[job]], threading.Event(), out=io.StringIO())
    with pytest.raises(
        ServiceFailed, match=r"models exited with code 3; last lines:\n.*weights package missing"
    ):
        supervisor.start()


def test_a_service_that_is_never_ready_times_out() -> None:
    slow = _spec("slow", "import time; time.sleep(30)", ready=lambda: False, ready_timeout=0.5)
    supervisor = Supervisor([[slow]], threading.Event(), out=io.StringIO())
    try:
        with pytest.raises(
            ServiceFailed, match="slow not ready within 0s|slow not ready within 1s"
        ):
            supervisor.start()
    finally:
        supervisor.stop_all(timeout=5)


def test_a_dying_service_is_restarted_a_bounded_number_of_times(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    code = f"import pathlib; p = pathlib.Path({str(starts)!r}); p.write_text(p.read_text() + 'x' if p.exists() else 'x')"
    flaky = _spec("flaky", code + "; import time; time.sleep(0.3)")
    supervisor = Supervisor([[flaky]], threading.Event(), max_restarts=2, out=io.StringIO())
    supervisor.start()
    with pytest.raises(ServiceFailed, match="flaky died 3 times"):
        supervisor.watch()
    assert starts.read_text() == "xxx"


def test_stop_leaves_no_child_behind() -> None:
    stubborn = _spec(
        "stubborn",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
    )
    polite = _spec("polite", "import time; time.sleep(60)")
    supervisor = Supervisor([[stubborn], [polite]], threading.Event(), out=io.StringIO())
    supervisor.start()
    pids = [s.process.pid for s in supervisor.services if s.process]
    supervisor.stop_all(timeout=1)
    assert [s.status for s in supervisor.services] == ["stopped", "stopped"]
    assert not [pid for pid in pids if is_running(pid)]


def test_children_start_without_the_working_folder_on_sys_path() -> None:
    """``python -P``: a folder named ``kva`` where ``kva up`` was started cannot shadow kva."""
    from kva.launcher.layout import KVA

    assert KVA[1:] == ("-P", "-m", "kva")
