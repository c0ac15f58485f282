"""asyncio-only checks: the helpers in _asyncio_tools and what only asyncio can get wrong.

Sync test functions run ``main()`` through the ``run`` fixture, on the default loop and
on uvloop; after ``main()`` the runner checks that no task and no live timer handle is
left behind. Loopback only, port 0; nothing sleeps to wait for something it can await.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from trio_sockets import _asyncio_tools as tools
from trio_sockets import asyncio_port as ap
from trio_sockets._asyncio_tls import TLSLayer
from trio_sockets._reports import FAIL_FAST_TEXT
from trio_sockets.testing import addrinfo

Main = Callable[[], Awaitable[None]]
Runner = Callable[[Main], None]

pytestmark = pytest.mark.timeout(10)


def _check_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    assert asyncio.all_tasks() == {asyncio.current_task()}
    scheduled = getattr(loop, "_scheduled", None)  # the default loop's timer heap
    if scheduled is not None:  # uvloop keeps its timers in libuv: nothing to look at
        assert [h for h in scheduled if not h.cancelled()] == []


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        runner: Callable[[Any], None] = uvloop.run
    else:
        runner = asyncio.run

    def run(main: Main) -> None:
        async def checked() -> None:
            await main()
            _check_leftovers(asyncio.get_running_loop())

        runner(checked())

    return run


@contextlib.contextmanager
def listener(family: int = socket.AF_INET) -> Iterator[socket.socket]:
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def refused_port() -> int:
    """A loopback port nobody listens on (bound, never listening: connect is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def fill(sock: socket.socket) -> int:
    """Fill sock's send buffer (the peer does not read); return how much went in."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    total = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            total += sock.send(b"x" * 65536)
    return total


def full_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    fill(a)
    return a, b


def no_writer(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bool:
    # remove_writer() is public and returns whether a writer was registered.
    return not loop.remove_writer(sock.fileno())


async def until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0)  # a yield, not a wait for time


# --------------------------------------------------------------------------------------
# wait_writable / notify_closing
# --------------------------------------------------------------------------------------


def test_wait_writable_second_waiter_and_cancel_removes_writer(run: Runner) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = full_pair()
        with a, b:
            first = asyncio.create_task(tools.wait_writable(loop, a))
            await until(lambda: bool(tools._WAITERS))
            with pytest.raises(tools.BusyResourceError):
                await tools.wait_writable(loop, a)
            first.cancel()
            # Synchronously, before the cancelled task has even run again:
            assert not tools._WAITERS
            assert no_writer(loop, a)
            with pytest.raises(asyncio.CancelledError):
                await first
            # A waiter for another direction or socket is not refused.
            await tools.wait_writable(loop, b)

    run(main)


def test_wait_writable_returns_when_writable_and_leaves_nothing(run: Runner) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = full_pair()
        with a, b:
            waiter = asyncio.create_task(tools.wait_writable(loop, a))
            await until(lambda: bool(tools._WAITERS))
            with contextlib.suppress(BlockingIOError):
                while b.recv(1 << 20):
                    pass
            await waiter
            assert not tools._WAITERS and no_writer(loop, a)

    run(main)


def test_notify_closing_wakes_waiter_and_unregisters_before_close(run: Runner) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = full_pair()
        with b:
            waiter = asyncio.create_task(tools.wait_writable(loop, a))
            await until(lambda: bool(tools._WAITERS))
            tools.notify_closing(loop, a)
            assert not tools._WAITERS and no_writer(loop, a)
            a.close()
            with pytest.raises(tools.ClosedResourceError):
                await waiter
            with pytest.raises(tools.ClosedResourceError):
                await tools.wait_writable(loop, a)

    run(main)


# --------------------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------------------


def test_send_all_keeps_exact_progress_when_cancelled(run: Runner) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with listener() as server:
            port = server.getsockname()[1]
            conn = await ap.open_connection("127.0.0.1", port)
            peer, _ = await loop.sock_accept(server)
            with peer:
                peer.setblocking(False)
                sender = asyncio.create_task(conn.send_all(b"y" * (16 << 20)))
                await until(lambda: bool(tools._WAITERS))  # the buffer is full
                sender.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await sender
                assert 0 < conn.bytes_sent < 16 << 20
                await conn.aclose()
                await conn.aclose()  # twice is harmless
                received = 0
                while chunk := await loop.sock_recv(peer, 1 << 20):
                    received += len(chunk)
                assert received == conn.bytes_sent
                with pytest.raises(ap.ClosedError):
                    await conn.send_all(b"z")

    run(main)


def test_two_senders_get_busy_error_and_aclose_wakes_receiver(run: Runner) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with listener() as server:
            conn = await ap.open_connection("127.0.0.1", server.getsockname()[1])
            peer, _ = await loop.sock_accept(server)
            with peer:
                sender = asyncio.create_task(conn.send_all(b"y" * (16 << 20)))
                await until(lambda: bool(tools._WAITERS))
                with pytest.raises(ap.BusyError):
                    await conn.send_all(b"z")
                receiver = asyncio.create_task(conn.receive_some())
                await until(lambda: len(tools._WAITERS) == 2)
                await conn.aclose()
                assert not tools._WAITERS
                for task in (sender, receiver):
                    with pytest.raises(ap.ClosedError):
                        await task

    run(main)


# --------------------------------------------------------------------------------------
# The race, the workflow and the fan-out, with a scripted loop.sock_connect
# --------------------------------------------------------------------------------------


class Script:
    """Patches the running loop's getaddrinfo and sock_connect; records the sockets."""

    def __init__(self, addresses: list[tuple[str, int]]) -> None:
        self.addresses = addresses
        self.sockets: list[socket.socket] = []
        self.hang: set[int] = set()  # ports whose connect never completes
        self.gate: asyncio.Event | None = None  # connects that finish together
        self.arrived = 0
        self.max_in_flight = 0
        self._in_flight = 0

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        real_connect, real_getaddrinfo = loop.sock_connect, loop.getaddrinfo

        async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> list[Any]:
            if not str(host).endswith(".test"):  # uvloop's sock_connect resolves too
                return await real_getaddrinfo(host, port, **kwargs)
            return addrinfo(*self.addresses)

        async def sock_connect(sock: socket.socket, address: Any) -> None:
            self.sockets.append(sock)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            try:
                if address[1] in self.hang:
                    await asyncio.Event().wait()
                await real_connect(sock, address)
                if self.gate is not None:
                    self.arrived += 1
                    if self.arrived == 2:
                        self.gate.set()
                    await self.gate.wait()
            finally:
                self._in_flight -= 1

        loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]
        loop.sock_connect = sock_connect  # type: ignore[method-assign]

    def all_closed(self, but: socket.socket | None = None) -> bool:
        return all(s.fileno() == -1 for s in self.sockets if s is not but)


