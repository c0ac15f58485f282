"""Spec: ``open_connection`` when things break, run on every port.

Nothing escapes and nothing leaks: a socket that connects and then fails is a failed
attempt, a name the resolver chokes on is a ``ConnectError``, a bug or Ctrl+C inside an
attempt comes out bare (never in an exception group), a ``close()`` that fails never
hides the real error, and every port words an error the same way.

Faults are made on real loopback sockets through each framework's own seams: Trio's
socket factory hook (``trio.socket.set_custom_socket_factory``), and the running loop's
``sock_connect`` and ``getaddrinfo`` on asyncio. Every test also runs the suite's leak
checks (no file descriptor, task or timer left; see conftest.py).
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio
from conftest import Port, refusing_port

from trio_sockets.testing import LoopbackServer, addrinfo

pytestmark = pytest.mark.timeout(10)

ENOTCONN_TEXT = f"OSError: [Errno {errno.ENOTCONN}] {os.strerror(errno.ENOTCONN)}"
REFUSED_TEXT = f"ConnectionRefusedError: [Errno {errno.ECONNREFUSED}] Connection refused"

Hook = Callable[[Any], None]

# Trio's real socket class, to subclass: the factory hook must return Trio sockets.
with socket.socket() as _probe:
    _TrioSocket: Any = type(trio.socket.from_stdlib_socket(_probe))


class Faults:
    """Faults injected into a port's connect, through the framework's own hooks.

    Attributes:
        after_connect: called with the socket right after its connect() succeeded.
        close_raises: ``close()`` of every socket the port makes closes it, then raises.
        sockets: every socket the port connected (or tried to), in order.
    """

    def __init__(self, after_connect: Hook | None = None, *, close_raises: bool = False) -> None:
        self.after_connect = after_connect
        self.close_raises = close_raises
        self.sockets: list[Any] = []

    def install(self, port: Port, monkeypatch: pytest.MonkeyPatch) -> None:
        """Install inside ``port.run``: the hooks are per Trio run or per event loop."""
        if port.name == "trio":
            trio.socket.set_custom_socket_factory(_TrioFactory(self))
            return
        loop = asyncio.get_running_loop()
        real_connect = loop.sock_connect

        async def sock_connect(sock: socket.socket, address: Any) -> None:
            self.sockets.append(sock)
            await real_connect(sock, address)
            if self.after_connect is not None:
                self.after_connect(sock)

        setattr(loop, "sock_connect", sock_connect)  # noqa: B010 (this loop only)
        if self.close_raises:
            real_close = socket.socket.close
            ours = self.sockets

            def close(sock: socket.socket) -> None:
                real_close(sock)
                if any(sock is s for s in ours):  # the servers' sockets close as usual
                    raise OSError(errno.EIO, "close failed")

            monkeypatch.setattr(socket.socket, "close", close)


class _TrioFactory(trio.abc.SocketFactory):
    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def socket(
        self, family: Any = socket.AF_INET, type: Any = socket.SOCK_STREAM, proto: int = 0
    ) -> Any:
        faults = self.faults

        class Faulty(_TrioSocket):  # type: ignore[misc]
            async def connect(self, address: Any) -> None:
                faults.sockets.append(self)
                await super().connect(address)
                if faults.after_connect is not None:
                    faults.after_connect(self)

            def close(self) -> None:
                super().close()
                if faults.close_raises:
                    raise OSError(errno.EIO, "close failed")

        return Faulty(socket.socket(family, type, proto))


@pytest.fixture
def resetting() -> Iterator[tuple[socket.socket, Hook]]:
    """A listener, and a hook that makes it reset each connection at once.

    The hook accepts the connection the client has just made and closes it with
    SO_LINGER 0, so that the kernel answers with RST before the client goes on:
    getpeername() then fails with ENOTCONN, as after a peer that resets at once.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5.0)

        def reset(sock: Any) -> None:
            if tuple(sock.getpeername()[:2]) != listener.getsockname()[:2]:
                return
            accepted, _ = listener.accept()
            accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            accepted.close()

        yield listener, reset


# --------------------------------------------------------------------------------------
# A socket that connected and then failed before the hand-over
# --------------------------------------------------------------------------------------


def test_a_peer_that_resets_at_once_fails_the_attempt_and_the_race_goes_on(
    port: Port, monkeypatch: pytest.MonkeyPatch, resetting: tuple[socket.socket, Hook]
) -> None:
    listener, reset = resetting
    with LoopbackServer("sink") as live:

        async def main() -> None:
            faults = Faults(reset)
            faults.install(port, monkeypatch)
            port.install_resolver({"reset.test": [listener.getsockname()[:2], live.address]})
            # A long delay: only the failure can start the second attempt this soon.
            async with await port.module.open_connection(
                "reset.test", 80, happy_eyeballs_delay=30
            ) as conn:
                assert tuple(conn.remote_address[:2]) == live.address
                first, second = conn.attempts
                assert (first.outcome, first.error) == ("failed", ENOTCONN_TEXT)
                assert tuple(first.address[:2]) == listener.getsockname()[:2]
                assert (second.outcome, second.error) == ("connected", None)
            assert all(s.fileno() == -1 for s in faults.sockets)

        port.run(main)


