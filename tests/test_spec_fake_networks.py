"""Spec: ``trio_sockets.testing``'s fake networks themselves, Trio's and asyncio's.

How each is installed and removed, what its sockets do outside a workflow (asyncio's
own streams included), how scripts are checked, that the package docstring's two
examples run as written, and the fake network on every port in real time. The
workflows over the fake networks are tested in ``test_spec_race_table.py``,
``test_spec_scripted_connect.py`` and ``test_spec_scripted_send.py``.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import textwrap
from collections.abc import Callable, Coroutine
from typing import Any

import looptime
import pytest
import trio
import trio.testing
from conftest import Port

import trio_sockets.testing
from trio_sockets import asyncio_port
from trio_sockets.testing import (
    AsyncioFakeNetwork,
    AsyncioFakeSocket,
    FakeNetwork,
    FakeSocket,
    addrinfo,
)

pytestmark = pytest.mark.timeout(30)


def run_virtual(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main()`` on a looptime loop: virtual time from 0."""
    with asyncio.Runner(loop_factory=lambda: looptime.new_event_loop(start=0)) as runner:
        runner.run(main())


# --------------------------------------------------------------------------------------
# The documentation's examples
# --------------------------------------------------------------------------------------


def docstring_examples() -> list[str]:
    doc = trio_sockets.testing.__doc__ or ""
    blocks = []
    for part in doc.split("::\n\n")[1:]:
        lines = []
        for line in part.splitlines():
            if line and not line.startswith("    "):
                break
            lines.append(line)
        blocks.append(textwrap.dedent("\n".join(lines)))
    return blocks


def test_the_docstring_has_an_example_for_each_framework() -> None:
    blocks = docstring_examples()
    assert len(blocks) == 2
    assert "FakeNetwork()" in blocks[0] and "AsyncioFakeNetwork()" in blocks[1]


def test_the_trio_docstring_example_runs() -> None:
    namespace: dict[str, Any] = {}
    exec(docstring_examples()[0], namespace)
    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(namespace["test_falls_back_to_ipv4"], clock, clock=clock)


def test_the_asyncio_docstring_example_runs() -> None:
    namespace: dict[str, Any] = {}
    exec(docstring_examples()[1], namespace)
    namespace["test_falls_back_to_ipv4"]()


# --------------------------------------------------------------------------------------
# AsyncioFakeNetwork
# --------------------------------------------------------------------------------------


def test_asyncio_streams_race_over_the_fake_network() -> None:
    # Not only this package's port: asyncio's own happy eyeballs connects through
    # loop.sock_connect, and its transports read and write the adopted socket.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with AsyncioFakeNetwork() as net:
            net.add_host("example.test", "2001:db8::1", "192.0.2.1")
            net.script(("2001:db8::1", 80), outcome="blackhole")
            net.script(("192.0.2.1", 80), delay=0.125)
            reader, writer = await asyncio.open_connection(
                "example.test", 80, happy_eyeballs_delay=0.25
            )
            assert loop.time() == 0.375
            assert writer.get_extra_info("peername") == ("192.0.2.1", 80)
            writer.write(b"ping")
            await writer.drain()
            assert await reader.readexactly(4) == b"ping"  # the peer echoes
            writer.close()
            await writer.wait_closed()
            assert [s.connect_state for s in net.sockets] == ["cancelled", "connected"]
            assert net.open_sockets() == []
            assert net.received(("192.0.2.1", 80)) == b"ping"

    run_virtual(main)


def test_asyncio_streams_write_through_the_script() -> None:
    # A partial send leaves the rest in the transport's buffer, which it writes later
    # (with sendmsg on Python 3.12+): every byte still goes through the script.
    async def main() -> None:
        with AsyncioFakeNetwork() as net:
            net.script(("192.0.2.1", 80), max_send=3, reply=b"")
            reader, writer = await asyncio.open_connection("192.0.2.1", 80)
            writer.write(b"0123456789")
            await writer.drain()
            writer.write_eof()
            assert await reader.read() == b""  # the peer closed after our end of stream
            writer.close()
            await writer.wait_closed()
            assert net.sockets[0].sends == [3, 3, 3, 1]
            assert net.received(("192.0.2.1", 80)) == b"0123456789"

    run_virtual(main)


def test_asyncio_fake_network_is_installed_on_the_running_loop_only() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        clock = asyncio_port._now
        with AsyncioFakeNetwork() as outer:
            assert asyncio_port._now == loop.time
            with AsyncioFakeNetwork() as inner, socket.socket() as sock:
                sock.setblocking(False)
                with pytest.raises(ConnectionRefusedError):
                    await loop.sock_connect(sock, ("192.0.2.1", 1))
                assert inner.sockets == [sock] and outer.sockets == []
            assert loop.getaddrinfo == outer.getaddrinfo
            with pytest.raises(RuntimeError, match="already installed"):
                outer.__enter__()
        assert "getaddrinfo" not in vars(loop) and "sock_connect" not in vars(loop)
        assert asyncio_port._now is clock

    run_virtual(main)


