"""A fixed-latency model server for the consumer's tests and benchmarks.

It speaks the parts of TF Serving ``/v1`` and KServe ``/v2`` REST the consumer
uses (status/health, metadata, predict/infer with JSON and the binary
extension, and kva's ``/labels``), decodes the JPEG it receives (checking
it has the model's input size), waits a fixed latency (one request at a
time by default, like one inference stream) and answers with canned but
correctly shaped classifier or detector outputs. The answer depends on the
image (class id = mean grey level) so tests can tell frames apart. It can be
switched at run time to fail (500), answer garbage, answer wrongly shaped
tensors or hang.

Run alone: ``python -m testbed.model_server --port 8501 --latency 0.05``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

MODES = ("ok", "error", "garbage", "wrong_shape", "hang", "not_ready")
MAX_BODY = 16 * 1024 * 1024


class FixedLatencyServer:
    """One replica serving one model (``classifier`` or ``detector``) on 127.0.0.1."""

    def __init__(
        self,
        model: str = "mobilenet_v2",
        kind: str = "classifier",
        *,
        latency: float = 0.05,
        port: int = 0,
        size: tuple[int, int] = (224, 224),
        concurrency: int = 1,
        labels: list[str] | None = None,
        detections: int = 2,
    ) -> None:
        self.model = model
        self.kind = kind
        self.latency = latency
        self.mode = "ok"
        self.height, self.width = size
        self.labels = labels
        self.detections = detections
        self.requests: dict[str, int] = {}
        self.last_image_shape: tuple[int, ...] | None = None
        self._slots = threading.Semaphore(concurrency)
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._connections: set[socket.socket] = set()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> FixedLatencyServer:
        """Listen (again, on the same port after :meth:`stop`)."""
        self._stop.clear()
        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), _handler(self))
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close the socket (a killed replica)."""
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._count_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:  # keep-alive connections die with the process, too
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FixedLatencyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    def url(self, protocol: str = "v1") -> str:
        """The replica URL for ``--model``."""
        return f"http://127.0.0.1:{self._port}/{protocol}/models/{self.model}"

    def count(self, key: str) -> int:
        with self._count_lock:
            return self.requests.get(key, 0)

    def _counted(self, key: str) -> None:
        with self._count_lock:
            self.requests[key] = self.requests.get(key, 0) + 1

    # -- model --------------------------------------------------------------------------
    def output_names(self) -> list[str]:
        return ["scores", "classes"] if self.kind == "classifier" else ["boxes", "scores"]

    def run(self, image_bytes: bytes) -> dict[str, np.ndarray]:
        """Decode, check the size, wait the latency, answer (batch of one)."""
        image = cv2.imdecode(np.frombuffer(image_bytes, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError("input is not a decodable image")
        self.last_image_shape = image.shape
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"image is {image.shape[1]}x{image.shape[0]}, model wants "
                f"{self.width}x{self.height}"
            )
        with self._slots:
            if self.latency:
                self._stop.wait(self.latency)
        grey = int(image.mean())
        if self.kind == "classifier":
            classes = np.array([[grey, grey + 1, grey + 2, grey + 3, grey + 4]], np.int64)
            scores = np.array([[0.6, 0.2, 0.1, 0.05, 0.05]], np.float32)
            return {"scores": scores, "classes": classes}
        k = max(1, self.detections)
        boxes = np.zeros((1, k, 4), np.float32)
        scores = np.zeros((1, k), np.float32)
        boxes[0, 0] = [0.25, 0.25, 0.75, 0.75]
        scores[0, 0] = 0.9
        return {"boxes": boxes, "scores": scores}


def _v1_metadata(server: FixedLatencyServer) -> dict[str, Any]:
    def tensor(dtype: str, dims: list[int], name: str) -> dict[str, Any]:
        return {
            "dtype": dtype,
            "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in dims]},
            "name": name,
        }

    k = server.detections
    outputs = (
        {
            "scores": tensor("DT_FLOAT", [-1, 5], "scores"),
            "classes": tensor("DT_INT64", [-1, 5], "classes"),
        }
        if server.kind == "classifier"
        else {
            "boxes": tensor("DT_FLOAT", [-1, k, 4], "boxes"),
            "scores": tensor("DT_FLOAT", [-1, k], "scores"),
        }
    )
    return {
        "model_spec": {"name": server.model, "signature_name": "", "version": "1"},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    "serving_default": {
                        "inputs": {
                            "image": tensor(
                                "DT_UINT8", [-1, server.height, server.width, 3], "image"
                            )
                        },
                        "outputs": outputs,
                        "method_name": "tensorflow/serving/predict",
                    }
                }
            }
        },
    }


def _v2_metadata(server: FixedLatencyServer) -> dict[str, Any]:
    k = server.detections
    outputs = (
        [
            {"name": "scores", "datatype": "FP32", "shape": [-1, 5]},
            {"name": "classes", "datatype": "INT64", "shape": [-1, 5]},
        ]
        if server.kind == "classifier"
        else [
            {"name": "boxes", "datatype": "FP32", "shape": [-1, k, 4]},
            {"name": "scores", "datatype": "FP32", "shape": [-1, k]},
        ]
    )
    return {
        "name": server.model,
        "versions": ["1"],
        "platform": "OpenVINO",
        "inputs": [
            {"name": "image", "datatype": "UINT8", "shape": [-1, server.height, server.width, 3]}
        ],
        "outputs": outputs,
    }