def test_numeric_host_makes_no_task(run: Runner) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        seen: list[int] = []
        real_connect = loop.sock_connect

        async def sock_connect(sock: socket.socket, address: Any) -> None:
            seen.append(len(asyncio.all_tasks()))
            await real_connect(sock, address)

        loop.sock_connect = sock_connect  # type: ignore[method-assign]
        with listener() as server:
            async with await ap.open_connection("127.0.0.1", server.getsockname()[1]):
                pass
        assert seen == [1]

    run(main)


def test_two_winners_in_one_iteration_leave_one_socket(run: Runner) -> None:
    async def main() -> None:
        with listener() as one, listener() as two:
            script = Script([one.getsockname()[:2], two.getsockname()[:2]])
            script.gate = asyncio.Event()
            script.install(asyncio.get_running_loop())
            conn = await ap.open_connection("dual.test", 80, happy_eyeballs_delay=0)
            async with conn:
                assert len(script.sockets) == 2
                assert script.all_closed(but=conn.socket)
                outcomes = [(a.outcome, a.error) for a in conn.attempts]
                assert sorted(outcomes, key=str) == sorted(
                    [("connected", None), ("cancelled", "another attempt connected first")],
                    key=str,
                )

    run(main)


def test_outside_cancel_of_race_is_bare_and_closes_everything(run: Runner) -> None:
    async def main() -> None:
        script = Script([("127.0.0.1", 1), ("127.0.0.1", 2), ("127.0.0.1", 3)])
        script.hang = {1, 2, 3}
        script.install(asyncio.get_running_loop())
        task = asyncio.create_task(ap.open_connection("hang.test", 80, happy_eyeballs_delay=0))
        await until(lambda: len(script.sockets) == 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):  # not an exception group
            await task
        assert script.all_closed()

    run(main)


