"""Trio only: ``Connection`` is a ``trio.abc.HalfCloseableStream``, so TLS composes over it.

Trio's own conformance checks for stream implementations run against pairs of
connections on loopback, and ``trio.SSLStream`` wraps a plain ``Connection`` both ways.
"""

from __future__ import annotations

import errno
import socket
import ssl
import struct
from typing import Any

import pytest
import trio
import trio.testing
import trustme

from trio_sockets import trio_port
from trio_sockets._errors import describe_error
from trio_sockets.testing.servers import tls_server_context

Connection = trio_port.Connection


async def connection_pair() -> tuple[Connection, Connection]:
    """Two connected Connections on loopback: ours, and the one the listener accepted."""
    listener = trio.socket.socket()
    try:
        await listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        host, port = listener.getsockname()
        ours = await trio_port.open_connection(host, port)
        accepted, _ = await listener.accept()
    finally:
        listener.close()
    return ours, Connection(accepted)


async def clogged_pair() -> tuple[Connection, Connection]:
    """A pair whose buffers are full both ways: send_all blocks until the other side reads."""
    ours, theirs = await connection_pair()

    async def fill(conn: Connection) -> None:
        while True:
            await conn.send_all(b"x" * 10000)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fill, ours)
        nursery.start_soon(fill, theirs)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return ours, theirs


def test_connection_is_a_half_closeable_stream() -> None:
    assert issubclass(Connection, trio.abc.HalfCloseableStream)


@pytest.mark.timeout(30)
async def test_trio_stream_conformance() -> None:
    await trio.testing.check_half_closeable_stream(connection_pair, clogged_pair)


@pytest.mark.timeout(10)
async def test_send_eof_then_send_is_closed_and_send_eof_again_is_harmless() -> None:
    ours, theirs = await connection_pair()
    async with ours, theirs:
        await ours.send_all(b"x")
        await ours.send_eof()
        await ours.send_eof()
        with pytest.raises(trio.ClosedResourceError):
            await ours.send_all(b"y")
        assert await theirs.receive_some() == b"x"
        assert await theirs.receive_some() == b""
        await theirs.send_all(b"back")  # the other way stays open
        assert await ours.receive_some(10) == b"back"


@pytest.mark.timeout(10)
async def test_send_error_is_a_send_error_and_a_broken_resource_error() -> None:
    ours, theirs = await connection_pair()
    async with ours:
        await theirs.aclose()
        with pytest.raises(trio_port.SendError) as caught:
            while True:
                await ours.send_all(bytes(65536))
        assert isinstance(caught.value, trio.BrokenResourceError)
        assert isinstance(caught.value, OSError)


@pytest.mark.timeout(10)
async def test_ssl_stream_over_a_plain_connection() -> None:
    # What a user can do by hand, now that Connection is a Trio stream: both ends of a
    # TLS session are trio.SSLStream over a plain Connection.
    ca = trustme.CA()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    ours, theirs = await connection_pair()
    client = trio.SSLStream(ours, client_context, server_hostname="127.0.0.1")
    server = trio.SSLStream(theirs, tls_server_context(ca), server_side=True)
    async with client, server, trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await client.do_handshake()
        assert client.version() in ("TLSv1.2", "TLSv1.3")
        await client.send_all(b"hello over TLS")
        assert await server.receive_some(100) == b"hello over TLS"
        await server.send_all(b"and back")
        assert await client.receive_some(100) == b"and back"
    # The plain Connection beneath counted the records on the wire, not the plaintext.
    assert ours.bytes_sent > len(b"hello over TLS")


@pytest.mark.timeout(10)
async def test_a_tls_connection_is_a_stream_too() -> None:
    ca = trustme.CA()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    ours, theirs = await connection_pair()
    server = trio.SSLStream(theirs, tls_server_context(ca), server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await ours._start_tls(client_context, "127.0.0.1")
    async with ours, server:
        assert isinstance(ours, trio.abc.HalfCloseableStream)
        await ours.send_all(b"ping")
        assert await server.receive_some(10) == b"ping"
        assert (ours.bytes_sent, ours.tls_version) == (4, server.version())
        await server.send_all(b"pong")
        assert await ours.receive_some() == b"pong"
        assert ours.bytes_received == 4


async def reset_by_peer() -> tuple[trio_port.Connection, trio_port.Connection]:
    """A connection whose peer has reset it (closed with SO_LINGER 0): RST, not FIN."""
    ours, theirs = await connection_pair()
    theirs.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await theirs.aclose()
    return ours, theirs


@pytest.mark.timeout(10)
@pytest.mark.parametrize("receive", ["receive_some", "_receive_into"])
async def test_a_reset_on_receive_is_a_broken_resource_error(receive: str) -> None:
    ours, _ = await reset_by_peer()
    async with ours:
        with pytest.raises(trio.BrokenResourceError) as caught:
            if receive == "receive_some":
                await ours.receive_some()
            else:
                await ours._receive_into(memoryview(bytearray(16)))
        assert isinstance(caught.value, ConnectionResetError)  # still the OSError it was
        assert caught.value.errno == errno.ECONNRESET
        assert describe_error(caught.value).startswith("ConnectionResetError: [Errno")


@pytest.mark.timeout(10)
async def test_send_eof_on_a_reset_connection_is_a_broken_resource_error() -> None:
    ours, _ = await reset_by_peer()
    async with ours:
        with pytest.raises(trio.BrokenResourceError) as caught:
            await ours.send_eof()
        assert isinstance(caught.value, OSError)


async def test_the_workflows_check_lets_a_pending_cancellation_raise_before_a_file_goes_out(
    tmp_path: Any,
) -> None:
    # The check takes no schedule point when the socket is writable (the send after it
    # has one), but a cancellation already pending must still raise there: a file's
    # os.sendfile() would look only after its first chunk, megabytes later.
    from trio_sockets._checks import check_payload_or_file

    path = tmp_path / "payload.bin"
    path.write_bytes(b"x" * (8 << 20))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        conn = await trio_port.open_connection("127.0.0.1", listener.getsockname()[1])
        peer, _ = listener.accept()
        with peer, open(path, "rb") as file:
            payload = check_payload_or_file(file)
            with trio.CancelScope() as scope:
                scope.cancel()
                await conn._wait_writable()
                await conn._send_file(payload)  # type: ignore[arg-type]
            assert scope.cancelled_caught
            assert conn.bytes_sent == 0
            await conn.aclose()
