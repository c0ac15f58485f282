"""A demo contestant: connect and send as asyncio tutorials and most codebases write it.

Nothing of this package is used here: ``asyncio.open_connection`` with its defaults,
``write`` and ``drain``, ``asyncio.wait_for`` for the deadline, ``asyncio.gather`` for the
fan-out with a semaphore for the limit, ``ssl=`` for TLS. The code is careful: it closes
what it opens, on every path. What it cannot do is what the demo measures.
"""

from __future__ import annotations

import asyncio
import ssl


async def connect_check_send(
    host: str, port: int, payload: bytes, timeout: float, tls: ssl.SSLContext | None = None
) -> int:
    """Connect to ``host:port``, send ``payload`` within ``timeout`` seconds; return its size.

    With ``tls``, the handshake verifies the certificate against ``host``.

    Raises:
        TimeoutError: at the deadline.
        OSError: the connection or the send failed.
    """

    async def workflow() -> int:
        # server_hostname: host, by default, when ssl is given
        _, writer = await asyncio.open_connection(host, port, ssl=tls)
        try:
            writer.write(payload)
            await writer.drain()
            return len(payload)
        finally:
            writer.close()
            await writer.wait_closed()

    return await asyncio.wait_for(workflow(), timeout)


async def send_to_many(
    targets: list[tuple[str, int]],
    payload: bytes,
    *,
    max_concurrency: int,
    timeout: float,
    fail_fast: bool = False,
) -> list[int | BaseException]:
    """Send ``payload`` to every target, ``max_concurrency`` at a time.

    Returns each target's result in order: the bytes sent, or the exception it raised.
    With ``fail_fast``, the first exception is raised instead.
    """
    semaphore = asyncio.Semaphore(max_concurrency)

    async def one(host: str, port: int) -> int:
        async with semaphore:
            return await connect_check_send(host, port, payload, timeout)

    return await asyncio.gather(
        *(one(host, port) for host, port in targets), return_exceptions=not fail_fast
    )
