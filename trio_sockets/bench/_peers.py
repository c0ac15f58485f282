"""The peers of ``trio-sockets bench``: one connection each, as their users write it.

Each function connects to one target, sends the payload and closes, and returns the
bytes sent; the drivers in :mod:`trio_sockets.bench._models` run them in a row or many
at once, under the scenario's deadline. anyio and aiohappyeyeballs are imported only
when their model runs (``pip install 'trio-sockets[bench]'``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable

import trio

__all__ = ["aiohappyeyeballs_one", "anyio_one", "asyncio_ssl_one", "trio_ssl_one"]

One = Callable[[tuple[str, int], bytes], Awaitable[int]]


async def anyio_one(target: tuple[str, int], data: bytes) -> int:
    """``anyio.connect_tcp`` + ``send``, closed by ``async with``."""
    import anyio

    async with await anyio.connect_tcp(*target) as stream:
        await stream.send(data)
    return len(data)


async def aiohappyeyeballs_one(target: tuple[str, int], data: bytes) -> int:
    """``aiohappyeyeballs.start_connection`` with the one address + ``loop.sock_sendall``.

    With one address there is no race: this is raw ``loop.sock_connect`` code with the
    library's bookkeeping, as aiohttp runs it.
    """
    import aiohappyeyeballs

    family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    infos: list[aiohappyeyeballs.AddrInfoType] = [
        (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", target)
    ]
    sock = await aiohappyeyeballs.start_connection(infos)
    with sock:
        await asyncio.get_running_loop().sock_sendall(sock, data)
    return len(data)


def trio_ssl_one(context: ssl.SSLContext) -> One:
    """``trio.open_ssl_over_tcp_stream`` + ``send_all``; closing sends close_notify."""

    async def one(target: tuple[str, int], data: bytes) -> int:
        stream = await trio.open_ssl_over_tcp_stream(*target, ssl_context=context)
        async with stream:
            await stream.send_all(data)
        return len(data)

    return one


def asyncio_ssl_one(context: ssl.SSLContext) -> One:
    """``asyncio.open_connection(ssl=...)`` + ``write`` + ``drain``."""

    async def one(target: tuple[str, int], data: bytes) -> int:
        _, writer = await asyncio.open_connection(*target, ssl=context)
        try:
            writer.write(data)
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()
        return len(data)

    return one
