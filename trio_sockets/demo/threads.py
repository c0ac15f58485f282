"""A demo contestant: connect and send with blocking sockets and a pool of threads.

Nothing of this package is used here: ``socket.create_connection`` with a timeout,
``sendall``, and a ``ThreadPoolExecutor`` for the fan-out, as most threaded code does it;
for TLS, ``SSLContext.wrap_socket`` over the connection.
It closes what it opens, and a fail-fast drops the targets that have not started. What
it cannot do is what the demo measures.
"""

from __future__ import annotations

import socket
import ssl
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait


def connect_check_send(
    host: str, port: int, payload: bytes, timeout: float, tls: ssl.SSLContext | None = None
) -> int:
    """Connect to ``host:port``, send ``payload``, ``timeout`` seconds for each; return its size.

    With ``tls``, the handshake verifies the certificate against ``host``.

    Raises:
        TimeoutError: a connect, the handshake or the send took longer than ``timeout``.
        OSError: the connection, the handshake or the send failed.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        if tls is None:
            sock.sendall(payload)
            return len(payload)
        with tls.wrap_socket(sock, server_hostname=host) as tls_sock:  # the handshake
            tls_sock.sendall(payload)
    return len(payload)


def send_to_many(
    targets: list[tuple[str, int]],
    payload: bytes,
    *,
    max_concurrency: int,
    timeout: float,
    fail_fast: bool = False,
) -> list[int | BaseException]:
    """Send ``payload`` to every target, ``max_concurrency`` threads at a time.

    Returns each target's result in order: the bytes sent, or the exception it raised.
    With ``fail_fast``, the first exception is raised instead.
    """
    with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
        futures = [pool.submit(connect_check_send, h, p, payload, timeout) for h, p in targets]
        if fail_fast:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:
                for future in futures:
                    future.cancel()  # only those not started yet: a thread cannot be stopped
                raise failed[0].exception()  # type: ignore[misc]
        return [f.exception() or f.result() for f in futures]