def test_all_attempts_fail_in_start_order(run: Runner) -> None:
    async def main() -> None:
        ports = [refused_port(), refused_port()]
        script = Script([("127.0.0.1", p) for p in ports])
        script.install(asyncio.get_running_loop())
        with pytest.raises(ap.ConnectError) as info:
            await ap.open_connection("refused.test", 80)
        assert [a.address[1] for a in info.value.attempts] == ports
        assert [a.outcome for a in info.value.attempts] == ["failed", "failed"]
        assert script.all_closed()

    run(main)


def test_timeout_is_reported_but_outside_cancel_propagates(run: Runner) -> None:
    async def main() -> None:
        script = Script([("127.0.0.1", 9)])
        script.hang = {9}
        script.install(asyncio.get_running_loop())
        report = await ap.connect_check_send("hang.test:80", b"x", timeout=0.01)
        assert report.status == "timeout" and "connect" in (report.error or "")
        task = asyncio.create_task(ap.connect_check_send("hang.test:80", b"x", timeout=5))
        await until(lambda: len(script.sockets) == 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert script.all_closed()

    run(main)


def test_send_to_many_fail_fast_and_limit(run: Runner) -> None:
    async def main() -> None:
        bad = refused_port()
        script = Script([])
        script.hang = {7}
        loop = asyncio.get_running_loop()
        script.install(loop)
        seen: list[str] = []
        # The failing target starts while two hanging ones hold the other slots.
        targets = [("127.0.0.1", 7)] * 2 + [("127.0.0.1", bad)] + [("127.0.0.1", 7)] * 8
        reports = await ap.send_to_many(
            targets,
            b"x",
            max_concurrency=3,
            fail_fast=True,
            on_report=lambda r: seen.append(r.status),
        )
        assert [r.target for r in reports] == [ap.Target(*t) for t in targets]
        assert reports[2].status == "error"
        assert all(r.status == "cancelled" for i, r in enumerate(reports) if i != 2)
        assert all(r.error == FAIL_FAST_TEXT for i, r in enumerate(reports) if i != 2)
        assert sorted(seen) == sorted(r.status for r in reports)
        assert script.max_in_flight <= 3
        assert script.all_closed()

    run(main)


def test_send_to_many_outside_cancel_is_prompt_and_bare(run: Runner) -> None:
    async def main() -> None:
        script = Script([])
        script.hang = {7}
        script.install(asyncio.get_running_loop())
        task = asyncio.create_task(ap.send_to_many([("127.0.0.1", 7)] * 50, b"x"))
        await until(lambda: len(script.sockets) == 50)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert script.all_closed()

    run(main)


# --------------------------------------------------------------------------------------
# The race's TaskGroup: asyncio's own pitfalls, met head-on
# --------------------------------------------------------------------------------------


def test_a_won_race_leaves_the_cancel_count_as_it_found_it(run: Runner) -> None:
    # The winner stops the TaskGroup by raising. If the group's body had already ended,
    # Python < 3.13 would leave our task's cancel count raised (gh-116720), and a
    # deadline taken later would come out as CancelledError instead of TimeoutError.
    async def main() -> None:
        with listener() as one, listener() as two:
            script = Script([one.getsockname()[:2], two.getsockname()[:2]])
            script.gate = asyncio.Event()  # both connect together, after every launch
            script.install(asyncio.get_running_loop())
            task = asyncio.current_task()
            assert task is not None
            async with await ap.open_connection("dual.test", 80, happy_eyeballs_delay=0):
                assert task.cancelling() == 0
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0):
                    await asyncio.sleep(1)
            assert script.all_closed()

    run(main)


