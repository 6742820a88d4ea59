"""MLServer as a child process of a test: a real third-party KServe v2 replica (REST and gRPC).

MLServer lives in its own virtual environment (``.venv-mlserver`` beside the project's
``.venv``, made by ``scripts/setup.sh test``): its pins (protobuf, FastAPI) are not
kva's. It serves one OpenVINO IR through :mod:`tests.support.mlserver_openvino`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import requests

from kva.ports import free_port
from kva.process import ChildProcess
from tests.support.wait import wait_for

#: MLServer's virtual environment (see scripts/setup.sh).
VENV = Path(__file__).resolve().parents[2] / ".venv-mlserver"


def mlserver_path() -> Path | None:
    """The ``mlserver`` program, None when the test set-up did not install it."""
    program = VENV / "bin" / "mlserver"
    return program if program.is_file() else None


class MLServerProcess:
    """``mlserver start`` serving ``model`` from ``ir_folder`` on free localhost ports.

    Args:
        inputs, outputs: the model's tensors as MLServer's metadata lists them
            (``{"name", "datatype", "shape"}``).
    """

    def __init__(
        self,
        model: str,
        ir_folder: Path,
        work: Path,
        inputs: Sequence[dict[str, object]],
        outputs: Sequence[dict[str, object]],
    ) -> None:
        self.model = model
        self.http_port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        folder = work / model
        folder.mkdir(parents=True)
        shutil.copy(Path(__file__).with_name("mlserver_openvino.py"), folder)
        settings = {
            "host": "127.0.0.1",
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
            "metrics_port": free_port(),
            "parallel_workers": 0,
        }
        (work / "settings.json").write_text(json.dumps(settings))
        model_settings = {
            "name": model,
            "implementation": "mlserver_openvino.OpenVINOModel",
            "parameters": {"uri": str(ir_folder), "version": "1"},
            "inputs": list(inputs),
            "outputs": list(outputs),
        }
        (folder / "model-settings.json").write_text(json.dumps(model_settings))
        self.work = work
        self.lines: list[str] = []
        self.child: ChildProcess | None = None

    def start(self, timeout: float = 120) -> MLServerProcess:
        program = mlserver_path()
        if program is None:
            raise RuntimeError(f"MLServer is not installed in {VENV} (scripts/setup.sh test)")
        self.child = ChildProcess(
            "mlserver", [str(program), "start", str(self.work)], on_line=self.lines.append
        )

        def ready() -> bool:
            if self.child is not None and not self.child.alive():
                raise AssertionError("mlserver exited:\n" + "\n".join(self.lines[-40:]))
            try:
                reply = requests.get(f"{self.url}/v2/models/{self.model}/ready", timeout=2)
            except requests.RequestException:
                return False
            return reply.status_code == 200

        wait_for(ready, timeout, f"MLServer to serve {self.model}")
        return self

    def rest_url(self) -> str:
        return f"{self.url}/v2/models/{self.model}"

    def grpc_url(self) -> str:
        return f"kserve+grpc://127.0.0.1:{self.grpc_port}/{self.model}"

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(15)
