"""Spec: ``Connection``, as documented: written once and run on every port.

The servers count every byte they read, so "everything arrived" is checked as
``server.bytes_received == conn.bytes_sent == len(payload)``.
"""

from __future__ import annotations

import array
import socket
from collections.abc import Callable

import pytest
from conftest import Port

from trio_sockets.testing import LoopbackServer

PAYLOAD = bytes(range(256)) * 64  # 16 KiB


def small_send_buffer(conn: object) -> None:
    """Shrink the kernel's send buffer, so that a send of a few MiB must wait."""
    getattr(conn, "socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)  # noqa: B009


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    "make",
    [bytes, bytearray, memoryview, lambda b: memoryview(array.array("H", b))],
    ids=["bytes", "bytearray", "memoryview", "memoryview-of-uint16"],
)
def test_send_all_sends_every_byte(port: Port, make: Callable[[bytes], object]) -> None:
    data = make(PAYLOAD)
    with LoopbackServer("sink") as server:

        async def main() -> None:
            async with await port.module.open_connection(*server.address) as conn:
                async with port.fail_after(2):
                    await conn.wait_writable()
                await conn.send_all(data)
                await conn.send_all(data)
                assert conn.bytes_sent == 2 * len(PAYLOAD)

        port.run(main)
        assert server.wait_bytes(2 * len(PAYLOAD))
        assert server.bytes_received == 2 * len(PAYLOAD)


@pytest.mark.timeout(5)
def test_send_all_of_nothing_is_fine(port: Port) -> None:
    with LoopbackServer("sink") as server:

        async def main() -> None:
            async with await port.module.open_connection(*server.address) as conn:
                await conn.send_all(b"")
                assert conn.bytes_sent == 0

        port.run(main)


@pytest.mark.timeout(5)
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_echo_round_trip_with_send_eof(port: Port, host: str) -> None:
    with LoopbackServer("echo", host) as server:

        async def main() -> None:
            async with await port.module.open_connection(host, server.port) as conn:
                await conn.send_all(PAYLOAD)
                await conn.send_eof()
                received = bytearray()
                while chunk := await conn.receive_some(5000):
                    assert len(chunk) <= 5000
                    received += chunk
                assert received == PAYLOAD
                assert conn.bytes_received == len(PAYLOAD)
                assert await conn.receive_some() == b""  # end of stream stays so

        port.run(main)


@pytest.mark.timeout(5)
def test_two_senders_at_once_get_a_busy_error_and_never_interleave(port: Port) -> None:
    first = b"A" * (4 << 20)
    with LoopbackServer("slow", slow_chunk=262144, slow_interval=0) as server:

        async def main() -> None:
            async with await port.module.open_connection(*server.address) as conn:
                small_send_buffer(conn)

                async def second() -> None:
                    # The first sender is mid-send once the server sees its bytes.
                    assert await port.to_thread(server.wait_bytes, 1, 2.0)
                    assert 0 < conn.bytes_sent < len(first), "the first send is not pending"
                    with pytest.raises(port.BusyError):
                        await conn.send_all(b"B" * 100)
                    with pytest.raises(port.BusyError):
                        await conn.wait_writable()
                    with pytest.raises(port.BusyError):
                        await conn.send_eof()

                async def first_sender() -> None:
                    await conn.send_all(first)

                one, two = await port.run_all(first_sender, second)
                assert two.error is None, two.error
                assert one.error is None, one.error
                assert conn.bytes_sent == len(first)

        port.run(main)
        # Not one "B" byte went out: the server got exactly the first payload.
        assert server.wait_bytes(len(first))
        assert server.bytes_received == len(first)


@pytest.mark.timeout(5)
def test_a_closed_connection_raises_a_clear_error(port: Port) -> None:
    with LoopbackServer("echo") as server:

        async def main() -> None:
            conn = await port.module.open_connection(*server.address)
            await conn.aclose()
            await conn.aclose()  # closing twice is harmless
            async with conn:  # and so is a third time, by async with
                pass
            assert conn.socket.fileno() == -1
            with pytest.raises(port.ClosedError):
                await conn.send_all(b"x")
            with pytest.raises(port.ClosedError):
                await conn.wait_writable()
            with pytest.raises(port.ClosedError):
                await conn.receive_some()
            with pytest.raises(port.ClosedError):
                await conn.send_eof()
            assert not isinstance(port.ClosedError("x"), OSError)  # misuse, not network
            assert conn.bytes_sent == 0

        port.run(main)


@pytest.mark.timeout(5)
def test_closing_under_a_blocked_sender_wakes_it_with_a_clear_error(port: Port) -> None:
    # A slow reader (the default: 16 KiB every millisecond) cannot drain 8 MiB in time.
    with LoopbackServer("slow") as server:

        async def main() -> None:
            conn = await port.module.open_connection(*server.address)
            small_send_buffer(conn)

            async def sender() -> None:
                await conn.send_all(bytes(8 << 20))

            async def closer() -> None:
                assert await port.to_thread(server.wait_bytes, 1, 2.0)
                await conn.aclose()

            async with port.fail_after(2):
                sent, closed = await port.run_all(sender, closer)
            assert closed.error is None, closed.error
            assert isinstance(sent.error, port.ClosedError), repr(sent.error)
            assert 0 < conn.bytes_sent < 8 << 20

        port.run(main)


@pytest.mark.timeout(5)
def test_closing_under_a_blocked_receiver_wakes_it_with_a_clear_error(port: Port) -> None:
    with LoopbackServer("echo") as server:

        async def main() -> None:
            conn = await port.module.open_connection(*server.address)
            receiving = port.Event()

            async def receiver() -> None:
                receiving.set()
                await conn.receive_some()  # nothing comes: the echo server waits for us

            async def closer() -> None:
                await receiving.wait()  # the receiver is inside receive_some() by now
                await conn.aclose()

            async with port.fail_after(2):
                received, closed = await port.run_all(receiver, closer)
            assert closed.error is None, closed.error
            assert isinstance(received.error, port.ClosedError), repr(received.error)

        port.run(main)


@pytest.mark.timeout(5)
def test_two_receivers_at_once_get_a_busy_error(port: Port) -> None:
    with LoopbackServer("echo") as server:

        async def main() -> None:
            async with await port.module.open_connection(*server.address) as conn:
                started = port.Event()

                async def receiver() -> None:
                    started.set()
                    assert await conn.receive_some() == b"ping"

                async def other() -> None:
                    await started.wait()
                    with pytest.raises(port.BusyError):
                        await conn.receive_some()
                    await conn.send_all(b"ping")

                one, two = await port.run_all(receiver, other)
                assert one.error is None and two.error is None, (one.error, two.error)

        port.run(main)