def test_asyncio_fake_socket_basics() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with AsyncioFakeNetwork(families={socket.AF_INET}) as net:
            with socket.socket(socket.AF_INET6) as v6:
                v6.setblocking(False)
                with pytest.raises(OSError) as no_v6:
                    await loop.sock_connect(v6, ("2001:db8::1", 80, 0, 0))
                assert no_v6.value.errno == errno.EAFNOSUPPORT
            assert net.sockets == []  # refused before it was adopted
            sock = socket.socket()
            sock.setblocking(False)
            with pytest.raises(OSError) as wrong_family:
                await loop.sock_connect(sock, ("2001:db8::1", 80))
            assert wrong_family.value.errno == errno.EAFNOSUPPORT
            assert isinstance(sock, AsyncioFakeSocket) and net.sockets == [sock]
            assert (sock.family, sock.type) == (socket.AF_INET, socket.SOCK_STREAM)
            with pytest.raises(OSError) as not_connected:
                sock.getpeername()
            assert not_connected.value.errno == errno.ENOTCONN
            sock.close()
            assert (sock.closed, sock.fileno()) == (True, -1)

    run_virtual(main)


def test_asyncio_unscripted_address_is_refused_at_once() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with AsyncioFakeNetwork() as net:
            sock = socket.socket()
            sock.setblocking(False)
            with pytest.raises(ConnectionRefusedError) as info:
                await loop.sock_connect(sock, ("192.0.2.1", 1))
            assert info.value.errno == errno.ECONNREFUSED
            assert loop.time() == 0.0
            assert isinstance(sock, AsyncioFakeSocket)
            assert (sock.connect_state, sock.closed) == ("refused", False)  # like a real one
            sock.close()
            assert net.open_sockets() == []

    run_virtual(main)


def test_asyncio_fake_socket_addresses_and_a_peer_that_closes() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with AsyncioFakeNetwork() as net:
            net.script(("2001:db8::5", 443), reply=b"hi", max_send=2)
            with socket.socket(socket.AF_INET6) as sock:
                sock.setblocking(False)
                await loop.sock_connect(sock, ("2001:db8::5", 443, 0, 0))
                assert sock.getpeername() == ("2001:db8::5", 443, 0, 0)
                assert sock.getsockname() == ("2001:db8:ffff::1", 50000, 0, 0)
                await loop.sock_sendall(sock, b"abcde")
                assert isinstance(sock, AsyncioFakeSocket)
                assert sock.sends == [2, 2, 1]
                sock.shutdown(socket.SHUT_WR)
                assert await loop.sock_recv(sock, 10) == b"hi"
                assert await loop.sock_recv(sock, 10) == b""  # the peer closed its side
                with pytest.raises(BrokenPipeError):
                    sock.send(b"x")
            assert net.received(("2001:db8::5", 443)) == b"abcde"
            assert net.open_sockets() == []

    run_virtual(main)


def test_asyncio_echo_larger_than_the_socket_buffers() -> None:
    # The echo waits in the peer until our receive buffer has room: nothing is lost.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        payload = bytes(range(256)) * 8192  # 2 MiB, more than a socket pair holds
        with AsyncioFakeNetwork() as net:
            net.script(("192.0.2.1", 80))
            with socket.socket() as sock:
                sock.setblocking(False)
                await loop.sock_connect(sock, ("192.0.2.1", 80))
                await loop.sock_sendall(sock, payload)
                sock.shutdown(socket.SHUT_WR)
                echoed = bytearray()
                while chunk := await loop.sock_recv(sock, 65536):
                    echoed += chunk
            assert echoed == payload
            assert net.received(("192.0.2.1", 80)) == payload

    run_virtual(main)


def test_asyncio_fake_network_leaves_no_peer_open() -> None:
    # A socket still open when the network is removed: its peer's end is closed.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with AsyncioFakeNetwork() as net:
            net.script(("192.0.2.1", 80), closes=False)
            sock = socket.socket()
            sock.setblocking(False)
            await loop.sock_connect(sock, ("192.0.2.1", 80))
        try:
            assert await loop.sock_recv(sock, 10) == b""
        finally:
            sock.close()

    run_virtual(main)


