"""The same 224x224 frame over /v1 b64 JSON, /v2 binary, gRPC and KServe gRPC: req/s, bytes.

mobilenet_v2 on one ``kva serve --rest_api_port R --port G`` at concurrency 1
and 4, the three transports interleaved over several rounds (median):

- ``/v1 b64 JSON``: ``{"instances": [{"b64": ...}]}`` over HTTP/1.1 keep-alive (TCP_NODELAY,
  as urllib3 sets it; the answer is parsed);
- ``/v2 binary``: KServe binary extension, the JPEG as one BYTES element, JSON answer;
- ``gRPC``: ``PredictionService.Predict`` with a DT_STRING tensor, one channel
  shared by the workers (as ``kva consume`` does);
- ``KServe gRPC``: ``inference.GRPCInferenceService/ModelInfer`` (KServe v2 gRPC,
  kva's own messages), the JPEG as one length-prefixed BYTES element in
  ``raw_input_contents``, the outputs read from ``raw_output_contents``, one
  channel shared by the workers.

Bytes per request are counted on the wire (both directions, HTTP/1.1 or
HTTP/2 framing included) by a counting TCP relay in a separate pass, so the
relay does not slow the throughput runs. CPU ms per request are the client's
(this process) and the server's (``/proc/<pid>/stat``). The load generator
shares the machine's cores with the server.

    python bench/grpc_payloads.py [--base-path DIR] [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve_overhead import Run, Worker, run_workers, start_server  # noqa: E402
from kva import kserve_grpc_api  # noqa: E402
from kva.grpc_api import load, make_ndarray, make_tensor_proto  # noqa: E402
from kva.paths import models_dir  # noqa: E402
from kva.ports import free_port  # noqa: E402
from kva.tfserving.modelbuild import build_model  # noqa: E402

MODEL = "mobilenet_v2"
HEADER = "Inference-Header-Content-Length"


class CountingRelay:
    """A TCP relay 127.0.0.1:<port> -> target port counting the bytes each way."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.up = 0
        self.down = 0
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, up: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                with self._lock:
                    if up:
                        self.up += len(data)
                    else:
                        self.down += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def reset(self) -> None:
        with self._lock:
            self.up = self.down = 0

    def close(self) -> None:
        self._sock.close()


