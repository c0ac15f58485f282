"""Trio only: fan-out, sending and the fake network itself, with exact virtual times.

The companion of ``test_spec_race_table.py``: ``send_to_many`` pacing, ordering and
``fail_fast``, ``send_all`` over partial sends, resets and stalls, and the fake network's
own behaviour, all under pytest-trio's ``autojump_clock``.
"""

from __future__ import annotations

import errno
import socket

import pytest
import trio
import trio.testing

import trio_sockets
from trio_sockets import SendError, SendReport
from trio_sockets._reports import FAIL_FAST_TEXT
from trio_sockets.testing import FakeNetwork, FakeSocket

pytestmark = pytest.mark.timeout(30)

HOST = "example.test"
PORT = 80
REFUSED = "ConnectionRefusedError: [Errno 111] Connection refused"


# --------------------------------------------------------------------------------------
# send_to_many over the fake network
# --------------------------------------------------------------------------------------


async def test_send_to_many_reports_in_input_order(autojump_clock: trio.testing.MockClock) -> None:
    completed: list[str] = []
    with FakeNetwork() as net:
        net.script(("192.0.2.1", PORT), delay=0.5)
        net.script(("192.0.2.2", PORT), delay=0.25, outcome="refuse")
        net.script(("192.0.2.3", PORT), delay=0.125)
        targets = ["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"]
        reports = await trio_sockets.send_to_many(
            targets, b"hi", on_report=lambda r: completed.append(str(r.target))
        )
        assert trio.current_time() == 0.5
        assert [str(r.target) for r in reports] == targets
        assert [r.status for r in reports] == ["ok", "error", "ok"]
        assert [r.total_s for r in reports] == [0.5, 0.25, 0.125]
        assert [r.bytes_sent for r in reports] == [2, 0, 2]
        assert reports[1].error == REFUSED
        assert completed == ["192.0.2.3:80", "192.0.2.2:80", "192.0.2.1:80"]  # as they end
        assert net.received(("192.0.2.1", PORT)) == b"hi"
        assert net.open_sockets() == []


