"""kva.process.ChildProcess: children die with their parent, and start even beside gRPC."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from kva.process import is_running
from tests.support.wait import wait_for

pytestmark = pytest.mark.subprocess


def test_a_child_gets_its_death_signal_when_its_parent_dies() -> None:
    parent = textwrap.dedent(
        """
        import os, sys, time
        from kva.process import ChildProcess
        child = ChildProcess("sleeper", ["sleep", "300"])
        deadline = time.monotonic() + 30
        # setpriv sets the death signal, then execs sleep: wait for the exec, or a parent
        # that dies first leaves an orphan that never gets the signal
        while open(f"/proc/{child.pid}/comm").read().strip() != "sleep":
            assert time.monotonic() < deadline, "sleep never started"
            time.sleep(0.01)
        print(child.pid, flush=True)
        os._exit(0)  # no clean-up of any kind: only the death signal stops the child
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, timeout=60, check=True
    )
    child = int(done.stdout.split()[0])
    wait_for(lambda: not is_running(child), 10, f"child {child} to stop with its parent")


def test_children_start_while_grpc_is_busy_in_the_parent() -> None:
    """A ``preexec_fn`` (fork, not vfork) ran gRPC's fork handlers and killed ~2 % of children.

    Those children printed "epoll_wait error: Bad file descriptor" and never ran their
    program: in CI, a ``kva serve`` started by a test that had used gRPC never got ready.
    """
    script = textwrap.dedent(
        """
        import sys, threading
        from concurrent import futures
        import grpc
        from kva.process import ChildProcess

        server = grpc.server(futures.ThreadPoolExecutor(4))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        call = channel.unary_unary("/no.Such/Method")

        def keep_calling():
            while True:
                try:
                    call(b"", timeout=0.05)
                except grpc.RpcError:
                    pass

        for _ in range(4):
            threading.Thread(target=keep_calling, daemon=True).start()
        failed = 0
        for i in range(150):
            lines = []
            child = ChildProcess("echo", [sys.executable, "-c", "print('ran')"], on_line=lines.append)
            child.popen.wait(30)
            child.drain_output()
            if lines != ["ran"]:
                failed += 1
                print(f"child {i}: {lines}")
        print(f"failed {failed}")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.strip().endswith("failed 0"), done.stdout[-3000:]