# -- the three clients: factory(port) -> make_worker() -> worker() ----------------------------
def rest_factory(path: str, body: bytes, headers: dict[str, str]) -> Callable[[int], Worker]:
    def factory(port: int) -> Worker:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.connect()
        # as urllib3/requests (the consumer) do: no Nagle delay between headers and body
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def work() -> None:
            conn.request("POST", path, body=body, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            if reply.status != 200:
                raise RuntimeError(f"HTTP {reply.status}: {data[:200]!r}")
            json.loads(data)  # the client parses the answer, as the gRPC worker does

        return work

    return factory


def grpc_factory(jpeg: bytes) -> Callable[[int], Callable[[], Worker]]:
    """gRPC: one channel per port (shared by the workers), as ``kva consume`` does."""
    api = load()
    channels: dict[int, object] = {}

    def factory(port: int) -> Worker:
        if port not in channels:
            channels[port] = api.grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = api.prediction_service_pb2_grpc.PredictionServiceStub(channels[port])
        request = api.predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["image"].CopyFrom(make_tensor_proto(api, np.array([jpeg], dtype=object)))
        request.output_filter.extend(["classes", "scores"])

        def work() -> None:
            response = stub.Predict(request, timeout=30)
            make_ndarray(api, response.outputs["classes"])
            make_ndarray(api, response.outputs["scores"])

        return work

    return factory  # type: ignore[return-value]


def kserve_factory(jpeg: bytes) -> Callable[[int], Worker]:
    """KServe v2 gRPC ModelInfer: one channel per port (shared by the workers)."""
    api = kserve_grpc_api.load()
    channels: dict[int, Any] = {}
    request = api.message("ModelInferRequest")(model_name=MODEL)
    request.inputs.add(name="image", datatype="BYTES", shape=[1])
    request.raw_input_contents.append(len(jpeg).to_bytes(4, "little") + jpeg)
    for name in ("classes", "scores"):
        request.outputs.add(name=name)
    reply_type = api.message("ModelInferResponse")

    def factory(port: int) -> Worker:
        if port not in channels:
            channels[port] = api.grpc.insecure_channel(f"127.0.0.1:{port}")
        infer = channels[port].unary_unary(
            f"/{kserve_grpc_api.SERVICE}/ModelInfer",
            request_serializer=type(request).SerializeToString,
            response_deserializer=reply_type.FromString,
        )

        def work() -> None:
            response = infer(request, timeout=30)
            for output, raw in zip(response.outputs, response.raw_output_contents, strict=True):
                dtype = "<i4" if output.datatype == "INT32" else "<f4"
                np.frombuffer(raw, dtype).reshape(tuple(output.shape))

        return work

    return factory


def transports(jpeg: bytes) -> dict[str, tuple[str, Callable[[int], Worker]]]:
    """name -> (which port: rest|grpc, worker factory)."""
    v1 = json.dumps({"instances": [{"b64": base64.b64encode(jpeg).decode()}]}).encode()
    blob = len(jpeg).to_bytes(4, "little") + jpeg
    head = json.dumps({
        "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(blob)}}],
        "outputs": [{"name": n, "parameters": {"binary_data": False}}
                    for n in ("classes", "scores")],
    }).encode()  # fmt: skip
    return {
        "/v1 b64 JSON": ("rest", rest_factory(f"/v1/models/{MODEL}:predict", v1,
                                              {"Content-Type": "application/json"})),
        "/v2 binary": ("rest", rest_factory(f"/v2/models/{MODEL}/infer", head + blob,
                                            {HEADER: str(len(head)),
                                             "Content-Type": "application/octet-stream"})),
        "gRPC": ("grpc", grpc_factory(jpeg)),  # type: ignore[dict-item]
        "KServe gRPC": ("grpc", kserve_factory(jpeg)),
    }  # fmt: skip


def wire_bytes(factory: Callable[[int], Worker], port: int, count: int) -> tuple[float, float]:
    """(bytes up, bytes down) per request through a counting relay, after one warm-up call."""
    relay = CountingRelay(port)
    try:
        worker = factory(relay.port)
        worker()
        relay.reset()
        for _ in range(count):
            worker()
        time.sleep(0.2)  # let the relay's pump threads account for the last reply
        return relay.up / count, relay.down / count
    finally:
        relay.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-path", type=Path, default=models_dir())
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bytes-requests", type=int, default=50)
    args = parser.parse_args()

    build_model(MODEL, args.base_path)
    pixels = cv2.resize(skimage.data.chelsea(), (224, 224), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
    )
    assert ok
    jpeg = encoded.tobytes()
    print(f"{os.cpu_count()} CPUs, {args.seconds:g} s per run, median of {args.rounds} rounds, "
          f"224x224 JPEG of {len(jpeg)} bytes")  # fmt: skip
    ports = {"rest": free_port(), "grpc": free_port()}
    proc = start_server(args.base_path, ports["rest"], "--port", str(ports["grpc"]), model=MODEL)
    plan = transports(jpeg)
    results: dict[tuple[str, int], list[Run]] = {}
    sizes: dict[str, tuple[float, float]] = {}
    try:
        for name, (kind, factory) in plan.items():
            sizes[name] = wire_bytes(factory, ports[kind], args.bytes_requests)
        for _ in range(args.rounds):  # interleaved: background load hits every transport alike
            for concurrency in (1, 4):
                for name, (kind, factory) in plan.items():
                    workers = [factory(ports[kind]) for _ in range(concurrency)]
                    results.setdefault((name, concurrency), []).append(
                        run_workers(concurrency, args.seconds, workers, proc.pid)
                    )
    finally:
        proc.terminate()
        proc.wait(timeout=15)

    def median(key: tuple[str, int], field: str) -> float:
        return statistics.median(getattr(run, field) for run in results[key])

    print(
        f"\n{'transport':<13} {'conc.':>5} {'req/s':>7} {'latency ms':>10} {'bytes up':>9} "
        f"{'bytes down':>10} {'client CPU ms':>13} {'server CPU ms':>13}"
    )
    for concurrency in (1, 4):
        for name in plan:
            key = (name, concurrency)
            up, down = sizes[name]
            print(
                f"{name:<13} {concurrency:>5} {median(key, 'rate'):>7.1f} "
                f"{median(key, 'latency_ms'):>10.2f} {up:>9.0f} {down:>10.0f} "
                f"{median(key, 'own_cpu_ms'):>13.2f} {median(key, 'server_cpu_ms'):>13.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