def test_a_staircase_timeout_is_never_a_failed_connect(run: Runner) -> None:
    # TimeoutError is an OSError: the head start running out must not be mistaken for
    # the attempt failing, nor the workflow's deadline for a network error.
    async def main() -> None:
        refused = refused_port()
        script = Script([("127.0.0.1", 9), ("127.0.0.1", refused)])
        script.hang = {9}
        script.install(asyncio.get_running_loop())
        report = await ap.connect_check_send(
            "hang.test:80", b"x", happy_eyeballs_delay=0.01, timeout=0.2
        )
        assert report.status == "timeout"
        assert [(a.address[1], a.outcome) for a in report.attempts] == [
            (9, "cancelled"),
            (refused, "failed"),
        ]
        assert report.attempts[0].error is None
        assert str(report.attempts[1].error).startswith("ConnectionRefusedError")
        assert script.all_closed()

    run(main)


def test_a_cancellation_meeting_the_winner_is_not_swallowed(run: Runner) -> None:
    # The caller is cancelled in the very step in which an attempt connects: the group
    # then raises the winner's _Won alone, and Python < 3.13 drops the cancellation.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        real_connect = loop.sock_connect
        sockets: list[socket.socket] = []
        caller: asyncio.Task[Any] | None = None

        async def sock_connect(sock: socket.socket, address: Any) -> None:
            sockets.append(sock)
            if address[1] == 9:
                await asyncio.Event().wait()  # a blackhole
            await real_connect(sock, address)
            assert caller is not None
            caller.cancel()

        with listener() as live:
            script = Script([("127.0.0.1", 9), live.getsockname()[:2]])
            script.install(loop)
            loop.sock_connect = sock_connect  # type: ignore[method-assign]
            caller = asyncio.create_task(
                ap.open_connection("dual.test", 80, happy_eyeballs_delay=0)
            )
            with pytest.raises(asyncio.CancelledError):
                await caller
            assert len(sockets) == 2
            assert all(s.fileno() == -1 for s in sockets)

    run(main)


# --------------------------------------------------------------------------------------
# fail_fast and a cancellation from outside at the same time
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("later", [0, 1, 2, 3, 4, 6, 10])
def test_outside_cancel_while_fail_fast_stops_the_group(
    run: Runner, monkeypatch: pytest.MonkeyPatch, later: int
) -> None:
    # A TaskGroup stopping itself (a child raised _FailFast) cancels its parent task
    # too. Before Python 3.13, a cancellation from outside that arrives meanwhile was
    # taken for the group's own, and lost behind the group's error: send_to_many then
    # returned its reports as if nothing had happened. The outside cancellation must
    # still come out, bare, whatever the moment it arrives, and leave nothing behind.
    # `later`: how many loop iterations after the failing report the cancel comes.
    real_workflow = ap._workflow

    async def main() -> None:
        bad = refused_port()
        script = Script([])
        script.hang = {7}
        loop = asyncio.get_running_loop()
        script.install(loop)
        delivered: list[bool] = []

        def cancel_after(n: int) -> None:
            if n == 0:
                delivered.append(caller.cancel())
            else:
                loop.call_soon(cancel_after, n - 1)

        async def workflow(*args: Any) -> Any:
            report = await real_workflow(*args)
            if report.status == "error":
                cancel_after(later)
            return report

        monkeypatch.setattr(ap, "_workflow", workflow)
        targets = [("127.0.0.1", 7)] * 5 + [("127.0.0.1", bad)] + [("127.0.0.1", 7)] * 5
        caller = asyncio.create_task(
            ap.send_to_many(targets, b"x", max_concurrency=8, fail_fast=True)
        )
        try:
            reports = await caller
        except asyncio.CancelledError:
            assert caller.cancelled()
            assert delivered == [True]
        else:
            await until(lambda: len(delivered) == 1)
            # Only when the call had finished before the cancel came.
            assert delivered == [False], "the outside cancellation was lost"
            assert [r.status for r in reports].count("cancelled") == 10
        assert script.all_closed()
        current = asyncio.current_task()
        assert current is not None and current.cancelling() == 0

    run(main)


