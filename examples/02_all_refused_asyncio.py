"""Every address refused, on asyncio: one ConnectError that lists every attempt.

``open_connection`` takes an IP literal or a name; here the name ``refused.example``
resolves (through a patched ``loop.getaddrinfo``) to three loopback ports that refuse.
A refusal starts the next attempt at once, so the race takes milliseconds. The failures
are collected by the port itself: a TaskGroup would raise an ExceptionGroup instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from trio_sockets import ConnectError, asyncio_port
from trio_sockets.testing import addrinfo, refusing_socket


def resolver(*sockaddrs: tuple[Any, ...]) -> Any:
    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> Any:
        return addrinfo(*sockaddrs)

    return getaddrinfo


@contextlib.contextmanager
def refusing_addresses(count: int) -> Iterator[list[tuple[Any, ...]]]:
    """Loopback ports that refuse: bound, never listening (so nobody else takes them)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(refusing_socket()) for _ in range(count)]
        yield [sock.getsockname() for sock in socks]


async def main(addresses: list[tuple[Any, ...]]) -> None:
    loop = asyncio.get_running_loop()
    setattr(loop, "getaddrinfo", resolver(*addresses))  # noqa: B010
    start = loop.time()
    try:
        await asyncio_port.open_connection("refused.example", 9)
    except ConnectError as exc:
        for attempt in exc.attempts:
            print(f"  {attempt.address[1]}: {attempt.outcome} ({attempt.error})")
        print(f"all {len(exc.attempts)} attempts refused in {loop.time() - start:.3f} s")


if __name__ == "__main__":
    with refusing_addresses(3) as addresses:
        asyncio.run(main(addresses))
