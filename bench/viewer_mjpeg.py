"""P5: N concurrent MJPEG clients on one 720p 30 fps stream — per-client fps and server CPU.

The viewer (the real app on waitress) runs in its own process, fed 720p
JPEGs at the source rate straight into its frame store; the clients run in
separate processes (raw sockets, counting part boundaries), so the server's
CPU time is its own. Target: every client >= 0.95 x source fps at N = 100, for at
most 30 % of one core.

Live streams go out from the viewer's one sender thread (``kva.video.fanout``). As
the baseline, the same run then serves the largest N the old way, one waitress
worker thread per client (what the viewer still does when no fan-out is attached),
in a fresh viewer process: the ratio of the two CPU figures is side by side.

    python bench/viewer_mjpeg.py [--clients 1 10 50 100] [--fps 30] [--seconds 10]
        [--no-baseline] [--json PATH]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import selectors
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from figures import add_json_flag, write_figures  # noqa: E402
from procstat import cpu_seconds  # noqa: E402

DELIMITER = b"\r\n--kvaframe\r\n"
WARMUP_SECONDS = 2.0


def _frames(count: int) -> list:
    import cv2
    import skimage.data

    from kva.frame import Frame

    base = cv2.resize(cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR), (1280, 720))
    frames = []
    for seq in range(count):
        image = base.copy()
        cv2.rectangle(image, (10, 10), (420, 70), (40, 40, 40), -1)
        cv2.putText(
            image, "tabby cat 0.83", (22, 55), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (90, 230, 140), 2
        )
        cv2.putText(
            image, f"#{seq}", (1100, 690), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2
        )
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert ok
        frames.append(Frame("cam0", seq, time.time_ns(), 1280, 720, data.tobytes()))
    return frames


def serve(
    port_out: mp.Queue,
    fps: float,
    max_fps: float,
    threads: int,
    stop: mp.Event,
    fed: mp.Value,
    fanout: bool = True,
) -> None:
    """The viewer process: app + waitress + a 720p feeder at ``fps`` (``fanout=False``: one
    worker thread per client)."""
    from kva.video.app import create_app
    from kva.video.config import VideoSettings
    from kva.video.server import ViewerServer
    from kva.video.state import viewer_state

    app = create_app(VideoSettings(video_port=0, video_threads=threads, video_max_fps=max_fps))
    store = viewer_state(app).store
    frames = _frames(30)
    server = ViewerServer(app).start()
    if not fanout:
        viewer_state(app).fanout = None  # the route falls back to a generator per client

    def feed() -> None:
        interval, next_at, seq = 1.0 / fps, time.monotonic(), 0
        while not stop.is_set():
            frame = frames[seq % len(frames)]
            store.put_frame(frame.replace(sequence=seq, capture_ns=time.time_ns()))
            seq += 1
            fed.value = seq
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    threading.Thread(target=feed, daemon=True).start()
    port_out.put((os.getpid(), server.port, len(frames[0].data)))
    stop.wait()
    server.stop()


def clients(port: int, count: int, seconds: float, start_at: float, out: mp.Queue) -> None:
    """``count`` MJPEG clients on one selector; reports parts per second of each."""
    selector = selectors.DefaultSelector()
    socks = []
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /streams/cam0.mjpg HTTP/1.1\r\nHost: bench\r\n\r\n")
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, i)
        socks.append(sock)
    counts = [0] * count
    tails = [b""] * count
    counting = False
    end = start_at + seconds
    while True:
        now = time.monotonic()
        if not counting and now >= start_at:
            counting, counts = True, [0] * count
        if now >= end:
            break
        for key, _ in selector.select(timeout=0.05):
            i = key.data
            try:
                data = key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError("the viewer closed a stream")
            # delimiters inside this read, plus one split across the previous read
            keep = len(DELIMITER) - 1
            counts[i] += data.count(DELIMITER) + (tails[i] + data[:keep]).count(DELIMITER)
            tails[i] = (tails[i] + data)[-keep:] if len(data) < keep else data[-keep:]
    for sock in socks:
        sock.close()
    times = os.times()
    out.put(([c / seconds for c in counts], times.user + times.system))


class Viewer:
    """A viewer process (see :func:`serve`), started at construction."""

    def __init__(self, args: argparse.Namespace, fanout: bool) -> None:
        self._stop = mp.Event()
        port_q: mp.Queue = mp.Queue()
        self.fed = mp.Value("l", 0)
        self._process = mp.Process(
            target=serve,
            args=(port_q, args.fps, args.max_fps, args.threads, self._stop, self.fed, fanout),
        )
        self._process.start()
        self.pid, self.port, self.frame_bytes = port_q.get(timeout=60)

    def stop(self) -> None:
        self._stop.set()
        self._process.join(30)


def runqueue_wait_seconds(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that just ended
    return total / 1e9


def run_one(port: int, pid: int, fed: mp.Value, n: int, seconds: float, procs: int) -> dict:
    out: mp.Queue = mp.Queue()
    start_at = time.monotonic() + WARMUP_SECONDS + 0.02 * n
    shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    workers = [
        mp.Process(target=clients, args=(port, k, seconds, start_at, out)) for k in shares if k
    ]
    for w in workers:
        w.start()
    while time.monotonic() < start_at:
        time.sleep(0.01)
    cpu0, t0, fed0, wait0 = (
        cpu_seconds(pid),
        time.monotonic(),
        fed.value,
        runqueue_wait_seconds(pid),
    )
    time.sleep(seconds)
    cpu1, t1, fed1, wait1 = (
        cpu_seconds(pid),
        time.monotonic(),
        fed.value,
        runqueue_wait_seconds(pid),
    )
    rates: list[float] = []
    client_cpu = 0.0
    for _ in workers:
        worker_rates, worker_cpu = out.get(timeout=60)
        rates += worker_rates
        client_cpu += worker_cpu
    for w in workers:
        w.join(30)
    return {
        "n": n,
        "min": min(rates),
        "median": statistics.median(rates),
        "max": max(rates),
        "cpu": 100 * (cpu1 - cpu0) / (t1 - t0),
        "source": (fed1 - fed0) / (t1 - t0),
        # thread-seconds per second the server was ready to run but had no CPU
        "waiting": (wait1 - wait0) / (t1 - t0),
        # whole client lifetime (connect, warm-up, window): an upper bound for the window
        "client_cpu": 100 * client_cpu / (seconds + WARMUP_SECONDS + 0.02 * n),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=256)
    parser.add_argument("--max-fps", type=float, default=30.0, help="the viewer's --max-fps")
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the thread-per-client run at the largest N",
    )
    add_json_flag(parser)
    args = parser.parse_args()
    points = []
    viewer = Viewer(args, fanout=True)
    pid, port, frame_bytes, fed = viewer.pid, viewer.port, viewer.frame_bytes, viewer.fed
    print(
        f"viewer pid {pid} on port {port}; source: 1280x720 JPEG ({frame_bytes // 1024} KiB) "
        f"at {args.fps:g} fps; viewer --max-fps {args.max_fps:g}; {os.cpu_count()} CPUs; "
        f"{args.seconds:g} s per run; load = 1-min load average (other work on the machine); "
        f"no-CPU s/s = server thread-seconds per second spent runnable but waiting for a CPU"
    )
    print(
        f"{'N':>5} {'source':>7} {'min fps':>8} {'median':>8} {'max':>8} {'min/src':>8} "
        f"{'server CPU %':>13} {'clients CPU %':>14} {'MB/s out':>9} {'load':>5} {'no-CPU s/s':>10}"
    )
    worst = 1.0
    try:
        for n in args.clients:
            r = run_one(port, pid, fed, n, args.seconds, min(args.client_procs, n))
            # against the rate the source really delivered in the window (a busy machine
            # can delay the feeder itself)
            ratio = r["min"] / min(args.fps, r["source"])
            if n == max(args.clients):
                worst = min(worst, ratio)
            mbps = r["median"] * n * frame_bytes / 1e6
            sent = r["median"] * n  # frames per second out, all clients
            cpu_ms = r["cpu"] * 10 / sent if sent else None  # % of a core -> ms per frame sent
            points.append({**r, "ratio": ratio, "mb_per_s": mbps, "cpu_ms_per_frame_sent": cpu_ms})
            print(
                f"{n:>5} {r['source']:>7.2f} {r['min']:>8.2f} {r['median']:>8.2f} "
                f"{r['max']:>8.2f} {ratio:>8.3f} {r['cpu']:>13.1f} {r['client_cpu']:>14.1f} "
                f"{mbps:>9.1f} {os.getloadavg()[0]:>5.1f} {r['waiting']:>10.2f}",
                flush=True,
            )
            time.sleep(1.0)  # let the server drop the closed clients
    finally:
        viewer.stop()
    target = 0.95
    n_max = max(args.clients)
    baseline = None
    if args.baseline:
        old = Viewer(args, fanout=False)
        try:
            baseline = run_one(old.port, old.pid, old.fed, n_max, args.seconds,
                               min(args.client_procs, n_max))  # fmt: skip
        finally:
            old.stop()
        fanout_cpu = next(p["cpu"] for p in points if p["n"] == n_max)
        print(
            f"baseline, one worker thread per client (N = {n_max}): min fps {baseline['min']:.2f}, "
            f"server CPU {baseline['cpu']:.1f} %; the fan-out uses "
            f"{fanout_cpu / baseline['cpu']:.2f} x its CPU (load {os.getloadavg()[0]:.1f})"
        )
    print(
        f"target: every client >= {target} x source fps at N = {n_max}: "
        f"{'met' if worst >= target else 'NOT met'} (worst {worst:.3f})"
    )
    at_max = [p for p in points if p["n"] == n_max]
    write_figures(
        args.json,
        "viewer_mjpeg",
        {
            "source_fps": args.fps,
            "points": points,
            "n_max": n_max,
            "worst_ratio": worst,
            "server_cpu_percent": at_max[0]["cpu"] if at_max else None,
            "server_cpu_ms_per_frame_sent": at_max[0]["cpu_ms_per_frame_sent"] if at_max else None,
            "threads_baseline": baseline,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