_V2_TYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}


def _handler(server: FixedLatencyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # headers and body go out as separate writes: without this, Nagle's algorithm
            # and the client's delayed ACK add ~40 ms to every answer
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with server._count_lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            with server._count_lock:
                server._connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

        def _send(
            self,
            status: int,
            body: bytes,
            ctype: str = "application/json",
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, document: Any) -> None:
            self._send(status, json.dumps(document).encode())

        def _error(self, status: int, message: str) -> None:
            self._json(status, {"error": message})

        def _misbehave(self) -> bool:
            mode = server.mode
            if mode == "hang":
                server._stop.wait(120)
                self.close_connection = True
                return True
            if mode == "error":
                self._error(500, "injected failure")
                return True
            if mode == "garbage":
                self._send(200, b"\x00\x01 this is not json {{{", "application/json")
                return True
            return False

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0].rstrip("/")
            base1, base2 = f"/v1/models/{server.model}", f"/v2/models/{server.model}"
            server._counted("GET " + path)
            if server.mode in ("hang", "not_ready", "error"):
                if server.mode == "hang":
                    server._stop.wait(120)
                    self.close_connection = True
                    return
                self._error(503, "not ready")
                return
            if path == base1:
                self._json(
                    200,
                    {
                        "model_version_status": [
                            {
                                "version": "1",
                                "state": "AVAILABLE",
                                "status": {"error_code": "OK", "error_message": ""},
                            }
                        ]
                    },
                )
            elif path == base1 + "/metadata":
                self._json(200, _v1_metadata(server))
            elif path in ("/v2/health/ready", "/v2/health/live", base2 + "/ready"):
                self._send(200, b"")
            elif path == base2:
                self._json(200, _v2_metadata(server))
            elif path in (base1 + "/labels", base2 + "/labels"):
                if server.labels is None:
                    self._error(404, f"model {server.model} has no labels")
                else:
                    self._json(200, server.labels)
            elif path.startswith(("/v1/models/", "/v2/models/")):
                self._error(404, f"Servable not found for request: {path}")
            else:
                self._error(404, "not found")

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            server._counted("POST " + path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._error(413, "too large")
                return
            body = self.rfile.read(length)
            if self._misbehave():
                return
            try:
                if path == f"/v1/models/{server.model}:predict":
                    self._predict_v1(body)
                elif path == f"/v2/models/{server.model}/infer":
                    self._infer_v2(body)
                else:
                    self._error(404, f"Servable not found for request: {path}")
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                self._error(400, str(exc))

        def _outputs(self, image: bytes) -> dict[str, np.ndarray]:
            outputs = server.run(image)
            if server.mode == "wrong_shape":
                outputs = {  # lengths that do not fit together
                    k: v.reshape(-1)[: 2 + i].reshape(1, -1)
                    for i, (k, v) in enumerate(outputs.items())
                }
            return outputs

        def _predict_v1(self, body: bytes) -> None:
            request = json.loads(body)
            instance = request["instances"][0]
            if "image" in instance and isinstance(instance["image"], dict):
                instance = instance["image"]
            outputs = self._outputs(base64.b64decode(instance["b64"]))
            self._json(200, {"predictions": [{k: v[0].tolist() for k, v in outputs.items()}]})

        def _infer_v2(self, body: bytes) -> None:
            header_length = self.headers.get("Inference-Header-Content-Length")
            split = int(header_length) if header_length else len(body)
            request = json.loads(body[:split])
            tensor = request["inputs"][0]
            if tensor["datatype"] != "BYTES":
                raise ValueError("this test server takes encoded images (BYTES)")
            if "parameters" in tensor and "binary_data_size" in tensor["parameters"]:
                raw = body[split : split + int(tensor["parameters"]["binary_data_size"])]
                (size,) = struct.unpack("<I", raw[:4])
                image = raw[4 : 4 + size]
            else:
                image = base64.b64decode(tensor["data"][0])
            outputs = self._outputs(image)
            self._json(
                200,
                {
                    "model_name": server.model,
                    "model_version": "1",
                    "outputs": [
                        {
                            "name": k,
                            "shape": list(v.shape),
                            "datatype": _V2_TYPES[v.dtype],
                            "data": v.reshape(-1).tolist(),
                        }
                        for k, v in outputs.items()
                    ],
                },
            )

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="first port (0 = any free ports)")
    parser.add_argument("--count", type=int, default=1, help="replicas to start")
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--kind", choices=["classifier", "detector"], default="classifier")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    servers = [
        FixedLatencyServer(
            args.model,
            args.kind,
            latency=args.latency,
            port=args.port + i if args.port else 0,
            concurrency=args.concurrency,
        ).start()
        for i in range(args.count)
    ]
    for server in servers:
        print(server.url("v1"), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
