"""Happy eyeballs on asyncio: a blackholed IPv6 address, a live IPv4 one.

The name ``dual.example`` resolves (through a patched ``loop.getaddrinfo``: asyncio has
no resolver hook) to ``[::1]`` on a port that never answers, then to ``127.0.0.1`` on a
live server. The IPv6 attempt hangs; after 250 ms the IPv4 attempt starts, connects, and
cancels its sibling task (a TaskGroup child cannot cancel the group's scope).
"""

from __future__ import annotations

import asyncio
from typing import Any

from trio_sockets import asyncio_port
from trio_sockets.testing import LoopbackServer, addrinfo, ipv6_loopback


def resolver(*sockaddrs: tuple[Any, ...]) -> Any:
    """Answers for any name: first the blackholed address, then the live one."""

    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> Any:
        return addrinfo(*sockaddrs)

    return getaddrinfo


async def main(hole: LoopbackServer, live: LoopbackServer) -> None:
    hole_addr = (hole.host, hole.port, 0, 0) if ":" in hole.host else hole.address
    loop = asyncio.get_running_loop()
    setattr(loop, "getaddrinfo", resolver(hole_addr, live.address))  # noqa: B010
    report = await asyncio_port.connect_check_send(f"dual.example:{live.port}", b"hello\n")
    for attempt in report.attempts:
        print(f"  {attempt.address[0]:>9}  {attempt.started_s:.3f}-{attempt.ended_s:.3f} s  "
              f"{attempt.outcome}")  # fmt: skip
    assert report.address is not None, report.error
    print(f"{report.status}: connected to {report.address[0]} in {report.total_s:.3f} s")


def ipv6_host() -> str:
    # Without an IPv6 loopback here, blackhole an IPv4 port instead.
    return "::1" if ipv6_loopback() else "127.0.0.1"


if __name__ == "__main__":
    with LoopbackServer("blackhole", ipv6_host()) as hole, LoopbackServer("sink") as live:
        asyncio.run(main(hole, live))