def test_the_fan_out_leaves_the_cancel_count_as_it_found_it(run: Runner) -> None:
    # fail_fast and an early exit both stop the fan-out's TaskGroup from inside. Our
    # task's cancel count must come back to where it was, or a deadline taken later
    # would let out CancelledError instead of TimeoutError.
    async def main() -> None:
        bad = refused_port()
        script = Script([])
        script.hang = {7}
        script.install(asyncio.get_running_loop())
        task = asyncio.current_task()
        assert task is not None
        targets = [("127.0.0.1", 7)] * 3 + [("127.0.0.1", bad)] + [("127.0.0.1", 7)] * 3
        reports = await ap.send_to_many(targets, b"x", max_concurrency=4, fail_fast=True)
        assert [r.status for r in reports].count("error") == 1
        assert task.cancelling() == 0
        async with ap.stream_to_many(targets, b"x", max_concurrency=4) as stream:
            async for report in stream:
                assert report.status == "error"
                break
        assert task.cancelling() == 0
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await asyncio.sleep(1)
        assert script.all_closed()

    run(main)


def test_a_cancel_that_meets_the_winner_is_delivered_once(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The caller is cancelled from outside in the very step where the race's winner
    # connects, so the cancellation meets the winner stopping the race's TaskGroup. The
    # caller gets CancelledError once: once it has caught it, its next await runs (on
    # Python 3.13 the group re-arms the cancellation, which must not fire a second time).
    real_attempt = ap._attempt
    callers: list[asyncio.Task[Any]] = []

    async def attempt_then_cancel_the_caller(*args: Any) -> ap.Connection:
        conn = await real_attempt(*args)
        callers[0].cancel()
        return conn

    monkeypatch.setattr(ap, "_attempt", attempt_then_cancel_the_caller)

    async def main() -> None:
        with listener() as server:
            address = server.getsockname()[:2]

            async def resolve(target: object) -> list[Any]:
                return addrinfo(address, address)  # two addresses: a race

            monkeypatch.setattr(ap, "_resolve", resolve)
            after: list[str] = []

            async def caller() -> None:
                try:
                    conn = await ap.open_connection("race.test", address[1])
                except asyncio.CancelledError:
                    after.append("cancelled")
                    await asyncio.sleep(0)  # must not be cancelled a second time
                    after.append("ran on")
                    raise
                await conn.aclose()  # pragma: no cover - the cancellation must win
                after.append("connected")

            task = asyncio.create_task(caller())
            callers.append(task)
            with pytest.raises(asyncio.CancelledError):
                await task
            assert after == ["cancelled", "ran on"]

    run(main)


def test_closing_socket_closed_from_another_thread_wakes_its_waiter(run: Runner) -> None:
    # The waiting loop must hear of the close from its own thread; told from the closing
    # thread, its future would settle without waking the loop, whose epoll no longer
    # watches the closed descriptor: the task would wait until something else woke it.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        sock = tools.ClosingSocket(fileno=a.detach())
        try:
            sock.setblocking(False)
            waiting = asyncio.create_task(tools.wait_readable(loop, sock))
            await asyncio.sleep(0)  # the task is waiting now
            started = loop.time()

            def close_while_the_loop_sleeps() -> None:
                # Nothing tells another thread that a loop sleeps in its selector: give
                # it a moment to get there (a close that comes sooner only passes).
                time.sleep(0.1)
                sock.close()

            closer = threading.Thread(target=close_while_the_loop_sleeps)
            closer.start()
            try:
                with pytest.raises(tools.ClosedResourceError):
                    async with asyncio.timeout(3):
                        await waiting
            finally:
                closer.join()
            assert loop.time() - started < 1.5  # woken by the close, not by the timeout
        finally:
            sock.close()
            b.close()

    run(main)


def test_a_tls_flush_that_waited_for_a_torn_record_sends_nothing(run: Runner) -> None:
    # One task's send breaks the session (a record went out in part) while another waits
    # for the send lock: the waiting one must not send its records after the torn one.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            b.setblocking(False)
            layer = TLSLayer(loop, a, ssl.create_default_context(), "example.test")
            await layer._send_lock.acquire()  # the other task's send, under way
            layer._outgoing.write(b"a whole record")
            waiting = asyncio.create_task(layer._flush())
            await asyncio.sleep(0)  # it waits for the lock now
            layer._broken = True  # the other send tore its record ...
            layer._send_lock.release()  # ... and let go
            with pytest.raises(ssl.SSLError):
                await waiting
            with pytest.raises(BlockingIOError):
                b.recv(100)  # nothing went out

    run(main)
