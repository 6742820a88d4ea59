"""Start ``kva serve`` as a real subprocess on a free port and talk to it over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]

CONFORMANCE_CONFIG = """\
# TF Serving's handler-test fixture names, served by kva serve.
model_config_list {
  config {
    name: "saved_model_half_plus_two_2_versions"
    base_path: "saved_model_half_plus_two_2_versions"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 123 } }
    version_labels { key: "Version_Label" value: 123 }
  }
  config {
    name: "saved_model_half_plus_three"
    base_path: "saved_model_half_plus_three"
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    """Poll ``condition`` until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class ServeProcess:
    """A running ``python -m kva serve ...``; stopped with SIGTERM by :meth:`stop`."""

    def __init__(
        self, args: list[str], log_path: Path, ready_timeout: float = 60.0, wait_ready: bool = True
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [sys.executable, "-m", "kva", "serve", "--rest_api_port", str(self.port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KVA_")}
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [*command, *args], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.session = requests.Session()
        check = self._ready if wait_ready else self._live
        try:
            wait_for(check, ready_timeout, f"kva serve ready on {self.url}")
        except AssertionError:
            self.stop()
            raise AssertionError(f"kva serve did not get ready:\n{self.log()}") from None

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"kva serve exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return self.session.get(self.url + "/v2/health/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def _live(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"kva serve exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return self.session.get(self.url + "/v2/health/live", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.post(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        self.session.close()
        return self.proc.returncode
