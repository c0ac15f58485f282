"""Spec: cancellation, deadlines, resolver failures and the numeric fast path, scripted.

The companion of ``test_spec_race_table.py``, over the same scripted fake network
(``FakeNetwork`` on Trio, ``AsyncioFakeNetwork`` on asyncio) on a virtual clock (Trio's
``MockClock``, a ``looptime`` loop on asyncio; uvloop has no virtual clock, so its runs
are skipped), with the same exact virtual times on both ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio
from conftest import Port

from trio_sockets import ConnectError
from trio_sockets.testing import AsyncioFakeSocket, FakeSocket

pytestmark = pytest.mark.timeout(30)

HOST = "example.test"
PORT = 80
REFUSED = "ConnectionRefusedError: [Errno 111] Connection refused"


def attempt_rows(attempts: Any) -> list[tuple[Any, ...]]:
    return [(a.address[0], a.started_s, a.ended_s, a.outcome, a.error) for a in attempts]


# --------------------------------------------------------------------------------------
# Cancellation and deadlines
# --------------------------------------------------------------------------------------


def test_cancellation_mid_race_is_a_bare_cancelled(port: Port) -> None:
    async def main() -> None:
        caught: list[BaseException] = []
        with port.FakeNetwork() as net:
            net.add_host(HOST, "2001:db8::1", "192.0.2.1", "2001:db8::2")
            for ip in ("2001:db8::1", "192.0.2.1", "2001:db8::2"):
                net.script((ip, PORT), outcome="blackhole")
            async with port.move_on_after(0.625) as scope:
                try:
                    await port.module.open_connection(HOST, PORT)
                except BaseException as exc:
                    caught.append(exc)
                    raise
            assert scope.cancelled_caught
            assert port.now() == 0.625
            # Not an exception group of cancellations.
            assert [type(exc) for exc in caught] == [port.Cancelled]
            assert [s.connect_started for s in net.sockets] == [0.0, 0.25, 0.5]
            assert [s.connect_state for s in net.sockets] == ["cancelled"] * 3
            assert net.open_sockets() == []

    port.run(main, virtual=True)


@contextlib.contextmanager
def on_connected(port: Port, callback: Callable[[], object]) -> Iterator[None]:
    """Call ``callback()`` as soon as a fake socket's connect succeeds, in that step."""
    cls: Any = FakeSocket if port.name == "trio" else AsyncioFakeSocket
    name = "connect" if port.name == "trio" else "_connect"
    real = getattr(cls, name)

    async def connect(self: Any, address: Any) -> None:
        await real(self, address)
        callback()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cls, name, connect)
        yield


