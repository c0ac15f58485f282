"""Spec: fan-out and sending over the scripted fake network, on every port, in virtual time.

The companion of ``test_spec_race_table.py``: ``send_to_many`` pacing, ordering and
``fail_fast``, ``send_all`` over partial sends, resets and stalls, scripted with
``trio_sockets.testing``'s fake network (``FakeNetwork`` on Trio, ``AsyncioFakeNetwork``
on asyncio) on a virtual clock, with the same exact times on both ports (uvloop has no
virtual clock: skipped there).
"""

from __future__ import annotations

import errno

import pytest
from conftest import Port

from trio_sockets import SendError, SendReport
from trio_sockets._reports import FAIL_FAST_TEXT

pytestmark = pytest.mark.timeout(30)

HOST = "example.test"
PORT = 80
REFUSED = "ConnectionRefusedError: [Errno 111] Connection refused"


# --------------------------------------------------------------------------------------
# send_to_many over the fake network
# --------------------------------------------------------------------------------------


def test_send_to_many_reports_in_input_order(port: Port) -> None:
    async def main() -> None:
        completed: list[str] = []
        with port.FakeNetwork() as net:
            net.script(("192.0.2.1", PORT), delay=0.5)
            net.script(("192.0.2.2", PORT), delay=0.25, outcome="refuse")
            net.script(("192.0.2.3", PORT), delay=0.125)
            targets = ["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"]
            reports = await port.module.send_to_many(
                targets, b"hi", on_report=lambda r: completed.append(str(r.target))
            )
            assert port.now() == 0.5
            assert [str(r.target) for r in reports] == targets
            assert [r.status for r in reports] == ["ok", "error", "ok"]
            assert [r.total_s for r in reports] == [0.5, 0.25, 0.125]
            assert [r.bytes_sent for r in reports] == [2, 0, 2]
            assert reports[1].error == REFUSED
            assert completed == ["192.0.2.3:80", "192.0.2.2:80", "192.0.2.1:80"]  # as they end
            assert net.received(("192.0.2.1", PORT)) == b"hi"
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_send_to_many_fail_fast(port: Port) -> None:
    async def main() -> None:
        seen: list[SendReport] = []
        with port.FakeNetwork() as net:
            for n in (1, 3, 4):
                net.script((f"192.0.2.{n}", PORT), outcome="blackhole")
            net.script(("192.0.2.2", PORT), delay=0.25, outcome="refuse")
            targets = [f"192.0.2.{n}:80" for n in (1, 2, 3, 4)]
            reports = await port.module.send_to_many(
                targets, b"hi", max_concurrency=3, fail_fast=True, on_report=seen.append
            )
            assert port.now() == 0.25
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

    port.run(main, virtual=True)


