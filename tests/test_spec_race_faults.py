"""Spec: the race when a connected socket fails or a close() fails, over the fake network.

The companion of ``test_spec_race_table.py``, with the same scripted networks and the
same virtual clocks (uvloop has none and is skipped): exact times show that a socket
failing right after its connect hurries the next attempt as a refusal would, and that a
failing ``close()`` changes nothing a caller sees but a note.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Port

from trio_sockets import ConnectError
from trio_sockets.testing import AsyncioFakeSocket, FakeSocket

pytestmark = pytest.mark.timeout(30)

HOST = "example.test"
PORT = 80
REFUSED = "ConnectionRefusedError: [Errno 111] Connection refused"
NOT_CONNECTED = "OSError: [Errno 107] Transport endpoint is not connected"


def socket_class(port: Port) -> Any:
    return FakeSocket if port.name == "trio" else AsyncioFakeSocket


@contextlib.contextmanager
def resets_at_once(port: Port, ip: str) -> Iterator[None]:
    """The peer at ``ip`` resets each connection as soon as it is up: getpeername() fails."""
    cls = socket_class(port)
    real = cls.getpeername

    def getpeername(sock: Any) -> Any:
        if sock.address is not None and sock.address[0] == ip:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return real(sock)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cls, "getpeername", getpeername)
        yield


@contextlib.contextmanager
def failing_close(port: Port) -> Iterator[None]:
    """Every fake socket's close() closes it, then raises ``OSError(EIO)``.

    Except where Trio's fake closes a cancelled connect itself, inside ``connect()``, as
    Trio's own sockets do (quietly): that close is the socket's, not the caller's.
    """
    cls = socket_class(port)
    real = cls.close

    def close(sock: Any) -> None:
        inside_connect = (
            port.name == "trio" and sock.connect_state == "cancelled" and not sock.closed
        )
        real(sock)
        if not inside_connect:
            raise OSError(errno.EIO, "Input/output error")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cls, "close", close)
        yield


def rows(attempts: Any) -> list[tuple[Any, ...]]:
    return [(a.address[0], a.started_s, a.ended_s, a.outcome, a.error) for a in attempts]


def test_a_peer_that_resets_at_once_hurries_the_next_attempt(port: Port) -> None:
    # .1 connects at 0.125 and resets at once. Its attempt failed, its socket is closed,
    # and .2 starts then instead of at 0.25, as after a refusal.
    async def main() -> None:
        with port.FakeNetwork() as net, resets_at_once(port, "192.0.2.1"):
            net.add_host(HOST, "192.0.2.1", "192.0.2.2")
            net.script(("192.0.2.1", PORT), delay=0.125)
            net.script(("192.0.2.2", PORT), delay=0.125)
            conn = await port.module.open_connection(HOST, PORT)
            assert port.now() == 0.25
            assert rows(conn.attempts) == [
                ("192.0.2.1", 0.0, 0.125, "failed", NOT_CONNECTED),
                ("192.0.2.2", 0.125, 0.25, "connected", None),
            ]
            assert net.open_sockets() == [conn.socket]
            await conn.aclose()

    port.run(main, virtual=True)


def test_a_peer_that_resets_at_once_is_the_only_address(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net, resets_at_once(port, "192.0.2.1"):
            net.script(("192.0.2.1", PORT), delay=0.125)
            report = await port.module.connect_check_send(("192.0.2.1", PORT), b"x")
            assert (report.status, report.error, report.bytes_sent) == (
                "error",
                NOT_CONNECTED,
                0,
            )
            assert rows(report.attempts) == [("192.0.2.1", 0.0, 0.125, "failed", NOT_CONNECTED)]
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_a_failing_close_keeps_the_refusals(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net, failing_close(port):
            net.add_host(HOST, "192.0.2.1", "192.0.2.2")
            net.script(("192.0.2.1", PORT), delay=0.125, outcome="refuse")
            net.script(("192.0.2.2", PORT), delay=0.125, outcome="refuse")
            with pytest.raises(ConnectError) as info:
                await port.module.open_connection(HOST, PORT)
            assert port.now() == 0.25
            assert info.value.errno == errno.ECONNREFUSED
            assert rows(info.value.attempts) == [
                ("192.0.2.1", 0.0, 0.125, "failed", REFUSED),
                ("192.0.2.2", 0.125, 0.25, "failed", REFUSED),
            ]
            for exc in info.value.errors:
                assert exc.__notes__ == [
                    "closing the socket failed too: OSError: [Errno 5] Input/output error"
                ]
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_a_failing_close_keeps_the_cancellation(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net, failing_close(port):
            net.add_host(HOST, "192.0.2.1", "192.0.2.2")
            net.script(("192.0.2.1", PORT), outcome="blackhole")
            net.script(("192.0.2.2", PORT), outcome="blackhole")
            outcome = await port.run_and_cancel(
                lambda: port.module.open_connection(HOST, PORT), lambda: port.sleep(1.0)
            )
            assert outcome.cancelled and type(outcome.error) is port.Cancelled
            assert port.now() == 1.0
            assert [s.connect_started for s in net.sockets] == [0.0, 0.25]
            assert net.open_sockets() == []

    port.run(main, virtual=True)