def test_cancellation_after_the_winner_connected_closes_the_winner(port: Port) -> None:
    # The winner has connected and cancelled its siblings, but the race has not returned
    # yet when the caller is cancelled: the winner must not leak.
    async def main() -> None:
        connected = port.Event()
        with port.FakeNetwork() as net, on_connected(port, connected.set):
            net.add_host(HOST, "192.0.2.1", "192.0.2.2")
            net.script(("192.0.2.1", PORT), outcome="blackhole")
            net.script(("192.0.2.2", PORT), delay=0.125)
            outcome = await port.run_and_cancel(
                lambda: port.module.open_connection(HOST, PORT), connected.wait
            )
            assert outcome.cancelled
            assert type(outcome.error) is port.Cancelled
            assert port.now() == 0.375
            assert [s.connect_state for s in net.sockets] == ["cancelled", "connected"]
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_cancellation_of_a_single_address_closes_its_socket(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.script(("192.0.2.1", PORT), outcome="blackhole")
            async with port.move_on_after(2.0):
                await port.module.open_connection("192.0.2.1", PORT)
            assert port.now() == 2.0
            assert [s.connect_state for s in net.sockets] == ["cancelled"]
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_deadline_mid_race_reports_timeout_with_attempts_so_far(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.add_host(HOST, "2001:db8::1", "192.0.2.1", "2001:db8::2", delay=0.125)
            net.script(("2001:db8::1", PORT), outcome="blackhole")
            net.script(("192.0.2.1", PORT), delay=0.125, outcome="refuse")
            net.script(("2001:db8::2", PORT), delay=5.0)
            report = await port.module.connect_check_send(f"{HOST}:{PORT}", b"x", timeout=0.75)
            assert port.now() == 0.75
            assert report.status == "timeout"
            assert report.error == "TimeoutError: deadline of 0.75 s passed during connect"
            assert (report.resolve_s, report.connect_s, report.total_s) == (0.125, 0.625, 0.75)
            assert (report.address, report.bytes_sent, report.reply) == (None, 0, None)
            assert attempt_rows(report.attempts) == [
                ("2001:db8::1", 0.125, 0.75, "cancelled", None),
                ("192.0.2.1", 0.375, 0.5, "failed", REFUSED),
                ("2001:db8::2", 0.5, 0.75, "cancelled", None),
            ]
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_deadline_during_resolve(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.add_host(HOST, "192.0.2.1", delay=3.0)
            report = await port.module.connect_check_send(f"{HOST}:{PORT}", b"x", timeout=1.0)
            assert port.now() == 1.0
            assert (report.status, report.resolve_s, report.attempts) == ("timeout", 1.0, ())
            assert report.error == "TimeoutError: deadline of 1 s passed during resolve"
            assert net.sockets == []

    port.run(main, virtual=True)


def test_deadline_during_send_reports_bytes_sent(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.script(("192.0.2.1", PORT), delay=0.25, window=3, max_send=2)
            report = await port.module.connect_check_send(
                ("192.0.2.1", PORT), b"0123456789", timeout=1.0
            )
            assert port.now() == 1.0
            assert (report.status, report.bytes_sent) == ("timeout", 3)
            assert report.error == "TimeoutError: deadline of 1 s passed during send"
            assert (report.connect_s, report.check_s, report.send_s) == (0.25, 0.0, 0.75)
            assert net.received(("192.0.2.1", PORT)) == b"012"
            assert net.sockets[0].sends == [2, 1]
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_deadline_while_reading_reply(port: Port) -> None:
    # A peer that never closes its side: the reply read waits for the deadline.
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.script(("192.0.2.1", PORT), reply=b"partial", closes=False)
            report = await port.module.connect_check_send(
                "192.0.2.1:80", b"ping", timeout=2.5, read_reply=True
            )
            assert port.now() == 2.5
            assert (report.status, report.bytes_sent, report.reply) == ("timeout", 4, b"partial")
            assert report.reply_s == 2.5
            assert net.sockets[0].did_shutdown_SHUT_WR
            assert bytes(net.sockets[0].received) == b"partial"
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_unknown_name_is_a_connect_error(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            with pytest.raises(ConnectError, match=r"could not resolve 'nowhere\.test'") as info:
                await port.module.open_connection("nowhere.test", PORT)
            assert (info.value.attempts, info.value.errno) == ((), None)
            assert net.lookups == ["nowhere.test"]
            assert net.sockets == []

    port.run(main, virtual=True)


def test_a_name_with_no_addresses_is_a_connect_error(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.add_host(HOST)
            report = await port.module.connect_check_send(f"{HOST}:{PORT}", b"x")
            assert report.status == "error"
            assert report.error is not None and "no addresses" in report.error
            assert net.sockets == []

    port.run(main, virtual=True)


def test_unparseable_ip_literal_goes_to_the_resolver(port: Port) -> None:
    # ipaddress accepts "192.0.2.1%x", the C library does not: it must come out as a
    # ConnectError from resolving, not as a raw socket.gaierror.
    async def main() -> None:
        with port.FakeNetwork() as net:
            with pytest.raises(ConnectError, match="could not resolve"):
                await port.module.open_connection("192.0.2.1%x", PORT)
            assert net.lookups == ["192.0.2.1%x"]

    port.run(main, virtual=True)


def test_socket_creation_failure_is_recorded_as_a_failed_attempt(port: Port) -> None:
    # On asyncio the caller makes its own sockets: the fake refuses the family when the
    # socket connects, which the race records the same way.
    async def main() -> None:
        with port.FakeNetwork(families={socket.AF_INET}) as net:
            net.add_host(HOST, "2001:db8::1", "192.0.2.1")
            net.script(("192.0.2.1", PORT), delay=0.125)
            conn = await port.module.open_connection(HOST, PORT)
            # The IPv6 failure hurried the IPv4 attempt along: it started at once.
            assert port.now() == 0.125
            assert [(a.address[0], a.started_s, a.outcome) for a in conn.attempts] == [
                ("2001:db8::1", 0.0, "failed"),
                ("192.0.2.1", 0.0, "connected"),
            ]
            assert conn.attempts[0].error == (
                "OSError: [Errno 97] Address family not supported by protocol"
            )
            await conn.aclose()

    port.run(main, virtual=True)


# --------------------------------------------------------------------------------------
# The numeric fast path
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def task_groups_opened(port: Port) -> Iterator[list[object]]:
    """Record every nursery (Trio) or ``TaskGroup`` (asyncio) opened in the block."""
    opened: list[object] = []
    module: Any = trio if port.name == "trio" else asyncio
    name = "open_nursery" if port.name == "trio" else "TaskGroup"
    real = getattr(module, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, name, spy)
        yield opened


@pytest.mark.parametrize("ip", ["192.0.2.7", "2001:db8::7"])
def test_numeric_host_needs_no_task_group_and_no_resolver(port: Port, ip: str) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.script((ip, 443), delay=0.125)
            with task_groups_opened(port) as opened:
                conn = await port.module.open_connection(ip, 443)
            assert opened == []  # a single numeric address is no race
            assert port.now() == 0.125
            assert conn.remote_address[:2] == (ip, 443)
            assert [(a.address[0], a.started_s, a.ended_s, a.outcome) for a in conn.attempts] == [
                (ip, 0.0, 0.125, "connected")
            ]
            assert net.lookups == []  # the fake resolver was never asked
            assert len(net.sockets) == 1
            await conn.aclose()
            assert net.sockets[0].closed

    port.run(main, virtual=True)


def test_the_task_group_spy_would_catch_a_race(port: Port) -> None:
    # The spy above is meaningful: a name with two addresses does open a task group.
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.add_host(HOST, "192.0.2.1", "192.0.2.2")
            net.script(("192.0.2.1", PORT))
            with task_groups_opened(port) as opened:
                conn = await port.module.open_connection(HOST, PORT)
            assert len(opened) == 1
            await conn.aclose()

    port.run(main, virtual=True)
