"""``kva serve`` with REST and gRPC on fixed ports, so a stopped replica can come back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.tfserving.server import ROOT, free_port


class GrpcReplica:
    """``python -m kva serve --rest_api_port R --port G``; :meth:`stop` and :meth:`start`."""

    def __init__(self, args: list[str], log_dir: Path) -> None:
        self.args = args
        self.rest_port = free_port()
        self.grpc_port = free_port()
        self.log_path = log_dir / f"serve-{self.grpc_port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def rest_url(self, model: str, protocol: str = "v1") -> str:
        return f"http://127.0.0.1:{self.rest_port}/{protocol}/models/{model}"

    def grpc_url(self, model: str) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}/{model}"

    def start(self, timeout: float = 60.0) -> GrpcReplica:
        command = [
            sys.executable, "-m", "kva", "serve",
            "--rest_api_port", str(self.rest_port), "--port", str(self.grpc_port), *self.args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("KVA_")}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"kva serve did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.rest_port}/v2/health/ready"
            return requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return None if self.proc is None else self.proc.returncode