def test_a_peer_that_resets_at_once_is_a_connect_error_for_one_address(
    port: Port, monkeypatch: pytest.MonkeyPatch, resetting: tuple[socket.socket, Hook]
) -> None:
    listener, reset = resetting

    async def main() -> None:
        faults = Faults(reset)
        faults.install(port, monkeypatch)
        with pytest.raises(port.module.ConnectError) as info:
            await port.module.open_connection(*listener.getsockname()[:2])
        assert info.value.errno == errno.ENOTCONN
        [attempt] = info.value.attempts
        assert (attempt.outcome, attempt.error) == ("failed", ENOTCONN_TEXT)
        # The workflow reports it, the same way.
        report = await port.module.connect_check_send(listener.getsockname()[:2], b"x")
        assert (report.status, report.error, report.bytes_sent) == ("error", ENOTCONN_TEXT, 0)
        assert all(s.fileno() == -1 for s in faults.sockets)

    port.run(main)


# --------------------------------------------------------------------------------------
# Names the resolver chokes on
# --------------------------------------------------------------------------------------


def install_failing_resolver(port: Port, error: BaseException) -> None:
    """Every name fails to resolve with ``error`` (inside ``port.run``)."""
    if port.name == "trio":

        class Failing(trio.abc.HostnameResolver):
            async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
                await trio.lowlevel.checkpoint()
                raise error

            async def getnameinfo(self, *args: Any) -> Any:
                raise NotImplementedError

        trio.socket.set_custom_hostname_resolver(Failing())
        return

    async def getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        raise error

    setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)  # noqa: B010


