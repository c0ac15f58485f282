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

import abc
import asyncio
import contextlib
import dataclasses
import gc
import ipaddress
import os
import socket
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, Protocol, TypeAlias, TypeVar

import looptime
import pytest
import trio
import trio.testing

from trio_sockets import asyncio_port, trio_port
from trio_sockets.testing import (
    AsyncioFakeNetwork,
    FakeNetwork,
    LoopbackServer,
    addrinfo,
    refusing_socket,
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
# Framework-neutral helpers
# --------------------------------------------------------------------------------------


class Scope(Protocol):
    """What ``move_on_after`` yields on both ports: Trio's scope or our asyncio twin."""

    @property
    def cancelled_caught(self) -> bool: ...


class EventLike(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> Any: ...


@dataclasses.dataclass
class Outcome:
    """How a call run by :meth:`Port.run_and_cancel` or :meth:`Port.run_all` ended.

    Attributes:
        value: what it returned, if it returned.
        error: exactly what it raised (never unwrapped or wrapped by the helper).
        cancelled: true when the helper cancelled it from outside.
        exit_s: seconds from that cancellation until the call had finished.
    """

    value: Any = None
    error: BaseException | None = None
    cancelled: bool = False
    exit_s: float | None = None


class Port(abc.ABC):
    """One port under test, with framework-neutral helpers for the spec tests."""

    name: str
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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            result = self._run(fn, *args, virtual=virtual)
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

    @abc.abstractmethod
    def _run(self, fn: Callable[..., Awaitable[T]], *args: object, virtual: bool) -> T: ...

    @abc.abstractmethod
    def now(self) -> float:
        """The framework's clock: ``trio.current_time()``, ``loop.time()``."""

    @abc.abstractmethod
    async def sleep(self, seconds: float) -> None: ...

    @abc.abstractmethod
    def move_on_after(self, seconds: float) -> contextlib.AbstractAsyncContextManager[Scope]:
        """``async with port.move_on_after(s) as scope:``; ``scope.cancelled_caught``."""

    @contextlib.asynccontextmanager
    async def fail_after(self, seconds: float) -> AsyncIterator[None]:
        """Fail the test with ``TimeoutError`` if the body takes longer than ``seconds``."""
        async with self.move_on_after(seconds) as scope:
            yield
        if scope.cancelled_caught:
            raise TimeoutError(f"took more than {seconds} s")

    @abc.abstractmethod
    def Event(self) -> EventLike: ...  # named like the classes it makes

    @abc.abstractmethod
    async def to_thread(self, fn: Callable[..., T], *args: object) -> T:
        """Run a blocking call (a server's ``wait_bytes``) in a thread."""

    @abc.abstractmethod
    async def run_all(self, *fns: Callable[[], Awaitable[object]]) -> list[Outcome]:
        """Run the calls side by side, in order of start; each outcome is kept apart."""

    @abc.abstractmethod
    async def run_and_cancel(
        self, fn: Callable[[], Awaitable[object]], when: Callable[[], Awaitable[object]]
    ) -> Outcome:
        """Run ``fn()`` and cancel it from outside (its caller's scope) once ``when()`` returns.

        If ``fn()`` finishes first, it is not cancelled. ``Outcome.error`` is exactly what
        ``fn()`` raised, as its caller would see it.
        """

    @abc.abstractmethod
    def install_resolver(self, resolutions: Resolutions) -> None:
        """Make host names resolve to the given ``(ip, port)`` pairs, in that order.

        Goes through the framework's own hook (Trio's custom hostname resolver, the
        running loop's ``getaddrinfo``); call it inside :meth:`run`. Names not in the
        mapping fail to resolve, so that no test ever asks a real resolver.
        """


def _is_ip_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return False
    return True


def _lookup(resolutions: Resolutions, host: str, family: int) -> list[tuple[Any, ...]]:
    if host not in resolutions:
        raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known: {host!r}")
    return list(addrinfo(*resolutions[host], family=family))


class _TrioResolver(trio.abc.HostnameResolver):
    def __init__(self, resolutions: Resolutions) -> None:
        self.resolutions = resolutions

    async def getaddrinfo(
        self,
        host: bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        await trio.lowlevel.checkpoint()
        name = host.decode("ascii") if isinstance(host, bytes) else str(host)
        return _lookup(self.resolutions, name, family)

    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int
    ) -> tuple[str, str]:
        raise NotImplementedError


class TrioPort(Port):
    name = "trio"
    module = trio_port
    Cancelled = trio.Cancelled
    BusyError = trio.BusyResourceError
    ClosedError = trio.ClosedResourceError
    socket_type = trio.socket.SocketType
    FakeNetwork = FakeNetwork

    def _run(self, fn: Callable[..., Awaitable[T]], *args: object, virtual: bool) -> T:
        clock = trio.testing.MockClock(autojump_threshold=0) if virtual else None
        return trio.run(fn, *args, clock=clock)

    def now(self) -> float:
        return trio.current_time()

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    @contextlib.asynccontextmanager
    async def move_on_after(self, seconds: float) -> AsyncIterator[Scope]:
        with trio.move_on_after(seconds) as scope:
            yield scope

    def Event(self) -> EventLike:
        return trio.Event()

    async def to_thread(self, fn: Callable[..., T], *args: object) -> T:
        return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)

    async def run_all(self, *fns: Callable[[], Awaitable[object]]) -> list[Outcome]:
        outcomes = [Outcome() for _ in fns]

        async def keep(fn: Callable[[], Awaitable[object]], outcome: Outcome) -> None:
            try:
                outcome.value = await fn()
            except Exception as exc:
                outcome.error = exc

        async with trio.open_nursery() as nursery:
            for fn, outcome in zip(fns, outcomes, strict=True):
                nursery.start_soon(keep, fn, outcome)
                await trio.lowlevel.checkpoint()  # start them in order
        return outcomes

    async def run_and_cancel(
        self, fn: Callable[[], Awaitable[object]], when: Callable[[], Awaitable[object]]
    ) -> Outcome:
        outcome = Outcome()
        cancelled_at = 0.0

        async def trigger(scope: trio.CancelScope) -> None:
            nonlocal cancelled_at
            await when()
            outcome.cancelled, cancelled_at = True, trio.current_time()
            scope.cancel()

        # The caller's scope: fn() runs in this task, as a caller would run it.
        with trio.CancelScope() as outside:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trigger, outside)
                try:
                    outcome.value = await fn()
                except BaseException as exc:
                    outcome.error = exc
                    raise
                finally:
                    if outcome.cancelled:
                        outcome.exit_s = trio.current_time() - cancelled_at
                nursery.cancel_scope.cancel()
        return outcome

    def install_resolver(self, resolutions: Resolutions) -> None:
        trio.socket.set_custom_hostname_resolver(_TrioResolver(resolutions))


