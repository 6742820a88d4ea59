"""Real ``kva serve`` replicas as subprocesses, on fixed ports so a killed one can come back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from kva.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
model_config_list {
  config { name: "mobilenet_v2" base_path: "%(base)s/mobilenet_v2" }
  config { name: "blazeface" base_path: "%(base)s/blazeface" }
}
"""


def write_config(models: Path, folder: Path) -> Path:
    """A model config file serving mobilenet_v2 and blazeface from ``models``."""
    path = folder / "models.config"
    path.write_text(CONFIG % {"base": models})
    return path


class ServeReplica:
    """``python -m kva serve`` on one port; :meth:`kill` and :meth:`start` again."""

    def __init__(self, config: Path, log_dir: Path, port: int | None = None) -> None:
        self.config = config
        self.port = port or free_port()
        self.log_path = log_dir / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, model: str, protocol: str = "v1") -> str:
        return f"http://127.0.0.1:{self.port}/{protocol}/models/{model}"

    def start(self, timeout: float = 60.0) -> ServeReplica:
        command = [
            sys.executable, "-m", "kva", "serve",
            "--rest_api_port", str(self.port),
            "--model_config_file", str(self.config),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("KVA_")}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"kva serve did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        try:
            reply = requests.get(self.url("blazeface", "v2") + "/ready", timeout=1)
        except requests.RequestException:
            return False
        return reply.status_code == 200

    def kill(self) -> None:
        """SIGKILL: the replica vanishes mid-request, as a crashed pod would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