@pytest.mark.parametrize(
    "error",
    [
        UnicodeError("label too long"),
        ValueError("embedded null byte"),
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        OSError(errno.EMFILE, "Too many open files"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_whatever_the_resolver_raises_is_a_connect_error(port: Port, error: BaseException) -> None:
    async def main() -> None:
        install_failing_resolver(port, error)
        with pytest.raises(port.module.ConnectError, match=r"could not resolve 'x\.test'") as info:
            await port.module.open_connection("x.test", 80)
        assert info.value.errors == (error,)
        report = await port.module.connect_check_send("x.test:80", b"x")
        assert report.status == "error"
        assert report.error is not None and type(error).__name__ in report.error

    port.run(main)


def test_a_name_idna_refuses_is_a_report_and_the_fan_out_goes_on(port: Port) -> None:
    # Trio encodes names with IDNA 2008, which refuses a snowman (idna.IDNAError, a
    # UnicodeError); asyncio's IDNA 2003 encodes it, and the fake resolver knows no such
    # name. Either way: that target's error report, and the others are sent.
    with LoopbackServer("sink") as live:

        async def main() -> None:
            port.install_resolver({"live.test": [live.address]})
            with pytest.raises(port.module.ConnectError, match="could not resolve"):
                await port.module.open_connection("☃.net", 80)
            reports = await port.module.send_to_many(
                ["live.test:80", "☃.net:80", live.target], b"abc"
            )
            assert [r.status for r in reports] == ["ok", "error", "ok"]
            assert reports[1].error and reports[1].attempts == ()

        port.run(main)
        assert live.wait_bytes(6)


# --------------------------------------------------------------------------------------
# A bug or Ctrl+C inside an attempt comes out bare
# --------------------------------------------------------------------------------------


class Bug(Exception):
    pass


@pytest.mark.parametrize("error", [Bug, KeyboardInterrupt])
@pytest.mark.parametrize("addresses", [1, 3])
def test_an_exception_inside_an_attempt_comes_out_bare(
    port: Port, monkeypatch: pytest.MonkeyPatch, error: type[BaseException], addresses: int
) -> None:
    with (
        LoopbackServer("blackhole", "::1") as hole,
        LoopbackServer("sink") as live,
        refusing_port() as refused,
    ):
        # All at once (no delay): the blackholed attempt is pending and the refused one
        # may have failed when the live one raises.
        resolved = [hole.address, live.address, ("127.0.0.1", refused)]
        if addresses == 1:
            resolved = [live.address]
        caught: list[BaseException] = []
        faults = Faults()

        def explode(sock: Any) -> None:
            if tuple(sock.getpeername()[:2]) == live.address:
                raise error("inside an attempt")

        async def main() -> None:
            faults.after_connect = explode
            faults.install(port, monkeypatch)
            port.install_resolver({"bug.test": resolved})
            try:
                await port.module.open_connection("bug.test", 80, happy_eyeballs_delay=0)
            except BaseException as exc:
                caught.append(exc)
                raise

        with pytest.raises(error):
            port.run(main)
        assert not any(isinstance(exc, BaseExceptionGroup) for exc in caught)
        if port.name == "trio" or error is Bug:
            assert [type(exc) for exc in caught] == [error]  # bare, not a group
        # (On asyncio, Ctrl+C leaves the event loop at once, straight from the task that
        # raised it; asyncio.run then cancels what is left, our caller included.)
        assert len(faults.sockets) == addresses
        assert all(s.fileno() == -1 for s in faults.sockets)


# --------------------------------------------------------------------------------------
# A close() that fails never hides the real error
# --------------------------------------------------------------------------------------


def test_a_failing_close_keeps_the_connect_error_and_the_attempt(
    port: Port, monkeypatch: pytest.MonkeyPatch
) -> None:
    with refusing_port() as v4, refusing_port("::1") as v6:

        async def main() -> None:
            Faults(close_raises=True).install(port, monkeypatch)
            port.install_resolver({"down.test": [("::1", v6), ("127.0.0.1", v4)]})
            for host in ("down.test", "127.0.0.1"):
                with pytest.raises(port.module.ConnectError) as info:
                    await port.module.open_connection(host, v4)
                assert info.value.errno == errno.ECONNREFUSED
                for attempt in info.value.attempts:
                    assert attempt.outcome == "failed"
                    assert attempt.error == REFUSED_TEXT
                for exc in info.value.errors:
                    assert isinstance(exc, ConnectionRefusedError)
                    assert any("closing the socket failed too" in n for n in exc.__notes__)

        port.run(main)


@pytest.mark.parametrize("addresses", [1, 2])
def test_a_failing_close_never_swallows_a_cancellation(
    port: Port, monkeypatch: pytest.MonkeyPatch, addresses: int
) -> None:
    with LoopbackServer("blackhole", "::1") as v6, LoopbackServer("blackhole") as v4:
        faults = Faults(close_raises=True)

        async def main() -> None:
            faults.install(port, monkeypatch)
            port.install_resolver({"dark.test": [v6.address, v4.address][:addresses]})
            outcome = await port.run_and_cancel(
                lambda: port.module.open_connection("dark.test", 80, happy_eyeballs_delay=0),
                lambda: port.sleep(0.1),
            )
            assert outcome.cancelled
            assert type(outcome.error) is port.Cancelled

        port.run(main)
        assert len(faults.sockets) == addresses
        assert all(s.fileno() == -1 for s in faults.sockets)


# --------------------------------------------------------------------------------------
# One wording on every port; no poll() needed
# --------------------------------------------------------------------------------------


def test_a_refused_connect_reads_the_same_on_every_port(port: Port) -> None:
    with refusing_port() as refused:

        async def main() -> None:
            report = await port.module.connect_check_send(("127.0.0.1", refused), b"x")
            assert report.error == REFUSED_TEXT
            assert [a.error for a in report.attempts] == [REFUSED_TEXT]
            with pytest.raises(port.module.ConnectError) as info:
                await port.module.open_connection("127.0.0.1", refused)
            assert f"127.0.0.1:{refused}: {REFUSED_TEXT}" in str(info.value)

        port.run(main)


def test_the_check_works_without_poll(port: Port, monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows has no select.poll: the check must still work there.
    monkeypatch.delattr(select, "poll")
    with LoopbackServer("sink") as server:

        async def main() -> None:
            report = await port.module.connect_check_send(server.target, b"hello")
            assert (report.status, report.bytes_sent) == ("ok", 5)
            async with await port.module.open_connection(*server.address) as conn:
                await conn.wait_writable()

        port.run(main)
        assert server.wait_bytes(5)


# --------------------------------------------------------------------------------------
# Ctrl+C during a Trio race: the command exits 130
# --------------------------------------------------------------------------------------


def test_ctrl_c_during_a_trio_race_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A real SIGINT, raised as the race starts its second attempt (both blackholed):
    # Trio raises KeyboardInterrupt in that task and cancels the other, and the race's
    # nursery must let it out bare, or the command shows a group traceback and exits 1.
    import signal

    from trio_sockets.cli import main

    with LoopbackServer("blackhole", "::1") as v6, LoopbackServer("blackhole") as v4:
        made: list[Any] = []

        async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            await trio.lowlevel.checkpoint()
            return addrinfo(v6.address, v4.address)

        class Interrupting(_TrioSocket):  # type: ignore[misc]
            async def connect(self, address: Any) -> None:
                if len(made) == 2:
                    signal.raise_signal(signal.SIGINT)  # Trio raises KeyboardInterrupt here
                await super().connect(address)

        def interrupting_socket(family: Any, type: Any, proto: Any) -> Any:
            made.append(Interrupting(socket.socket(family, type, proto)))
            return made[-1]

        monkeypatch.setattr(trio.socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(trio.socket, "socket", interrupting_socket)
        status = main(["send", "--backend", "trio", "--data", "x", "race.test:80"])
        assert status == 130
        assert "interrupted" in capsys.readouterr().err
        assert len(made) == 2
        assert all(s.fileno() == -1 for s in made)
