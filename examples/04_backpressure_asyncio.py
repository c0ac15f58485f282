"""Backpressure from a slow reader, on asyncio: ``send_all`` waits for the reader's pace.

The send buffer is shrunk so that a 1 MiB payload fills it at once; from then on each
``send`` meets ``BlockingIOError`` and the port waits on the loop's writer callback (not
``loop.sock_sendall``, which hides how much went out if it is cancelled).
"""

from __future__ import annotations

import asyncio
import socket

from trio_sockets import asyncio_port
from trio_sockets.testing import LoopbackServer

PAYLOAD = bytes(1024 * 1024)


async def main(slow: LoopbackServer) -> None:
    loop = asyncio.get_running_loop()
    async with await asyncio_port.open_connection(slow.host, slow.port) as conn:
        conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        await conn.wait_writable()
        start = loop.time()
        await conn.send_all(PAYLOAD)
        elapsed = loop.time() - start
    print(f"sent {conn.bytes_sent} bytes in {elapsed:.3f} s: the reader set the pace")


if __name__ == "__main__":
    with LoopbackServer("slow") as slow:
        asyncio.run(main(slow))
        slow.wait_bytes(len(PAYLOAD))
        print(f"the server read {slow.bytes_received} bytes")
