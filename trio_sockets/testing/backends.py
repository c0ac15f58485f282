"""One object per framework, for code that is written once and runs on every port.

A test (or a demo) that checks the same behaviour on Trio and on asyncio needs a few
framework calls besides the port itself: run a coroutine function on a fresh loop, read
the clock, sleep, put a deadline on a block, wait for an event, hop to a thread, run
calls side by side, cancel a call from outside, answer ``getaddrinfo`` from a table,
count the tasks alive. A :class:`Backend` gives them, one class per framework, each
written the way that framework's own code is written (Trio: nurseries and cancel
scopes; asyncio: ``asyncio.timeout``, ``TaskGroup`` and ``Task.cancel()``), behind the
same names (``docs/testing.md`` has an example).

:class:`TrioBackend` runs ``trio.run``; :class:`AsyncioBackend` runs an
:class:`asyncio.Runner`; :class:`UvloopBackend` is asyncio on uvloop's event loop (an
optional extra). ``run(fn, virtual=True)`` runs on a virtual clock that jumps to the
next timer whenever every task is blocked: :class:`trio.testing.MockClock` on Trio, a
``looptime`` event loop on asyncio (``pip install looptime``); uvloop has none.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import ModuleType
from typing import Any, ClassVar, Final, Protocol, TypeAlias, TypeVar

import trio
import trio.testing

from .. import asyncio_port, trio_port

__all__ = [
    "BACKENDS",
    "AsyncioBackend",
    "Backend",
    "EventLike",
    "Lookup",
    "Outcome",
    "Scope",
    "TrioBackend",
    "UvloopBackend",
    "backend",
]

T = TypeVar("T")

#: ``lookup(host, port, family)``: what ``getaddrinfo`` answers for ``host``, or None to
#: ask the framework's own resolver. Raise :class:`socket.gaierror` for an unknown name.
Lookup: TypeAlias = Callable[[str, Any, int], "list[Any] | None"]


class Scope(Protocol):
    """What :meth:`Backend.move_on_after` yields: whether its deadline cut the body short."""

    @property
    def cancelled_caught(self) -> bool: ...


class EventLike(Protocol):
    """What :meth:`Backend.Event` makes: ``trio.Event`` or ``asyncio.Event``."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> Any: ...


