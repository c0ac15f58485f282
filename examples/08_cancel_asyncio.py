"""Cancellation from outside, on asyncio: ``Task.cancel()`` on the task of the fan-out.

A fan-out to two blackholed hosts and two slow readers runs in a task that another
task cancels after 0.2 s. The TaskGroup inside cancels its children and waits for them,
so when the task is done, no other task and no socket is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat

from trio_sockets import asyncio_port
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
    task = asyncio.create_task(
        asyncio_port.send_to_many(targets, bytes(8 * 1024 * 1024), timeout=5.0)
    )
    await asyncio.sleep(0.2)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print(f"cancelled from outside: {task.cancelled()}")
    print(f"sockets left open: {client_sockets(ports) - before}")
    print(f"tasks left: {len(asyncio.all_tasks()) - 1}")


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(LoopbackServer(m)) for m in ("blackhole",) * 2]
        servers += [stack.enter_context(LoopbackServer("slow")) for _ in range(2)]
        asyncio.run(main(servers))
