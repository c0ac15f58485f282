"""A deadline on a blackholed host, on Trio: the caller's cancel scope is the timeout.

``open_connection`` takes no timeout; ``trio.move_on_after`` around it is the deadline,
and the connect that would hang for minutes is cancelled and its socket closed.
``connect_check_send`` has a ``timeout`` for the whole workflow and reports where it was.
"""

from __future__ import annotations

import trio

from trio_sockets import trio_port
from trio_sockets.testing import LoopbackServer


async def main(hole: LoopbackServer) -> None:
    with trio.move_on_after(0.5) as scope:
        await trio_port.open_connection(hole.host, hole.port)
    print(f"open_connection: gave up after 0.5 s: {scope.cancelled_caught}")

    report = await trio_port.connect_check_send(hole.target, b"hello\n", timeout=0.5)
    print(f"connect_check_send: {report.status}: {report.error}")


if __name__ == "__main__":
    with LoopbackServer("blackhole") as hole:
        trio.run(main, hole)
