"""What a demo scenario needs from each framework, and the loopback servers of one run.

A scenario is written once, against the public API both ports share (:class:`Port`);
the few framework calls it needs (the clock, a resolver override, a cancellation from
outside, counting tasks) come from a :class:`Kit`, one per framework. :class:`Net` holds
the run's :class:`LoopbackServer` threads and tells which sockets a run left open.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import stat
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from types import TracebackType
from typing import Any, Final, Literal, Protocol, TypeAlias, TypeVar

from .. import asyncio_port, trio_port
from .._reports import Attempt, SendReport
from ..testing import addrinfo
from ..testing.backends import BACKENDS, AsyncioBackend, Backend, TrioBackend
from ..testing.servers import LoopbackServer, Mode, ipv6_loopback, refusing_socket

__all__ = [
    "FD_DIRECTORIES",
    "KITS",
    "AsyncioKit",
    "Kit",
    "Net",
    "Port",
    "PortName",
    "SockAddr",
    "TrioKit",
    "fake_getaddrinfo",
    "new_threads",
    "open_fds",
    "run_on",
    "watch_connects",
]

PortName: TypeAlias = Literal["trio", "asyncio"]
SockAddr: TypeAlias = tuple[Any, ...]


class Conn(Protocol):
    """The part of a port's ``Connection`` that the scenarios use."""

    socket: Any
    bytes_sent: int
    attempts: tuple[Attempt, ...]

    async def wait_writable(self) -> None: ...
    async def send_all(self, data: bytes) -> None: ...
    async def __aenter__(self) -> Any: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Port(Protocol):
    """The part of a port's public API that the scenarios use (both modules fit it)."""

    async def connect_check_send(
        self,
        target: str,
        payload: bytes,
        *,
        timeout: float | None = ...,  # noqa: ASYNC109
        happy_eyeballs_delay: float | None = ...,
        tls: bool | ssl.SSLContext = ...,
    ) -> SendReport: ...

    async def send_to_many(
        self,
        targets: Iterable[str],
        payload: bytes,
        *,
        max_concurrency: int = ...,
        timeout: float | None = ...,  # noqa: ASYNC109
        fail_fast: bool = ...,
        on_report: Callable[[SendReport], object] | None = ...,
    ) -> list[SendReport]: ...

    async def open_connection(
        self, host: str, port: int, *, happy_eyeballs_delay: float | None = ...
    ) -> Conn: ...


# --------------------------------------------------------------------------------------
# Kits: what a scenario needs from the framework, once per framework
# --------------------------------------------------------------------------------------


class Kit:
    """The framework under a scenario: the port module and a few framework calls.

    The calls come from the framework's :class:`~trio_sockets.testing.backends.Backend`,
    which the spec tests use too.
    """

    name: PortName
    port: Port
    backend: Backend

    def now(self) -> float:
        return self.backend.now()

    def resolver(self, table: dict[str, list[SockAddr]]) -> contextlib.AbstractContextManager[None]:
        """Answer ``getaddrinfo`` for the names in ``table`` (and only those)."""

        def lookup(host: str, port: Any, family: int) -> list[Any]:
            return fake_getaddrinfo(table, host, port)

        return self.backend.use_resolver(lookup)

    async def cancel_after(self, seconds: float, work: Callable[[], Awaitable[object]]) -> bool:
        """Run ``work()``, cancel it from outside after ``seconds``; True if it was."""
        return await self.backend.cancel_after(seconds, work)

    def task_count(self) -> int:
        """Tasks alive in this run, the current one included."""
        return self.backend.task_count()

    async def stop_tasks_since(self, count: int) -> None:
        """Stop the tasks a contestant left running, once they have been counted."""
        await self.backend.stop_tasks_since(count)


def fake_getaddrinfo(
    table: dict[str, list[SockAddr]], host: object, port: object = None
) -> list[Any]:
    """``getaddrinfo``'s answer for ``host`` from ``table``; EAI_NONAME for other names.

    An IP literal is its own answer, on ``port``, as the real ``getaddrinfo`` gives it:
    uvloop sends literals through ``loop.getaddrinfo`` too, where asyncio does not.
    """
    name = host.decode("ascii") if isinstance(host, bytes) else str(host)
    if name not in table and port is not None:
        with contextlib.suppress(ValueError):  # not an IP literal: a name to look up
            ipaddress.ip_address(name.partition("%")[0])
            number = int(port.decode("ascii") if isinstance(port, bytes) else str(port))
            return addrinfo((name, number))
    if name not in table:
        raise socket.gaierror(socket.EAI_NONAME, f"{name!r} is not in the demo's resolver")
    return addrinfo(*table[name])