@dataclasses.dataclass
class Outcome:
    """How a call run by :meth:`Backend.run_and_cancel` or :meth:`Backend.run_all` ended.

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


async def _keep(fn: Callable[[], Awaitable[object]], outcome: Outcome) -> None:
    # One call of run_all(): its result or its error goes to its own outcome, so that
    # one failing call neither stops the others nor hides their results.
    try:
        outcome.value = await fn()
    except Exception as exc:
        outcome.error = exc


class Backend:
    """A framework: its port module, and the framework calls that code written once needs.

    Attributes:
        name: ``"trio"``, ``"asyncio"`` or ``"asyncio+uvloop"``.
        port: the port module for this framework (``trio_sockets.trio_port`` or
            ``trio_sockets.asyncio_port``).
    """

    name: str
    port: ModuleType
    #: Whether ``run(fn, virtual=True)`` works (uvloop's timers are out of looptime's reach).
    has_virtual_clock: ClassVar[bool] = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def run(self, fn: Callable[..., Awaitable[T]], *args: object, virtual: bool = False) -> T:
        """Run ``fn(*args)`` to completion on a fresh event loop and return its result.

        Args:
            fn: the async function to run.
            *args: its positional arguments.
            virtual: run on a virtual clock that starts at 0 and jumps to the next timer
                whenever every task is blocked.
        """
        raise NotImplementedError

    def now(self) -> float:
        """The framework's clock: ``trio.current_time()``, ``loop.time()``."""
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` on the framework's clock."""
        raise NotImplementedError

    def move_on_after(self, seconds: float) -> contextlib.AbstractAsyncContextManager[Scope]:
        """``async with backend.move_on_after(s) as scope:``; then ``scope.cancelled_caught``."""
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def fail_after(self, seconds: float) -> AsyncIterator[None]:
        """Raise ``TimeoutError`` if the body takes longer than ``seconds``."""
        async with self.move_on_after(seconds) as scope:
            yield
        if scope.cancelled_caught:
            raise TimeoutError(f"took more than {seconds} s")

    def Event(self) -> EventLike:  # named like the classes it makes
        """A new event of the framework."""
        raise NotImplementedError

    async def to_thread(self, fn: Callable[..., T], *args: object) -> T:
        """Run a blocking call (a server's ``wait_bytes``) in a worker thread."""
        raise NotImplementedError

    async def run_all(self, *fns: Callable[[], Awaitable[object]]) -> list[Outcome]:
        """Run the calls side by side, started in order; each outcome is kept apart."""
        raise NotImplementedError

    async def run_and_cancel(
        self, fn: Callable[[], Awaitable[object]], when: Callable[[], Awaitable[object]]
    ) -> Outcome:
        """Run ``fn()`` and cancel it from outside (its caller's scope) once ``when()`` returns.

        If ``fn()`` finishes first, it is not cancelled. ``Outcome.error`` is exactly what
        ``fn()`` raised, as its caller would see it.
        """
        raise NotImplementedError

    async def cancel_after(self, seconds: float, work: Callable[[], Awaitable[object]]) -> bool:
        """Run ``work()``, cancel it from outside after ``seconds``; True if it was."""
        raise NotImplementedError

    def set_resolver(self, lookup: Lookup) -> Callable[[], None]:
        """Answer ``getaddrinfo`` with ``lookup``, through the framework's own hook.

        Trio's custom hostname resolver; asyncio has no hook, so the running loop's
        ``getaddrinfo`` is shadowed. Call it inside :meth:`run`.

        Returns:
            A function that puts the previous resolver back.
        """
        raise NotImplementedError

    @contextlib.contextmanager
    def use_resolver(self, lookup: Lookup) -> Iterator[None]:
        """:meth:`set_resolver` for the block only."""
        restore = self.set_resolver(lookup)
        try:
            yield
        finally:
            restore()

    def task_count(self) -> int:
        """Tasks alive in this run, the current one included."""
        raise NotImplementedError

    async def stop_tasks_since(self, count: int) -> None:
        """Stop the tasks left running since there were ``count``, once they are counted.

        Trio needs nothing: a task cannot outlive its nursery.
        """


# --------------------------------------------------------------------------------------
# Trio
# --------------------------------------------------------------------------------------


class _TrioResolver(trio.abc.HostnameResolver):
    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup

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
        answer = self.lookup(name, port, family)
        if answer is None:
            # What Trio's own resolver does: the blocking call, in a thread.
            return await trio.to_thread.run_sync(
                socket.getaddrinfo, host, port, family, type, proto, flags
            )
        return answer

    async def getnameinfo(self, sockaddr: Any, flags: int) -> tuple[str, str]:
        await trio.lowlevel.checkpoint()
        return str(sockaddr[0]), str(sockaddr[1])


class TrioBackend(Backend):
    """Trio: ``trio.run``, cancel scopes and nurseries."""

    name = "trio"
    port: ModuleType = trio_port

    def run(self, fn: Callable[..., Awaitable[T]], *args: object, virtual: bool = False) -> T:
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
        async with trio.open_nursery() as nursery:
            for fn, outcome in zip(fns, outcomes, strict=True):
                nursery.start_soon(_keep, fn, outcome)
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

    async def cancel_after(self, seconds: float, work: Callable[[], Awaitable[object]]) -> bool:
        # From outside: the caller's cancel scope reaches every task inside `work`.
        with trio.move_on_after(seconds) as scope:
            await work()
        return scope.cancelled_caught

    def set_resolver(self, lookup: Lookup) -> Callable[[], None]:
        # Trio's public hook; trio.socket.getaddrinfo asks the custom resolver.
        previous = trio.socket.set_custom_hostname_resolver(_TrioResolver(lookup))

        def restore() -> None:
            trio.socket.set_custom_hostname_resolver(previous)

        return restore

    def task_count(self) -> int:
        def count(task: trio.lowlevel.Task) -> int:
            return 1 + sum(count(t) for n in task.child_nurseries for t in n.child_tasks)

        return count(trio.lowlevel.current_root_task())  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# asyncio
# --------------------------------------------------------------------------------------


class _MovedOn:
    """What ``AsyncioBackend.move_on_after`` yields: whether its deadline cut the body short."""

    cancelled_caught = False


class AsyncioBackend(Backend):
    """asyncio: an ``asyncio.Runner``, ``asyncio.timeout``, ``TaskGroup``, ``Task.cancel()``."""

    name = "asyncio"
    port: ModuleType = asyncio_port

    def loop_factory(self, virtual: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
        """The event loop a run gets; None for asyncio's default."""
        if not virtual:
            return None
        import looptime  # an optional test dependency: imported only when asked for

        return lambda: looptime.new_event_loop(start=0)

    def run(self, fn: Callable[..., Awaitable[T]], *args: object, virtual: bool = False) -> T:
        async def main() -> T:
            return await fn(*args)

        with asyncio.Runner(loop_factory=self.loop_factory(virtual)) as runner:
            return runner.run(main())

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    @contextlib.asynccontextmanager
    async def move_on_after(self, seconds: float) -> AsyncIterator[Scope]:
        # asyncio: a deadline raises TimeoutError; "move on" is catching it, when it is
        # this deadline's own (expired()) and not one from inside the body.
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
        async with asyncio.TaskGroup() as group:
            for fn, outcome in zip(fns, outcomes, strict=True):
                group.create_task(_keep(fn, outcome))
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

        # asyncio: the caller is a task of its own; Task.cancel() is how a caller is cancelled.
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

    async def cancel_after(self, seconds: float, work: Callable[[], Awaitable[object]]) -> bool:
        # asyncio: from outside is another task calling Task.cancel() on the one running `work`.
        async def body() -> None:
            await work()

        task = asyncio.create_task(body())
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if done:
            task.result()
            return False
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # cancelled from outside too (Ctrl+C): not ours to swallow
            return True
        return False

    def set_resolver(self, lookup: Lookup) -> Callable[[], None]:
        # asyncio has no resolver hook: shadow getaddrinfo on the running loop only.
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
            answer = lookup(name, port, family)
            if answer is None:
                # uvloop's sock_connect() resolves its (numeric) address through here.
                return await real(host, port, family=family, type=type, proto=proto, flags=flags)
            await asyncio.sleep(0)
            return answer

        # An instance attribute shadows the method, on this loop only (uvloop's too).
        shadowed = vars(loop).get("getaddrinfo")  # an outer resolver's, if any
        setattr(loop, "getaddrinfo", getaddrinfo)  # noqa: B010 (mypy: no method assignment)

        def restore() -> None:
            if shadowed is None:
                delattr(loop, "getaddrinfo")
            else:
                setattr(loop, "getaddrinfo", shadowed)  # noqa: B010

        return restore

    def task_count(self) -> int:
        return len(asyncio.all_tasks())

    async def stop_tasks_since(self, count: int) -> None:
        # asyncio: a task may outlive whoever started it. The caller's task is the oldest;
        # cancel every other one and wait until it has closed what it holds.
        if self.task_count() <= count:
            return
        left = asyncio.all_tasks() - {asyncio.current_task()}
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)


class UvloopBackend(AsyncioBackend):
    """asyncio on uvloop's event loop (``pip install 'trio-sockets[uvloop]'``)."""

    name = "asyncio+uvloop"
    has_virtual_clock = False

    def loop_factory(self, virtual: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
        if virtual:
            # looptime patches the pure-Python loop's selector and time(); uvloop's
            # timers live in libuv, where it cannot reach them.
            raise ValueError("uvloop has no virtual clock (looptime patches asyncio's loop)")
        import uvloop  # an optional extra: imported only when asked for

        return uvloop.new_event_loop


BACKENDS: Final[dict[str, type[Backend]]] = {
    "trio": TrioBackend,
    "asyncio": AsyncioBackend,
    "asyncio+uvloop": UvloopBackend,
}


def backend(name: str) -> Backend:
    """The backend called ``name``: ``"trio"``, ``"asyncio"`` or ``"asyncio+uvloop"``."""
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ValueError(
            f"backend must be 'trio', 'asyncio' or 'asyncio+uvloop', got {name!r}"
        ) from None