async def test_send_to_many_fail_fast(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[SendReport] = []
    with FakeNetwork() as net:
        for n in (1, 3, 4):
            net.script((f"192.0.2.{n}", PORT), outcome="blackhole")
        net.script(("192.0.2.2", PORT), delay=0.25, outcome="refuse")
        targets = [f"192.0.2.{n}:80" for n in (1, 2, 3, 4)]
        reports = await trio_sockets.send_to_many(
            targets, b"hi", max_concurrency=3, fail_fast=True, on_report=seen.append
        )
        assert trio.current_time() == 0.25
        assert [r.status for r in reports] == ["cancelled", "error", "cancelled", "cancelled"]
        assert reports[1].error == REFUSED
        for index in (0, 2, 3):
            assert reports[index].error == FAIL_FAST_TEXT
        # The two that were connecting say how far they got.
        assert [(a.started_s, a.ended_s, a.outcome) for a in reports[0].attempts] == [
            (0.0, 0.25, "cancelled")
        ]
        assert reports[0].total_s == 0.25
        assert len(seen) == 4  # on_report: once per target, the error first
        assert seen[0] is reports[1]
        assert sorted(str(r.target) for r in seen) == targets
        assert net.open_sockets() == []


async def test_send_to_many_without_fail_fast_runs_everything(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with FakeNetwork() as net:
        net.script(("192.0.2.1", PORT), delay=1.0)
        net.script(("192.0.2.2", PORT), delay=0.25, outcome="refuse")
        reports = await trio_sockets.send_to_many(["192.0.2.1:80", "192.0.2.2:80"], b"hi")
        assert trio.current_time() == 1.0
        assert [r.status for r in reports] == ["ok", "error"]


async def test_send_to_many_paces_timeouts_by_max_concurrency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[float] = []
    with FakeNetwork() as net:
        targets = [f"192.0.2.{n}:80" for n in range(1, 6)]
        for n in range(1, 6):
            net.script((f"192.0.2.{n}", PORT), outcome="blackhole")
        reports = await trio_sockets.send_to_many(
            targets,
            b"x",
            max_concurrency=2,
            timeout=1.0,
            on_report=lambda r: calls.append(trio.current_time()),
        )
        assert trio.current_time() == 3.0
        assert [r.status for r in reports] == ["timeout"] * 5
        assert [r.total_s for r in reports] == [1.0] * 5
        assert [s.connect_started for s in net.sockets] == [0.0, 0.0, 1.0, 1.0, 2.0]
        assert calls == [1.0, 1.0, 2.0, 2.0, 3.0]
        assert net.open_sockets() == []


async def test_send_to_many_cancelled_from_outside(autojump_clock: trio.testing.MockClock) -> None:
    caught: list[BaseException] = []
    with FakeNetwork() as net:
        for n in (1, 2, 3):
            net.script((f"192.0.2.{n}", PORT), outcome="blackhole")
        with trio.move_on_after(0.5):
            try:
                await trio_sockets.send_to_many([f"192.0.2.{n}:80" for n in (1, 2, 3)], b"x")
            except BaseException as exc:
                caught.append(exc)
                raise
        assert trio.current_time() == 0.5
        assert [type(exc) for exc in caught] == [trio.Cancelled]
        assert len(net.sockets) == 3
        assert net.open_sockets() == []


# --------------------------------------------------------------------------------------
# Connection.send_all: partial sends, resets, cancellation
# --------------------------------------------------------------------------------------


async def test_send_all_loops_over_partial_sends(autojump_clock: trio.testing.MockClock) -> None:
    with FakeNetwork() as net:
        net.script(("192.0.2.1", PORT), max_send=3)
        async with await trio_sockets.open_connection("192.0.2.1", PORT) as conn:
            await conn.send_all(memoryview(b"0123456789"))
            assert conn.bytes_sent == 10
            assert net.sockets[0].sends == [3, 3, 3, 1]
            assert net.received(("192.0.2.1", PORT)) == b"0123456789"
        assert net.open_sockets() == []


async def test_send_all_reset_after_n_bytes(autojump_clock: trio.testing.MockClock) -> None:
    with FakeNetwork() as net:
        net.script(("192.0.2.1", PORT), max_send=3, reset_after=7)
        conn = await trio_sockets.open_connection("192.0.2.1", PORT)
        await conn.send_all(b"ab")  # a first call that works
        with pytest.raises(SendError) as info:
            await conn.send_all(b"0123456789")
        assert info.value.bytes_sent == 5  # this call's share: 7 - 2
        assert info.value.errno == errno.ECONNRESET
        assert isinstance(info.value.__cause__, ConnectionResetError)
        assert "after 5 of 10 bytes" in str(info.value)
        assert conn.bytes_sent == 7
        assert net.sockets[0].sends == [2, 3, 2]
        assert net.received(("192.0.2.1", PORT)) == b"ab01234"
        await conn.aclose()


async def test_connect_check_send_reports_a_reset(autojump_clock: trio.testing.MockClock) -> None:
    with FakeNetwork() as net:
        net.script(("192.0.2.1", PORT), delay=0.125, reset_after=4)
        report = await trio_sockets.connect_check_send("192.0.2.1:80", b"0123456789")
        assert (report.status, report.bytes_sent) == ("error", 4)
        assert report.error is not None
        assert report.error.startswith("SendError: ")
        assert "after 4 of 10 bytes" in report.error
        assert report.total_s == 0.125
        assert net.open_sockets() == []


async def test_send_all_cancelled_while_the_peer_is_stalled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with FakeNetwork() as net:
        net.script(("192.0.2.1", PORT), max_send=2, window=5)
        conn = await trio_sockets.open_connection("192.0.2.1", PORT)
        with trio.move_on_after(1.0) as scope:
            await conn.send_all(b"0123456789")
        assert scope.cancelled_caught
        assert trio.current_time() == 1.0
        assert conn.bytes_sent == 5
        assert net.sockets[0].sends == [2, 2, 1]
        assert net.received(("192.0.2.1", PORT)) == b"01234"
        # The connection is usable again: the busy flag was released.
        with trio.move_on_after(0.5):
            await conn.send_all(b"more")
        assert conn.bytes_sent == 5
        await conn.aclose()
        assert net.open_sockets() == []


async def test_two_senders_get_busy_error(autojump_clock: trio.testing.MockClock) -> None:
    with FakeNetwork() as net:
        net.script(("192.0.2.1", PORT), window=1)
        conn = await trio_sockets.open_connection("192.0.2.1", PORT)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send_all, b"abc")
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await conn.send_all(b"xyz")
            nursery.cancel_scope.cancel()
        assert net.received(("192.0.2.1", PORT)) == b"a"
        await conn.aclose()


async def test_read_reply(autojump_clock: trio.testing.MockClock) -> None:
    with FakeNetwork() as net:
        net.script(("192.0.2.1", PORT), reply=b"pong")
        net.script(("192.0.2.2", PORT))  # echo
        ok = await trio_sockets.connect_check_send("192.0.2.1:80", b"ping", read_reply=True)
        assert (ok.status, ok.reply, ok.bytes_sent) == ("ok", b"pong", 4)
        capped = await trio_sockets.connect_check_send(
            "192.0.2.2:80", b"0123456789", read_reply=True, max_reply_bytes=4
        )
        assert (capped.status, capped.reply) == ("ok", b"0123")
        assert all(s.did_shutdown_SHUT_WR for s in net.sockets)
        assert net.open_sockets() == []


# --------------------------------------------------------------------------------------
# The fake network itself
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


def test_scripts_are_checked() -> None:
    net = FakeNetwork()
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