class TrioKit(Kit):
    name: PortName = "trio"
    port: Port = trio_port
    backend: Backend = TrioBackend()


class AsyncioKit(Kit):
    name: PortName = "asyncio"
    port: Port = asyncio_port
    backend: Backend = AsyncioBackend()

    def now(self) -> float:
        # The port's clock, not loop.time(): uvloop's is cached per loop iteration and
        # counts in milliseconds, and times from the two clocks do not mix (a fan-out
        # would seem to run more workflows at once than its limit allows).
        return time.monotonic()


KITS: Final[dict[PortName, type[Kit]]] = {"trio": TrioKit, "asyncio": AsyncioKit}

T = TypeVar("T")


def run_on(port: str, async_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``async_fn()`` to completion on ``port``'s framework, in a fresh event loop.

    ``port`` is ``"trio"``, ``"asyncio"`` or ``"asyncio+uvloop"`` (asyncio on uvloop's
    event loop, which must be installed).
    """
    if port not in BACKENDS:
        raise ValueError(f"port must be 'trio', 'asyncio' or 'asyncio+uvloop', got {port!r}")
    return BACKENDS[port]().run(async_fn)


# --------------------------------------------------------------------------------------
# Net: the loopback servers of one run, and what they own
# --------------------------------------------------------------------------------------


# Where the process lists its own file descriptors: Linux, then macOS and the BSDs.
FD_DIRECTORIES: Final = ("/proc/self/fd", "/dev/fd")
_PROBE_LIMIT: Final = 65536  # fds probed one by one where no directory lists them


def open_fds() -> set[int]:
    """The process's open file descriptors.

    Read from ``/proc/self/fd`` (Linux) or ``/dev/fd`` (macOS, the BSDs); where neither
    lists them, every number below the process's limit is probed with ``os.fstat``.
    """
    for directory in FD_DIRECTORIES:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        # The listing includes the directory's own fd, closed by now: leave it out, or
        # its number would stand for whatever opens next.
        return {int(name) for name in names if _is_open(int(name))}
    return {fd for fd in range(_fd_limit()) if _is_open(fd)}


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _fd_limit() -> int:
    try:
        import resource  # POSIX only
    except ImportError:
        return 2048
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return _PROBE_LIMIT if soft == resource.RLIM_INFINITY else min(soft, _PROBE_LIMIT)


def new_threads(before: set[threading.Thread]) -> set[threading.Thread]:
    """Threads started since ``before`` and still running."""
    return {t for t in threading.enumerate() if t not in before and t.is_alive()}


class _ConnectWatch:
    """Sees every ``socket.connect()`` in the process, through a ``sys.audit`` hook.

    The standard library raises the audit event ``socket.connect`` with the socket and
    the address before each connect, from any framework and any thread, so the demo can
    count the attempts of code that keeps no record of them. An audit hook cannot be
    removed: one is added on first use and does nothing while no watch is open.
    """

    def __init__(self) -> None:
        self.installed = False
        self.seen: list[tuple[float, Any]] | None = None
        self.sndbuf: int | None = None

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "socket.connect" or self.seen is None:
            return
        sock, address = args
        if self.sndbuf is not None:
            # A small send buffer, set before the connect like any socket option: loopback's
            # own buffers take megabytes and would hide backpressure from a short demo.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        self.seen.append((time.monotonic(), address))


_WATCH: Final = _ConnectWatch()


@contextlib.contextmanager
def _unwatched() -> Iterator[None]:
    """Leave the connects of the block out (the servers' own: a blackhole's filler)."""
    seen, _WATCH.seen = _WATCH.seen, None
    try:
        yield
    finally:
        _WATCH.seen = seen


@contextlib.contextmanager
def watch_connects(sndbuf: int | None = None) -> Iterator[list[tuple[float, Any]]]:
    """Record ``(time.monotonic(), address)`` for every connect while the block runs.

    Args:
        sndbuf: if given, every socket that connects gets this ``SO_SNDBUF`` first.
    """
    if not _WATCH.installed:
        sys.addaudithook(_WATCH)
        _WATCH.installed = True
    seen: list[tuple[float, Any]] = []
    _WATCH.seen, _WATCH.sndbuf = seen, sndbuf
    try:
        yield seen
    finally:
        _WATCH.seen, _WATCH.sndbuf = None, None


_ROLES: Final[dict[str, str]] = {
    "sink": "accepts",
    "echo": "echoes",
    "slow": "reads slowly",
    "reset": "resets",
    "blackhole": "blackholed",
}


class Net(contextlib.ExitStack):
    """The servers of one run: closed when the run ends, outside the event loop."""

    def __init__(self) -> None:
        super().__init__()
        self.server_ports: set[int] = set()
        self.own_fds: set[int] = set()  # listeners and blackhole fillers
        self.own_threads: set[threading.Thread] = set()  # the servers' threads
        self.roles: dict[tuple[str, int], str] = {}  # (host, port): "IPv6, blackholed"

    def role(self, address: Iterable[Any]) -> str | None:
        """What the server at ``address`` does, as a plot's lane says it; None if unknown."""
        host, port = list(address)[:2]
        return self.roles.get((str(host), int(port)))

    def _name(self, host: str, port: int, role: str) -> None:
        self.roles[(host, port)] = f"{'IPv6' if ':' in host else 'IPv4'}, {role}"

    def server(self, mode: Mode, host: str = "127.0.0.1", **options: Any) -> LoopbackServer:
        before, threads = open_fds(), set(threading.enumerate())
        with _unwatched():
            server = self.enter_context(LoopbackServer(mode, host, **options))
        self.own_fds |= open_fds() - before
        self.own_threads |= new_threads(threads)
        self.server_ports.add(server.port)
        self._name(server.host, server.port, _ROLES[mode])
        return server

    def closed_port(self, host: str = "127.0.0.1") -> SockAddr:
        """An address that refuses connections while the run lasts.

        The socket is bound but never listens, so a SYN to it gets a RST, and no other
        program can take the port meanwhile.
        """
        sock = self.enter_context(refusing_socket(host))
        self.own_fds.add(sock.fileno())
        address = tuple(sock.getsockname())
        self._name(host, address[1], "refuses")
        return address

    def blackhole_then_sink(self) -> tuple[list[SockAddr], LoopbackServer, bool]:
        """A name's addresses for happy eyeballs: a blackhole first, then a sink.

        The blackhole is on IPv6 where the machine has it (a broken IPv6 route, the
        case RFC 8305 is for), else on IPv4. Returns both addresses, in that order, the
        sink, and whether the blackhole is on IPv6.
        """
        v6 = ipv6_loopback()
        hole = self.server("blackhole", "::1" if v6 else "127.0.0.1")
        live = self.server("sink")
        hole_addr = (hole.host, hole.port, 0, 0) if v6 else hole.address
        return [hole_addr, live.address], live, v6

    def refusing_addresses(self) -> list[SockAddr]:
        """A name's addresses that all refuse: one on IPv6 where there is one, two on IPv4."""
        addrs = [self.closed_port("127.0.0.1"), self.closed_port("127.0.0.1")]
        if ipv6_loopback():
            addrs.insert(0, (*self.closed_port("::1")[:2], 0, 0))
        return addrs

    def left_behind(self, before: set[int]) -> int:
        """Sockets opened since ``before`` and still open, the servers' own excepted.

        Only sockets count: a server thread's selector may open its epoll fd late. The
        servers' accepted sockets close on their own time, and are told apart by their
        local port.
        """
        left = 0
        for fd in open_fds() - before - self.own_fds:
            try:
                if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                    continue
                sock = socket.socket(fileno=fd)
            except OSError:
                continue  # closed meanwhile
            try:
                if sock.family not in (socket.AF_INET, socket.AF_INET6):
                    left += 1  # the ports only open TCP sockets, but count it anyway
                elif sock.getsockname()[1] not in self.server_ports:
                    left += 1
            except OSError:
                left += 1
            finally:
                sock.detach()
        return left