# --------------------------------------------------------------------------------------
# Scripts and the resolver helper (shared by both networks)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("network", [FakeNetwork, AsyncioFakeNetwork])
def test_scripts_are_checked(network: type[FakeNetwork] | type[AsyncioFakeNetwork]) -> None:
    net = network()
    with pytest.raises(ValueError, match="add_host"):
        net.script(("example.test", 80))
    with pytest.raises(ValueError, match="outcome"):
        net.script(("192.0.2.1", 80), outcome="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delay"):
        net.script(("192.0.2.1", 80), delay=-1)
    with pytest.raises(ValueError, match="max_send"):
        net.script(("192.0.2.1", 80), max_send=0)
    with pytest.raises(ValueError):
        net.add_host("example.test", "not-an-ip")
    # The key is the canonical address: these are the same peer.
    net.script(("2001:DB8:0::1", 80), delay=2.0)
    assert net.script_for(("2001:db8::1", 80, 0, 0)).delay == 2.0
    assert net.default.outcome == "refuse"


def test_addrinfo() -> None:
    v4, v6 = addrinfo(("192.0.2.1", 80), ("2001:db8::1", 443))
    assert v4 == (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("192.0.2.1", 80))
    assert v6[0] == socket.AF_INET6 and v6[4] == ("2001:db8::1", 443, 0, 0)
    assert addrinfo(("::1", 1, 0, 3))[0][4] == ("::1", 1, 0, 3)  # a full sockaddr stays
    assert addrinfo(("192.0.2.1", 80), ("::1", 1), family=socket.AF_INET6)[0][4][0] == "::1"
    with pytest.raises(ValueError, match=r"'example\.test'"):
        addrinfo(("example.test", 80))


# --------------------------------------------------------------------------------------
# FakeNetwork (Trio)
# --------------------------------------------------------------------------------------


async def test_fake_network_restores_the_previous_hooks() -> None:
    outer = FakeNetwork()
    with outer:
        with FakeNetwork() as inner:
            sock = trio.socket.socket()
            assert sock in inner.sockets
        sock = trio.socket.socket()
        assert sock in outer.sockets and sock not in inner.sockets
        with pytest.raises(RuntimeError, match="already installed"):
            outer.__enter__()
    real = trio.socket.socket()
    try:
        assert not isinstance(real, FakeSocket)
    finally:
        real.close()


async def test_fake_socket_basics(autojump_clock: trio.testing.MockClock) -> None:
    with FakeNetwork(families={socket.AF_INET}) as net:
        with pytest.raises(OSError) as no_v6:
            trio.socket.socket(socket.AF_INET6)
        assert no_v6.value.errno == errno.EAFNOSUPPORT
        sock = trio.socket.socket()
        assert isinstance(sock, FakeSocket)
        assert (sock.family, sock.type) == (socket.AF_INET, socket.SOCK_STREAM)
        assert sock.fileno() > 0
        with pytest.raises(OSError) as not_connected:
            sock.getpeername()
        assert not_connected.value.errno == errno.ENOTCONN
        with pytest.raises(OSError) as wrong_family:
            await sock.connect(("2001:db8::1", 80))
        assert wrong_family.value.errno == errno.EAFNOSUPPORT
        assert net.sockets == [sock]
        sock.close()


async def test_unscripted_address_is_refused_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with FakeNetwork() as net:
        sock = trio.socket.socket()
        assert isinstance(sock, FakeSocket)
        with pytest.raises(ConnectionRefusedError) as info:
            await sock.connect(("192.0.2.1", 1))
        assert info.value.errno == errno.ECONNREFUSED
        assert trio.current_time() == 0.0
        assert (sock.connect_state, sock.closed) == ("refused", False)  # like a real socket
        sock.close()
        assert sock.fileno() == -1
        assert net.default.outcome == "refuse"


# --------------------------------------------------------------------------------------
# Every port, in real time (uvloop has no virtual clock, but the fake works there too)
# --------------------------------------------------------------------------------------


def test_the_fake_network_in_real_time(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.add_host("example.test", "2001:db8::1", "192.0.2.1")
            net.script(("2001:db8::1", 80), outcome="refuse")
            net.script(("192.0.2.1", 80), max_send=3)  # echoes
            report = await port.module.connect_check_send(
                "example.test:80", b"0123456789", read_reply=True
            )
            assert (report.status, report.reply, report.bytes_sent) == ("ok", b"0123456789", 10)
            assert [(a.address[0], a.outcome) for a in report.attempts] == [
                ("2001:db8::1", "failed"),
                ("192.0.2.1", "connected"),
            ]
            assert [s.connect_state for s in net.sockets] == ["refused", "connected"]
            assert net.sockets[1].sends == [3, 3, 3, 1]
            assert net.open_sockets() == []

    port.run(main)
