"""Which TCP sockets listen, and on which address, read from Linux's ``/proc``."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from kva.process import descendant_pids

#: The state of a listening socket in ``/proc/net/tcp``.
LISTEN = "0A"
#: Loopback as /proc shows it (Java listens on the IPv4-mapped IPv6 address).
LOOPBACK = ("127.0.0.1", "::ffff:127.0.0.1", "::1")


def _address(hex_address: str) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # /proc prints IPv6 as four little-endian 32-bit words
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        ip = socket.inet_ntop(socket.AF_INET6, words)
    return ip, int(port, 16)


def listening_sockets() -> list[tuple[str, int, str]]:
    """(address, port, inode) of every listening TCP socket of this machine."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN:
                found.append((*_address(fields[1]), fields[9]))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket of ``pid`` and its descendants."""
    inodes: set[str] = set()
    for member in {pid, *descendant_pids(pid)}:
        inodes |= _socket_inodes(member)
    return [(ip, port) for ip, port, inode in listening_sockets() if inode in inodes]


def listening_on(port: int) -> set[str]:
    """The addresses sockets listen on at ``port`` (any process)."""
    return {ip for ip, bound, _inode in listening_sockets() if bound == port}
