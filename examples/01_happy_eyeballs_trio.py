"""Happy eyeballs on Trio: a blackholed IPv6 address, a live IPv4 one.

The name ``dual.example`` resolves (through Trio's resolver hook) to ``[::1]`` on a
port that never answers, then to ``127.0.0.1`` on a live server. The IPv6 attempt hangs;
after 250 ms the IPv4 attempt starts, connects, and the race's nursery cancels the loser.
"""

from __future__ import annotations

from typing import Any

import trio

from trio_sockets import trio_port
from trio_sockets.testing import LoopbackServer, addrinfo, ipv6_loopback


class Resolver(trio.abc.HostnameResolver):
    """Answers for one name only: first the blackholed address, then the live one."""

    def __init__(self, *sockaddrs: tuple[Any, ...]) -> None:
        self.sockaddrs = sockaddrs

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return addrinfo(*self.sockaddrs)

    async def getnameinfo(self, sockaddr: Any, flags: int) -> tuple[str, str]:
        raise NotImplementedError


async def main(hole: LoopbackServer, live: LoopbackServer) -> None:
    hole_addr = (hole.host, hole.port, 0, 0) if ":" in hole.host else hole.address
    trio.socket.set_custom_hostname_resolver(Resolver(hole_addr, live.address))
    report = await trio_port.connect_check_send(f"dual.example:{live.port}", b"hello\n")
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
        trio.run(main, hole, live)
