"""A deadline on a blackholed host, on asyncio: ``asyncio.timeout`` is the deadline.

``open_connection`` takes no timeout; ``asyncio.timeout`` around it is the deadline: it
cancels the hung connect (whose socket the port closes) and raises ``TimeoutError`` at
its boundary. ``connect_check_send`` has a ``timeout`` for the whole workflow and
reports where it was.
"""

from __future__ import annotations

import asyncio

from trio_sockets import asyncio_port
from trio_sockets.testing import LoopbackServer


async def main(hole: LoopbackServer) -> None:
    try:
        async with asyncio.timeout(0.5):
            await asyncio_port.open_connection(hole.host, hole.port)
    except TimeoutError:
        print("open_connection: gave up after 0.5 s: True")

    report = await asyncio_port.connect_check_send(hole.target, b"hello\n", timeout=0.5)
    print(f"connect_check_send: {report.status}: {report.error}")


if __name__ == "__main__":
    with LoopbackServer("blackhole") as hole:
        asyncio.run(main(hole))
