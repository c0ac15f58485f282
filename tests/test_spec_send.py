"""Spec: ``send_all`` under backpressure, a reset and a cancellation, on every port.

"``bytes_sent`` grows as the kernel accepts bytes, so after an error *or a cancellation*
it tells exactly how much went out." The servers count every byte they read, and a
closed connection still delivers what the kernel had accepted, so the check is always
``server.bytes_received == conn.bytes_sent``, once the server has read that much.
"""

from __future__ import annotations

import errno
import socket

import pytest
from conftest import Port

from trio_sockets._errors import SendError
from trio_sockets.testing import LoopbackServer

MiB = 1 << 20


def small_send_buffer(conn: object) -> None:
    """Shrink the kernel's send buffer, so that a send of a few MiB must wait."""
    getattr(conn, "socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)  # noqa: B009


def fast_slow_server() -> LoopbackServer:
    # A small receive buffer (the slow mode's) read as fast as it fills: backpressure on
    # every send, yet 32 MiB drain in about a second.
    return LoopbackServer("slow", slow_chunk=262144, slow_interval=0)


@pytest.mark.timeout(15)
def test_a_slow_reader_receives_32_mib_whole(port: Port) -> None:
    payload = bytes(range(256)) * (32 * MiB // 256)
    with fast_slow_server() as server:

        async def main() -> None:
            async with await port.module.open_connection(*server.address) as conn:
                await conn.send_all(payload)
                assert conn.bytes_sent == len(payload)

        port.run(main)
        assert server.wait_bytes(len(payload))
        assert server.bytes_received == len(payload)


@pytest.mark.timeout(5)
def test_a_reset_mid_send_is_a_send_error_with_the_exact_count(port: Port) -> None:
    payload = bytes(16 * MiB)
    with LoopbackServer("reset", reset_after=65536) as server:

        async def main() -> None:
            async with await port.module.open_connection(*server.address) as conn:
                small_send_buffer(conn)
                with pytest.raises(port.module.SendError) as info:
                    await conn.send_all(payload)
                exc = info.value
                assert isinstance(exc, SendError)
                assert isinstance(exc, OSError)
                assert exc.errno in (errno.ECONNRESET, errno.EPIPE)
                assert exc.bytes_sent == conn.bytes_sent  # the connection's first send
                assert server.wait_bytes(65536)
                assert server.bytes_received <= exc.bytes_sent < len(payload)
                assert str(exc.bytes_sent) in str(exc)

        port.run(main)
        assert server.bytes_received == 65536


@pytest.mark.timeout(5)
def test_a_send_error_counts_only_its_own_call(port: Port) -> None:
    with LoopbackServer("reset", reset_after=65536) as server:

        async def main() -> None:
            async with await port.module.open_connection(*server.address) as conn:
                await conn.send_all(b"x" * 1000)
                with pytest.raises(port.module.SendError) as info:
                    await conn.send_all(bytes(16 * MiB))
                assert isinstance(info.value, SendError)
                assert info.value.bytes_sent == conn.bytes_sent - 1000

        port.run(main)


@pytest.mark.timeout(5)
def test_cancelled_mid_send_keeps_bytes_sent_exact(port: Port) -> None:
    payload = bytes(8 * MiB)
    with fast_slow_server() as server:

        async def main() -> int:
            async with await port.module.open_connection(*server.address) as conn:
                small_send_buffer(conn)
                outcome = await port.run_and_cancel(
                    lambda: conn.send_all(payload),
                    lambda: port.to_thread(server.wait_bytes, 256 * 1024, 2.0),
                )
                assert outcome.cancelled
                assert type(outcome.error) is port.Cancelled
                assert 256 * 1024 <= conn.bytes_sent < len(payload)
                return conn.bytes_sent  # type: ignore[no-any-return]

        sent = port.run(main)
        # Closed: the kernel still delivers what it accepted, and nothing more.
        assert server.wait_bytes(sent)
        assert server.bytes_received == sent


@pytest.mark.timeout(5)
def test_a_deadline_mid_send_keeps_bytes_sent_exact(port: Port) -> None:
    payload = bytes(64 * MiB)  # a 16 MB/s reader needs four seconds for it
    with LoopbackServer("slow") as server:

        async def main() -> int:
            async with await port.module.open_connection(*server.address) as conn:
                small_send_buffer(conn)
                async with port.move_on_after(0.2) as scope:
                    await conn.send_all(payload)
                assert scope.cancelled_caught
                assert 0 < conn.bytes_sent < len(payload)
                return conn.bytes_sent  # type: ignore[no-any-return]

        sent = port.run(main)
        assert server.wait_bytes(sent)
        assert server.bytes_received == sent
