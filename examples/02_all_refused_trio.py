"""Every address refused, on Trio: one ConnectError that lists every attempt.

``open_connection`` takes an IP literal or a name; here the name ``refused.example``
resolves (through Trio's resolver hook) to three loopback ports that refuse. A refusal
starts the next attempt at once, so the whole race takes milliseconds, not 3 x 250 ms.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import trio

from trio_sockets import ConnectError, trio_port
from trio_sockets.testing import addrinfo, refusing_socket


class Resolver(trio.abc.HostnameResolver):
    def __init__(self, *sockaddrs: tuple[Any, ...]) -> None:
        self.sockaddrs = sockaddrs

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return addrinfo(*self.sockaddrs)

    async def getnameinfo(self, sockaddr: Any, flags: int) -> tuple[str, str]:
        raise NotImplementedError


@contextlib.contextmanager
def refusing_addresses(count: int) -> Iterator[list[tuple[Any, ...]]]:
    """Loopback ports that refuse: bound, never listening (so nobody else takes them)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(refusing_socket()) for _ in range(count)]
        yield [sock.getsockname() for sock in socks]


async def main(addresses: list[tuple[Any, ...]]) -> None:
    trio.socket.set_custom_hostname_resolver(Resolver(*addresses))
    start = trio.current_time()
    try:
        await trio_port.open_connection("refused.example", 9)
    except ConnectError as exc:
        for attempt in exc.attempts:
            print(f"  {attempt.address[1]}: {attempt.outcome} ({attempt.error})")
        print(f"all {len(exc.attempts)} attempts refused in {trio.current_time() - start:.3f} s")


if __name__ == "__main__":
    with refusing_addresses(3) as addresses:
        trio.run(main, addresses)
