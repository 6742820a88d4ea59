"""The person model on kva up's demo video: ms per frame through ``kva serve``, people found.

Starts ``kva serve`` with the built ``person`` model and sends every ``--every``-th frame of
``vtest.avi`` (the demo video, ``scripts/fetch-demo-video.sh``) as a JPEG, one request at a
time, as the consumer does (/v2 binary, the server decodes and resizes). Prints the median
and p90 ms per request, the server's CPU ms per request, and how many of the sampled frames
have at least one person at the model's own score floor and at the consumer's default
``--min-score`` (0.5), with the distribution of people per frame.

    python bench/person_demo.py [--base-path DIR] [--every 10] [--rounds 3] [--hint LATENCY]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import struct
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from procstat import cpu_seconds  # noqa: E402

from bench.serve_overhead import start_server  # noqa: E402
from kva.paths import demo_video, models_dir  # noqa: E402
from kva.ports import free_port  # noqa: E402
from kva.tfserving.modelbuild import build_model  # noqa: E402
from kva.tfserving.modelbuild.person import SCORE_THRESHOLD  # noqa: E402

HEADER = "Inference-Header-Content-Length"
CONSUMER_MIN_SCORE = 0.5


def sampled_jpegs(path: Path, every: int) -> list[bytes]:
    """Every ``every``-th frame of the video as JPEG (quality 80, as the producer sends)."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames: list[bytes] = []
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return frames
            if index % every == 0:
                ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
                frames.append(data.tobytes())
            index += 1
    finally:
        capture.release()


def infer(conn: http.client.HTTPConnection, jpeg: bytes) -> np.ndarray:
    """The ``scores`` [32] of one JPEG through /v2 binary."""
    blob = struct.pack("<I", len(jpeg)) + jpeg
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(blob)},
                }
            ],
            "outputs": [{"name": "scores", "parameters": {"binary_data": True}}],
        }
    ).encode()
    try:
        conn.request("POST", "/v2/models/person/infer", head + blob, {HEADER: str(len(head))})
        reply = conn.getresponse()
    except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
        conn.close()  # the server closed an idle keep-alive connection: once more, new one
        conn.request("POST", "/v2/models/person/infer", head + blob, {HEADER: str(len(head))})
        reply = conn.getresponse()
    body = reply.read()
    if reply.status != 200:
        raise RuntimeError(f"HTTP {reply.status}: {body[:200]!r}")
    size = int(reply.headers[HEADER])
    return np.frombuffer(body[size:], np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-path", type=Path, default=models_dir())
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--hint", choices=["THROUGHPUT", "LATENCY"], default="THROUGHPUT", help="kva serve's"
    )
    args = parser.parse_args()
    video = demo_video()
    if not video.is_file():
        print(f"{video} is missing: run scripts/fetch-demo-video.sh", file=sys.stderr)
        return 1
    build_model("person", args.base_path)
    jpegs = sampled_jpegs(video, args.every)
    port = free_port()
    server = start_server(args.base_path, port, "--performance_hint", args.hint, model="person")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for jpeg in jpegs[:5]:  # warm up
            infer(conn, jpeg)
        times: list[float] = []
        counts: list[np.ndarray] = []
        cpu_before = cpu_seconds(server.pid)
        for _ in range(args.rounds):
            for jpeg in jpegs:
                started = time.perf_counter()
                scores = infer(conn, jpeg)
                times.append((time.perf_counter() - started) * 1000)
                counts.append(scores)
        server_cpu_ms = (cpu_seconds(server.pid) - cpu_before) * 1000 / len(times)
        conn.close()
    finally:
        server.terminate()
        server.wait(30)
    per_frame = counts[: len(jpegs)]
    print(
        f"{video.name}: {len(jpegs)} frames (every {args.every}th), {args.rounds} rounds, "
        f"kva serve --performance_hint {args.hint}"
    )
    print(
        f"ms per frame through kva serve (/v2 binary JPEG, 1 client): median "
        f"{statistics.median(times):.1f}, p90 {float(np.percentile(times, 90)):.1f}; "
        f"server CPU {server_cpu_ms:.1f} ms per frame"
    )
    for floor in (SCORE_THRESHOLD, CONSUMER_MIN_SCORE):
        people = [int((scores >= floor).sum()) for scores in per_frame]
        with_people = sum(1 for n in people if n > 0)
        print(
            f"score >= {floor}: {with_people}/{len(people)} frames with >= 1 person; people per "
            f"frame median {statistics.median(people):g}, max {max(people)}; "
            f"histogram {np.bincount(people).tolist()}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
