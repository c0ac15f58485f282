"""A reset mid-send, on Trio: ``SendError.bytes_sent`` is exactly what went out.

The server reads 64 KiB, then resets the connection. ``send_all`` fails with a
``SendError`` whose ``bytes_sent`` counts every byte the kernel accepted, which is more
than the peer read: the rest died in the buffers with the connection.
"""

from __future__ import annotations

import trio

from trio_sockets import SendError, trio_port
from trio_sockets.testing import LoopbackServer


async def main(server: LoopbackServer) -> None:
    async with await trio_port.open_connection(server.host, server.port) as conn:
        try:
            await conn.send_all(bytes(32 * 1024 * 1024))
        except SendError as exc:
            print(f"SendError after exactly {exc.bytes_sent} bytes: {exc.strerror}")
    print(f"the server read {server.bytes_received} bytes, then reset the connection")


if __name__ == "__main__":
    with LoopbackServer("reset", reset_after=65536) as server:
        trio.run(main, server)