class _MovedOn:
    """What ``AsyncioPort.move_on_after`` yields: whether its deadline cut the body short."""

    cancelled_caught = False


class AsyncioPort(Port):
    name = "asyncio"
    module = asyncio_port
    Cancelled = asyncio.CancelledError
    BusyError = asyncio_port.BusyError
    ClosedError = asyncio_port.ClosedError
    socket_type = socket.socket
    FakeNetwork = AsyncioFakeNetwork

    def __init__(self, use_uvloop: bool = False) -> None:
        self.use_uvloop = use_uvloop
        if use_uvloop:
            self.name = "uvloop"

    def _run(self, fn: Callable[..., Awaitable[T]], *args: object, virtual: bool) -> T:
        factory: Callable[[], asyncio.AbstractEventLoop] | None = None
        if self.use_uvloop:
            if virtual:
                # looptime patches the pure-Python loop's selector and time(); uvloop's
                # timers live in libuv, where it cannot reach them.
                pytest.skip("no virtual clock for uvloop (looptime patches asyncio's loop)")
            factory = uvloop.new_event_loop
        elif virtual:
            factory = _looptime_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(self._checked(fn, *args))

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

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    @contextlib.asynccontextmanager
    async def move_on_after(self, seconds: float) -> AsyncIterator[Scope]:
        # asyncio's deadline raises TimeoutError; the spec tests want Trio's "move on".
        scope = _MovedOn()
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                yield scope
        except TimeoutError:
            if not deadline.expired():
                raise
            scope.cancelled_caught = True

    def Event(self) -> EventLike:
        return asyncio.Event()

    async def to_thread(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.to_thread(fn, *args)

    async def run_all(self, *fns: Callable[[], Awaitable[object]]) -> list[Outcome]:
        outcomes = [Outcome() for _ in fns]

        async def keep(fn: Callable[[], Awaitable[object]], outcome: Outcome) -> None:
            try:
                outcome.value = await fn()
            except Exception as exc:
                outcome.error = exc

        async with asyncio.TaskGroup() as group:
            for fn, outcome in zip(fns, outcomes, strict=True):
                group.create_task(keep(fn, outcome))
                await asyncio.sleep(0)  # start them in order
        return outcomes

    async def run_and_cancel(
        self, fn: Callable[[], Awaitable[object]], when: Callable[[], Awaitable[object]]
    ) -> Outcome:
        outcome = Outcome()
        loop = asyncio.get_running_loop()
        cancelled_at = 0.0

        async def call() -> None:
            try:
                outcome.value = await fn()
            except BaseException as exc:
                outcome.error = exc
                raise
            finally:
                if outcome.cancelled:
                    outcome.exit_s = loop.time() - cancelled_at

        # The caller is a task of its own: Task.cancel() is how asyncio cancels a caller.
        caller = asyncio.create_task(call())

        async def wait() -> None:
            await when()

        trigger = asyncio.create_task(wait())
        await asyncio.wait({caller, trigger}, return_when=asyncio.FIRST_COMPLETED)
        if not caller.done():
            outcome.cancelled, cancelled_at = True, loop.time()
            caller.cancel()
        trigger.cancel()
        await asyncio.wait({caller, trigger})
        if not caller.cancelled():
            caller.exception()  # retrieved: it is in outcome.error
        if not trigger.cancelled() and trigger.exception() is not None:
            raise trigger.exception()  # type: ignore[misc]
        return outcome

    def install_resolver(self, resolutions: Resolutions) -> None:
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo

        async def getaddrinfo(
            host: str | bytes | None,
            port: str | int | None,
            *,
            family: int = 0,
            type: int = 0,
            proto: int = 0,
            flags: int = 0,
        ) -> list[Any]:
            name = host.decode("ascii") if isinstance(host, bytes) else str(host)
            if name not in resolutions and _is_ip_literal(name):
                # uvloop's sock_connect() resolves its (numeric) address through here.
                return await real(host, port, family=family, type=type, proto=proto, flags=flags)
            await asyncio.sleep(0)
            return _lookup(resolutions, name, family)

        # An instance attribute shadows the method, on this loop only (uvloop's too).
        setattr(loop, "getaddrinfo", getaddrinfo)  # noqa: B010


def _looptime_loop() -> asyncio.AbstractEventLoop:
    return looptime.new_event_loop(start=0)


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------

PORTS: dict[str, Callable[[], Port]] = {
    "trio": TrioPort,
    "asyncio": AsyncioPort,
    "uvloop": lambda: AsyncioPort(use_uvloop=True),
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
