"""Fixtures for the spec tests: one behaviour, written once, run on every port.

Like anyio's test suite, the ``port`` fixture is parametrized over the backends, so a
spec test ``test_x(port)`` runs as ``test_x[trio]``, ``test_x[asyncio]`` and
``test_x[uvloop]`` (asyncio on uvloop, when uvloop is installed). The test functions
are synchronous: they start their loopback servers, then hand an async function to
``port.run``, which runs it with ``trio.run`` or ``asyncio.run`` (pytest-trio's
``trio_mode`` leaves synchronous tests alone, and pytest-asyncio is not used).

A :class:`Port` gives the module under test and the few framework-neutral helpers the
spec needs: a sleep, deadlines, an event, a thread hop to wait on a server, running
tasks side by side, cancelling a call from outside, a fake resolver installed
through each framework's own hook, the framework's scripted fake network
(``port.FakeNetwork``) and a virtual clock (``port.run(main, virtual=True)``: Trio's
``MockClock``, a ``looptime`` loop on asyncio; uvloop has none, so those runs skip).

Every spec test is also checked for leaks: the process's open file descriptors must
come back to where they were (every socket closed), no socket may be left for the
garbage collector to close, and an asyncio run must leave no task and no live timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import ipaddress
import os
import socket
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, TypeAlias, TypeVar

import pytest
import trio

from trio_sockets import asyncio_port, trio_port
from trio_sockets.testing import (
    AsyncioFakeNetwork,
    FakeNetwork,
    LoopbackServer,
    addrinfo,
    refusing_socket,
)
from trio_sockets.testing.backends import (
    AsyncioBackend,
    Backend,
    TrioBackend,
    UvloopBackend,
)

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is optional (and absent on Windows)
    uvloop = None  # type: ignore[assignment]

T = TypeVar("T")
# (ip literal, port): where a fake host name points.
HostPort: TypeAlias = tuple[str, int]
Resolutions: TypeAlias = Mapping[str, Sequence[HostPort]]


# --------------------------------------------------------------------------------------
# Framework-neutral helpers: trio_sockets.testing.backends, plus what the spec tests check
# --------------------------------------------------------------------------------------


class Port(Backend):
    """One port under test, with framework-neutral helpers for the spec tests."""

    module: ModuleType
    Cancelled: type[BaseException]
    BusyError: type[Exception]
    ClosedError: type[Exception]
    socket_type: type[Any]
    # The scripted fake network of this framework (trio_sockets.testing).
    FakeNetwork: type[FakeNetwork] | type[AsyncioFakeNetwork]

    def __repr__(self) -> str:
        return f"<Port {self.name}>"

    def run(self, fn: Callable[..., Awaitable[T]], *args: object, virtual: bool = False) -> T:
        """Run ``fn(*args)`` to completion on a fresh loop; no socket may be left to the GC.

        With ``virtual``, the clock is virtual and starts at 0: it jumps to the next
        timer whenever every task is blocked (Trio's ``MockClock(autojump_threshold=0)``,
        a ``looptime`` loop on asyncio).
        """
        if virtual and not self.has_virtual_clock:
            pytest.skip("no virtual clock for uvloop (looptime patches asyncio's loop)")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            result: T = super().run(self._checked, fn, *args, virtual=virtual)
        unclosed = []
        for warning in caught:
            if issubclass(warning.category, ResourceWarning):
                unclosed.append(str(warning.message))
            else:  # not ours to judge: hand it back to pytest's own filters
                warnings.warn_explicit(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
        assert not unclosed, f"left for the garbage collector to close: {unclosed}"
        return result

    async def _checked(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        """``fn(*args)``, then whatever the framework may have left behind is checked."""
        return await fn(*args)

    def install_resolver(self, resolutions: Resolutions) -> None:
        """Make host names resolve to the given ``(ip, port)`` pairs, in that order.

        Goes through the framework's own hook (Trio's custom hostname resolver, the
        running loop's ``getaddrinfo``); call it inside :meth:`run`. Names not in the
        mapping fail to resolve, so that no test ever asks a real resolver.
        """
        self.set_resolver(functools.partial(_lookup, resolutions))


def _is_ip_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return False
    return True


def _lookup(
    resolutions: Resolutions, host: str, port: object, family: int
) -> list[tuple[Any, ...]] | None:
    if host not in resolutions and _is_ip_literal(host):
        return None  # uvloop's sock_connect() resolves its (numeric) address too
    if host not in resolutions:
        raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known: {host!r}")
    return list(addrinfo(*resolutions[host], family=family))


class TrioPort(Port, TrioBackend):
    module = trio_port
    Cancelled = trio.Cancelled
    BusyError = trio.BusyResourceError
    ClosedError = trio.ClosedResourceError
    socket_type = trio.socket.SocketType
    FakeNetwork = FakeNetwork


class AsyncioPort(Port, AsyncioBackend):
    module = asyncio_port
    Cancelled = asyncio.CancelledError
    BusyError = asyncio_port.BusyError
    ClosedError = asyncio_port.ClosedError
    socket_type = socket.socket
    FakeNetwork = AsyncioFakeNetwork

    async def _checked(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        result = await fn(*args)
        # asyncio.Runner would quietly cancel what is left; a port must leave nothing.
        loop = asyncio.get_running_loop()
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        assert not tasks, f"tasks left running: {tasks}"
        scheduled = getattr(loop, "_scheduled", [])  # uvloop keeps its timers in libuv
        timers = [handle for handle in scheduled if not handle.cancelled()]
        assert not timers, f"timers left scheduled: {timers}"
        return result


class UvloopPort(AsyncioPort, UvloopBackend):
    name = "uvloop"


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------

PORTS: dict[str, Callable[[], Port]] = {
    "trio": TrioPort,
    "asyncio": AsyncioPort,
    "uvloop": UvloopPort,
}


@pytest.fixture(
    params=[
        "trio",
        "asyncio",
        pytest.param(
            "uvloop", marks=pytest.mark.skipif(uvloop is None, reason="uvloop is not installed")
        ),
    ]
)
def port(request: pytest.FixtureRequest) -> Port:
    """The port under test: ``test_x[trio]``, ``test_x[asyncio]``, ``test_x[uvloop]``."""
    name: str = request.param
    return PORTS[name]()


@pytest.fixture(scope="session")
def _warm_ports() -> None:
    # Whatever a framework opens once per process (and keeps) is opened here, before
    # any file descriptor count is taken.
    async def nothing() -> None:
        pass

    for name in PORTS:
        if name != "uvloop" or uvloop is not None:
            PORTS[name]().run(nothing)


def _fds() -> dict[str, str]:
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the directory's own fd is gone already
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return found


@pytest.fixture(autouse=True)
def _no_leaked_fds(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every spec test ends with the file descriptors it started with."""
    if "port" not in request.fixturenames or not os.path.isdir("/proc/self/fd"):
        yield
        return
    request.getfixturevalue("_warm_ports")
    before = _fds()
    # No automatic collection during the test: a socket kept alive only by a reference
    # cycle (a frame in a traceback, say) stays open until the count below, instead of
    # being closed, unseen, whenever the collector happens to run.
    gc.disable()
    try:
        yield
        leaked = {fd: what for fd, what in _fds().items() if fd not in before}
    finally:
        gc.enable()
    if leaked:
        gc.collect()
        still = {fd: what for fd, what in _fds().items() if fd not in before}
        pytest.fail(
            f"file descriptors left open: {leaked}"
            + (f" ({len(still)} even after gc.collect())" if still else " (closed only by gc)")
        )


# --------------------------------------------------------------------------------------
# Servers: addresses that refuse, and what a server has seen
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def refusing_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port on ``host`` that refuses connections while the block runs.

    The socket is bound but never listens, so a SYN to it is answered with RST
    (``ConnectionRefusedError``), and no other program can take the port meanwhile.
    """
    with refusing_socket(host) as sock:
        yield sock.getsockname()[1]


def connections_before_one_more(port: Port, server: LoopbackServer) -> int:
    """How many connections ``server`` had seen before this call makes one more.

    Proves a negative ("nothing reached the server") without sleeping: the probe sends
    one byte, and the server has accepted every earlier connection by the time it reads
    the probe's byte (its accept queue is first in, first out).
    """

    async def probe() -> None:
        report = await port.module.connect_check_send(server.target, b"x")
        assert report.ok, report

    before = server.bytes_received
    port.run(probe)
    assert server.wait_bytes(before + 1)
    return server.connections - 1
