"""Backpressure from a slow reader, on Trio: ``send_all`` waits for the reader's pace.

The send buffer is shrunk so that a 1 MiB payload fills it at once; from then on each
``send`` waits for writability, and every such wait is a Trio checkpoint: a deadline or
a cancellation could stop it there, with ``bytes_sent`` exact.
"""

from __future__ import annotations

import socket

import trio

from trio_sockets import trio_port
from trio_sockets.testing import LoopbackServer

PAYLOAD = bytes(1024 * 1024)


async def main(slow: LoopbackServer) -> None:
    async with await trio_port.open_connection(slow.host, slow.port) as conn:
        conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        await conn.wait_writable()
        start = trio.current_time()
        await conn.send_all(PAYLOAD)
        elapsed = trio.current_time() - start
    print(f"sent {conn.bytes_sent} bytes in {elapsed:.3f} s: the reader set the pace")


if __name__ == "__main__":
    with LoopbackServer("slow") as slow:
        trio.run(main, slow)
        slow.wait_bytes(len(PAYLOAD))
        print(f"the server read {slow.bytes_received} bytes")
