"""``kva serve`` as a child process of a test: on free (or given) ports, ready when started.

One :class:`ServeProcess` for every test that needs a real model server: the
conformance suite (REST), the gRPC tests (REST and gRPC ports) and the
consumer's replicas, which are killed and started again on the same ports.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import requests

from kva.ports import free_port
from kva.tfserving.modelbuild.half_plus_two import build
from tests.support.process import KvaProcess

#: TF Serving's handler-test fixture names, served by kva serve.
CONFORMANCE_CONFIG = """\
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


def build_conformance_repo(base: Path) -> Path:
    """half_plus_two / half_plus_three under TF Serving's test names, and ``models.config``."""
    build(base, name="saved_model_half_plus_two_2_versions")
    build(base, name="saved_model_half_plus_three", offset=3.0)
    (base / "models.config").write_text(CONFORMANCE_CONFIG)
    return base


class ServeProcess:
    """``python -m kva serve --rest_api_port R [--port G] ARGS``; stop, kill and start again.

    Args:
        args: the flags after the ports (models, limits).
        log: the file its output is appended to (across restarts).
        rest_port: the REST port (default: a free one, kept across restarts).
        grpc: also serve gRPC, TF Serving's and KServe v2's APIs (on ``grpc_port``, a
            free one by default).
        grpc_port: the gRPC port.
    """

    def __init__(
        self,
        args: Sequence[str],
        log: Path,
        *,
        rest_port: int | None = None,
        grpc: bool = False,
        grpc_port: int | None = None,
    ) -> None:
        self.args = list(args)
        self.log_path = log
        self.port = rest_port or free_port()
        self.grpc_port = grpc_port or (free_port() if grpc else None)
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        self.process: KvaProcess | None = None

    def start(
        self, timeout: float = 60.0, wait: Literal["ready", "live"] | None = "ready"
    ) -> ServeProcess:
        """Start; with ``wait``, return once ``/v2/health/<wait>`` answers 200.

        ``ready`` is every model loaded; ``live`` is the process answering at all.
        """
        ports = ["--rest_api_port", str(self.port)]
        if self.grpc_port is not None:
            ports += ["--port", str(self.grpc_port)]
        self.process = KvaProcess("serve", *ports, *self.args, log=self.log_path)
        if wait is not None:
            try:
                self.process.wait_http(f"{self.url}/v2/health/{wait}", timeout)
            except AssertionError as error:
                self.stop()
                why = str(error).splitlines()[0]
                raise AssertionError(
                    f"kva serve did not get {wait} ({why}):\n{self.log()}"
                ) from None
            except BaseException:
                # Any other failure of the wait (a read timeout, Ctrl-C) stops it too: the
                # old helper left a kva serve running when its health check raised.
                self.stop()
                raise
        return self

    def model_url(self, model: str, protocol: str = "v1") -> str:
        """``http://127.0.0.1:R/<protocol>/models/<model>``, as ``kva consume --model`` takes it."""
        return f"{self.url}/{protocol}/models/{model}"

    @property
    def grpc_target(self) -> str:
        """``127.0.0.1:G``, for a gRPC channel."""
        if self.grpc_port is None:
            raise RuntimeError("started without gRPC")
        return f"127.0.0.1:{self.grpc_port}"

    def grpc_url(self, model: str) -> str:
        """``grpc://127.0.0.1:G/<model>``, as ``kva consume --model`` takes it."""
        return f"grpc://{self.grpc_target}/{model}"

    def kserve_grpc_url(self, model: str) -> str:
        """``kserve+grpc://127.0.0.1:G/<model>`` (KServe v2 gRPC on the same port)."""
        return f"kserve+grpc://{self.grpc_target}/{model}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=kwargs.pop("timeout", 30), **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=kwargs.pop("timeout", 30), **kwargs)

    def alive(self) -> bool:
        """Started and not exited."""
        return self.process is not None and self.process.alive()

    def _running(self) -> KvaProcess:
        if self.process is None:
            raise RuntimeError("kva serve was not started")
        return self.process

    def terminate(self) -> None:
        """SIGTERM without waiting (a graceful stop the test watches)."""
        self._running().send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """Wait for the exit; the exit code."""
        return self._running().wait(timeout)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 15 s; the exit code (None when never started)."""
        if self.process is None:
            return None
        return self.process.stop()

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-request, as a crashed pod would."""
        if self.process is not None:
            self.process.kill()

    def close(self) -> None:
        """Stop and close the HTTP session."""
        self.stop()
        self.session.close()


def serve_built_models(models_dir: Path, folder: Path, count: int = 2) -> list[ServeProcess]:
    """``count`` started ``kva serve`` replicas, each serving every model ``kva models build``
    built into ``models_dir`` (its ``models.config`` and logs in ``folder``)."""
    from kva.launcher.layout import write_model_config

    config = write_model_config(models_dir, folder / "models.config")
    args = ["--model_config_file", str(config)]
    return [ServeProcess(args, folder / f"serve-{i}.log").start() for i in range(count)]
