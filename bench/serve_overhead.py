"""Throughput of ``kva serve`` vs raw in-process OpenVINO, and payload formats side by side.

1. mobilenet_v2 on a 224x224 JPEG at concurrency 1 and 4: requests/s through
   ``kva serve`` (/v1 b64 JSON over HTTP) against raw in-process OpenVINO
   doing the same work (decode the JPEG, infer) with the same compiled
   settings on the same cores -> the ratio (target >= 0.9 at concurrency 4).
2. /v1 b64-JPEG vs /v2 binary (BYTES JPEG) vs /v2 JSON pixels (UINT8 numbers):
   bytes per request and requests/s at the same concurrency.

The load generator runs on the same machine (lightweight http.client
keep-alive connections, one per worker thread), so it competes with the
server for the cores: the ratio is a lower bound of the server's overhead.

    python bench/serve_overhead.py [--base-path DIR] [--seconds 3] [--rounds 3] [--device CPU]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import add_json_flag, write_figures  # noqa: E402
from procstat import cpu_seconds  # noqa: E402

from kva.model_files import compile_config  # noqa: E402
from kva.paths import models_dir  # noqa: E402
from kva.ports import free_port  # noqa: E402
from kva.tfserving.modelbuild import build_model  # noqa: E402

HEADER = "Inference-Header-Content-Length"


Worker = Callable[[], None]


@dataclass
class Run:
    """One measurement: requests/s, ms per request, CPU milliseconds per request in each process."""

    rate: float
    latency_ms: float
    own_cpu_ms: float
    server_cpu_ms: float


def run_workers(concurrency: int, seconds: float, workers: list[Worker], server_pid: int) -> Run:
    """``concurrency`` threads, thread ``i`` calling ``workers[i]`` in a loop for ``seconds``."""
    counts = [0] * concurrency
    busy = [0.0] * concurrency
    stop = threading.Event()
    for worker in workers:  # warm up
        worker()

    def loop(index: int) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            workers[index]()
            busy[index] += time.perf_counter() - started
            counts[index] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(concurrency)]
    own, server = time.process_time(), cpu_seconds(server_pid)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)  # the measured interval itself
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    done = max(1, sum(counts))
    return Run(
        done / elapsed,
        sum(busy) * 1000 / done,
        (time.process_time() - own) * 1000 / done,
        (cpu_seconds(server_pid) - server) * 1000 / done,
    )


def raw_worker_factory(compiled: object, jpeg: bytes) -> Callable[[], Callable[[], None]]:
    def make() -> Callable[[], None]:
        request = compiled.create_infer_request()  # type: ignore[attr-defined]

        def work() -> None:
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            request.infer({"image": rgb[None]})

        return work

    return make


def http_worker_factory(
    port: int, path: str, body: bytes, headers: dict[str, str]
) -> Callable[[], Callable[[], None]]:
    def make() -> Callable[[], None]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def work() -> None:
            conn.request("POST", path, body=body, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            if reply.status != 200:
                raise RuntimeError(f"HTTP {reply.status}: {data[:200]!r}")

        return work

    return make


def payloads(jpeg: bytes, pixels: np.ndarray) -> dict[str, tuple[str, bytes, dict[str, str]]]:
    v1 = json.dumps({"instances": [{"b64": base64.b64encode(jpeg).decode()}]}).encode()
    blob = len(jpeg).to_bytes(4, "little") + jpeg
    binary_input = {"name": "image", "shape": [1], "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(blob)}}  # fmt: skip
    head = json.dumps({"inputs": [binary_input]}).encode()
    pixel_input = {"name": "image", "shape": [1, 224, 224, 3], "datatype": "UINT8",
                   "data": pixels.reshape(-1).tolist()}  # fmt: skip
    v2_json = json.dumps({"inputs": [pixel_input]}).encode()
    json_headers = {"Content-Type": "application/json"}
    return {
        "/v1 b64 JPEG": ("/v1/models/mobilenet_v2:predict", v1, json_headers),
        "/v2 binary JPEG": ("/v2/models/mobilenet_v2/infer", head + blob,
                            {HEADER: str(len(head)), "Content-Type": "application/octet-stream"}),
        "/v2 JSON pixels": ("/v2/models/mobilenet_v2/infer", v2_json, json_headers),
    }  # fmt: skip


def start_server(
    base: Path, port: int, *flags: str, model: str = "mobilenet_v2"
) -> subprocess.Popen[bytes]:
    """``kva serve`` for ``model`` on REST ``port`` (plus ``flags``), once it reports ready."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVA_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kva", "serve", "--rest_api_port", str(port),
         "--model_name", model, "--model_base_path", str(base / model),
         *flags, "--log-level", "WARNING"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/v2/health/ready")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("kva serve did not become ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-path", type=Path, default=models_dir())
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--device", default="CPU")
    parser.add_argument("--rounds", type=int, default=3)
    add_json_flag(parser)
    args = parser.parse_args()

    import openvino as ov

    build_model("mobilenet_v2", args.base_path)
    pixels = cv2.resize(skimage.data.chelsea(), (224, 224), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
    )
    assert ok
    jpeg = encoded.tobytes()
    print(f"openvino {ov.__version__}, device {args.device}, {os.cpu_count()} CPUs, "
          f"{args.seconds:g} s per run, 224x224 JPEG of {len(jpeg)} bytes")  # fmt: skip

    core = ov.Core()
    xml = str(args.base_path / "mobilenet_v2" / "1" / "model.xml")
    # the settings kva serve compiles with (hint and precision)
    compiled = core.compile_model(xml, args.device, compile_config("THROUGHPUT"))
    port = free_port()
    proc = start_server(args.base_path, port, "--device", args.device)
    formats = payloads(jpeg, pixels)
    runs: dict[str, Callable[[], Callable[[], None]]] = {}
    for name, (path, body, headers) in formats.items():
        runs[name] = http_worker_factory(port, path, body, headers)
    results: dict[tuple[str, int], list[Run]] = {}
    plan = [("raw", 1), ("/v1 b64 JPEG", 1), ("raw", 4)] + [(name, 4) for name in formats]
    try:
        for _ in range(args.rounds):  # interleaved, so background load hits every variant alike
            for name, concurrency in plan:
                factory = raw_worker_factory(compiled, jpeg) if name == "raw" else runs[name]
                workers = [factory() for _ in range(concurrency)]
                results.setdefault((name, concurrency), []).append(
                    run_workers(concurrency, args.seconds, workers, proc.pid)
                )
    finally:
        proc.terminate()
        proc.wait(timeout=15)

    def median(key: tuple[str, int], field: str) -> float:
        return statistics.median(getattr(run, field) for run in results[key])

    print(f"\nserver overhead (mobilenet_v2, /v1 b64 JPEG), median of {args.rounds} runs")
    print(f"{'concurrency':>11} {'raw req/s':>10} {'served req/s':>13} {'ratio':>6}")
    for c in (1, 4):
        raw, served = median(("raw", c), "rate"), median(("/v1 b64 JPEG", c), "rate")
        print(f"{c:>11} {raw:>10.1f} {served:>13.1f} {served / raw:>6.2f}")
    print("\nCPU ms per request (independent of other load on the machine)")
    print(f"{'concurrency':>11} {'raw':>6} {'server':>7} {'client':>7} {'raw/server':>11}")
    for c in (1, 4):
        raw_cpu = median(("raw", c), "own_cpu_ms")
        server_cpu = median(("/v1 b64 JPEG", c), "server_cpu_ms")
        client_cpu = median(("/v1 b64 JPEG", c), "own_cpu_ms")
        print(
            f"{c:>11} {raw_cpu:>6.2f} {server_cpu:>7.2f} {client_cpu:>7.2f} "
            f"{raw_cpu / server_cpu:>11.2f}"
        )
    print("\npayload formats at concurrency 4")
    print(f"{'format':<17} {'bytes/request':>13} {'req/s':>8} {'server CPU ms':>14}")
    for name, (_path, body, _headers) in formats.items():
        rate, cpu = median((name, 4), "rate"), median((name, 4), "server_cpu_ms")
        print(f"{name:<17} {len(body):>13} {rate:>8.1f} {cpu:>14.2f}")
    write_figures(args.json, "serve_overhead", overhead_figures(results, formats))
    return 0


def overhead_figures(
    results: dict[tuple[str, int], list[Run]], formats: dict[str, tuple[str, bytes, dict]]
) -> dict:
    """Medians per variant and concurrency, and the ratios against raw OpenVINO."""
    runs = {
        f"{name} c{c}": {field: statistics.median(getattr(run, field) for run in measured)
                         for field in ("rate", "latency_ms", "own_cpu_ms", "server_cpu_ms")}
        for (name, c), measured in results.items()
    }  # fmt: skip
    raw4 = runs["raw c4"]
    return {
        "runs": runs,
        "bytes_per_request": {name: len(body) for name, (_p, body, _h) in formats.items()},
        "rate_ratio_v1_c4": runs["/v1 b64 JPEG c4"]["rate"] / raw4["rate"],
        "cpu_ratio_v1_c4": raw4["own_cpu_ms"] / runs["/v1 b64 JPEG c4"]["server_cpu_ms"],
        "cpu_ratio_v2_binary_c4": raw4["own_cpu_ms"] / runs["/v2 binary JPEG c4"]["server_cpu_ms"],
        "rate_ratio_v2_binary_c4": runs["/v2 binary JPEG c4"]["rate"] / raw4["rate"],
    }


if __name__ == "__main__":
    sys.exit(main())
