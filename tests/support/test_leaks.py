"""The session-end check fails a run that leaves a process behind (issue 15)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kva.process import parent_pids
from tests.support.process import ROOT

pytestmark = pytest.mark.subprocess

ESCAPES = """
import subprocess

def test_escapes():
    # sh starts sleep in the background and exits: sleep is orphaned, as the kva serve of
    # issue 15 was, and must still be found.
    subprocess.run(["sh", "-c", "sleep 67.5 >/dev/null 2>&1 &"], check=True)

def test_clean():
    subprocess.run(["true"], check=True)
"""


@pytest.mark.parametrize(("select", "code"), [("test_clean", 0), ("test_escapes", 1)])
def test_a_process_left_behind_fails_the_run(tmp_path: Path, select: str, code: int) -> None:
    (tmp_path / "test_inner.py").write_text(ESCAPES)
    run = subprocess.run(  # noqa: S603 - our own test run
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py"), "-k", select],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == code, output
    if code:
        assert "1 process(es) started by the tests outlived them" in output
        assert "sleep 67.5" in output
    assert not [pid for pid in parent_pids() if _command_line(pid) == "sleep 67.5"]


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""
