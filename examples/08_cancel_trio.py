"""Cancellation from outside, on Trio: the caller's cancel scope reaches every task.

A fan-out to two blackholed hosts and two slow readers is cancelled after 0.2 s by a
``move_on_after`` around it. When the scope exits, every task of the fan-out has
finished and every socket is closed: the nursery guarantees it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat

import trio

from trio_sockets import trio_port
from trio_sockets.testing import LoopbackServer


def client_sockets(server_ports: set[int]) -> int:
    """Our open sockets, less the servers' own (their threads close them in their time)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                sock = socket.socket(fileno=int(name))
                try:
                    if sock.family in (socket.AF_INET, socket.AF_INET6):
                        count += sock.getsockname()[1] not in server_ports
                finally:
                    sock.detach()
    return count


async def main(servers: list[LoopbackServer]) -> None:
    targets = [s.target for s in servers]
    ports = {s.port for s in servers}
    before = client_sockets(ports)
    with trio.move_on_after(0.2) as scope:
        await trio_port.send_to_many(targets, bytes(8 * 1024 * 1024), timeout=5.0)
    print(f"cancelled from outside: {scope.cancelled_caught}")
    print(f"sockets left open: {client_sockets(ports) - before}")


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(LoopbackServer(m)) for m in ("blackhole",) * 2]
        servers += [stack.enter_context(LoopbackServer("slow")) for _ in range(2)]
        trio.run(main, servers)