def test_send_to_many_without_fail_fast_runs_everything(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.script(("192.0.2.1", PORT), delay=1.0)
            net.script(("192.0.2.2", PORT), delay=0.25, outcome="refuse")
            reports = await port.module.send_to_many(["192.0.2.1:80", "192.0.2.2:80"], b"hi")
            assert port.now() == 1.0
            assert [r.status for r in reports] == ["ok", "error"]
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_send_to_many_paces_timeouts_by_max_concurrency(port: Port) -> None:
    async def main() -> None:
        calls: list[float] = []
        with port.FakeNetwork() as net:
            targets = [f"192.0.2.{n}:80" for n in range(1, 6)]
            for n in range(1, 6):
                net.script((f"192.0.2.{n}", PORT), outcome="blackhole")
            reports = await port.module.send_to_many(
                targets,
                b"x",
                max_concurrency=2,
                timeout=1.0,
                on_report=lambda r: calls.append(port.now()),
            )
            assert port.now() == 3.0
            assert [r.status for r in reports] == ["timeout"] * 5
            assert [r.total_s for r in reports] == [1.0] * 5
            assert [s.connect_started for s in net.sockets] == [0.0, 0.0, 1.0, 1.0, 2.0]
            assert calls == [1.0, 1.0, 2.0, 2.0, 3.0]
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_send_to_many_cancelled_from_outside(port: Port) -> None:
    async def main() -> None:
        caught: list[BaseException] = []
        with port.FakeNetwork() as net:
            for n in (1, 2, 3):
                net.script((f"192.0.2.{n}", PORT), outcome="blackhole")
            async with port.move_on_after(0.5):
                try:
                    await port.module.send_to_many([f"192.0.2.{n}:80" for n in (1, 2, 3)], b"x")
                except BaseException as exc:
                    caught.append(exc)
                    raise
            assert port.now() == 0.5
            assert [type(exc) for exc in caught] == [port.Cancelled]
            assert len(net.sockets) == 3
            assert net.open_sockets() == []

    port.run(main, virtual=True)


# --------------------------------------------------------------------------------------
# Connection.send_all: partial sends, resets, cancellation
# --------------------------------------------------------------------------------------


def test_send_all_loops_over_partial_sends(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.script(("192.0.2.1", PORT), max_send=3)
            async with await port.module.open_connection("192.0.2.1", PORT) as conn:
                await conn.send_all(memoryview(b"0123456789"))
                assert conn.bytes_sent == 10
                assert net.sockets[0].sends == [3, 3, 3, 1]
                assert net.received(("192.0.2.1", PORT)) == b"0123456789"
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_send_all_reset_after_n_bytes(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.script(("192.0.2.1", PORT), max_send=3, reset_after=7)
            conn = await port.module.open_connection("192.0.2.1", PORT)
            await conn.send_all(b"ab")  # a first call that works
            with pytest.raises(SendError) as info:
                await conn.send_all(b"0123456789")
            assert info.value.bytes_sent == 5  # this call's share: 7 - 2
            assert info.value.errno == errno.ECONNRESET
            assert isinstance(info.value.__cause__, ConnectionResetError)
            assert "after 5 of 10 bytes" in str(info.value)
            assert str(info.value).count("[Errno") == 1, str(info.value)  # once, in front
            assert conn.bytes_sent == 7
            assert net.sockets[0].sends == [2, 3, 2]
            assert net.received(("192.0.2.1", PORT)) == b"ab01234"
            await conn.aclose()

    port.run(main, virtual=True)


def test_connect_check_send_reports_a_reset(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.script(("192.0.2.1", PORT), delay=0.125, reset_after=4)
            report = await port.module.connect_check_send("192.0.2.1:80", b"0123456789")
            assert (report.status, report.bytes_sent) == ("error", 4)
            assert report.error is not None
            assert report.error.startswith("SendError: ")
            assert "after 4 of 10 bytes" in report.error
            assert report.total_s == 0.125
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_send_all_cancelled_while_the_peer_is_stalled(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.script(("192.0.2.1", PORT), max_send=2, window=5)
            conn = await port.module.open_connection("192.0.2.1", PORT)
            async with port.move_on_after(1.0) as scope:
                await conn.send_all(b"0123456789")
            assert scope.cancelled_caught
            assert port.now() == 1.0
            assert conn.bytes_sent == 5
            assert net.sockets[0].sends == [2, 2, 1]
            assert net.received(("192.0.2.1", PORT)) == b"01234"
            # The connection is usable again: the busy flag was released.
            async with port.move_on_after(0.5):
                await conn.send_all(b"more")
            assert conn.bytes_sent == 5
            await conn.aclose()
            assert net.open_sockets() == []

    port.run(main, virtual=True)


def test_two_senders_get_busy_error(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.script(("192.0.2.1", PORT), window=1)
            conn = await port.module.open_connection("192.0.2.1", PORT)

            async def second_sender() -> None:
                # A virtual clock moves only once every task waits: by then the first
                # sender is blocked on the stalled peer.
                await port.sleep(0.125)
                with pytest.raises(port.BusyError):
                    await conn.send_all(b"xyz")

            outcome = await port.run_and_cancel(lambda: conn.send_all(b"abc"), second_sender)
            assert outcome.cancelled
            assert net.received(("192.0.2.1", PORT)) == b"a"
            await conn.aclose()

    port.run(main, virtual=True)


def test_read_reply(port: Port) -> None:
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.script(("192.0.2.1", PORT), reply=b"pong")
            net.script(("192.0.2.2", PORT))  # echo
            ok = await port.module.connect_check_send("192.0.2.1:80", b"ping", read_reply=True)
            assert (ok.status, ok.reply, ok.bytes_sent) == ("ok", b"pong", 4)
            capped = await port.module.connect_check_send(
                "192.0.2.2:80", b"0123456789", read_reply=True, max_reply_bytes=4
            )
            assert (capped.status, capped.reply) == ("ok", b"0123")
            assert all(s.did_shutdown_SHUT_WR for s in net.sockets)
            assert net.open_sockets() == []

    port.run(main, virtual=True)
