"""A reset mid-send, on asyncio: ``SendError.bytes_sent`` is exactly what went out.

The server reads 64 KiB, then resets the connection. ``send_all`` fails with a
``SendError`` whose ``bytes_sent`` counts every byte the kernel accepted (the port calls
``sock.send`` itself and adds up what each call took; ``loop.sock_sendall`` would not say).
"""

from __future__ import annotations

import asyncio

from trio_sockets import SendError, asyncio_port
from trio_sockets.testing import LoopbackServer


async def main(server: LoopbackServer) -> None:
    async with await asyncio_port.open_connection(server.host, server.port) as conn:
        try:
            await conn.send_all(bytes(32 * 1024 * 1024))
        except SendError as exc:
            print(f"SendError after exactly {exc.bytes_sent} bytes: {exc.strerror}")
    print(f"the server read {server.bytes_received} bytes, then reset the connection")


if __name__ == "__main__":
    with LoopbackServer("reset", reset_after=65536) as server:
        asyncio.run(main(server))
