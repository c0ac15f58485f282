"""Trio-shaped helpers for the asyncio port: the pieces asyncio lacks.

``asyncio_port.py`` is written line for line against ``trio_port.py``. Where Trio has a
primitive and asyncio has none, the missing piece lives here, small and documented, so
that the port itself reads like the Trio original:

- :class:`BusyResourceError` and :class:`ClosedResourceError`, the misuse errors;
- :class:`CapacityLimiter`, with ``acquire_on_behalf_of`` / ``release_on_behalf_of``
  (built on :class:`asyncio.Semaphore`);
- :class:`CancelScope`, a region of one task that can be cancelled from another task and
  swallows only the cancellation it caused;
- :func:`wait_writable`, :func:`wait_readable` and :func:`notify_closing`, readiness waits
  that never leave a reader or writer registered for a socket that is closed, and
  :class:`ClosingSocket`, whose ``close()`` wakes them first.
"""

from __future__ import annotations

import asyncio
import socket
from types import TracebackType
from typing import Any, Final, TypeAlias

__all__ = [
    "BusyResourceError",
    "CancelScope",
    "CapacityLimiter",
    "ClosedResourceError",
    "ClosingSocket",
    "notify_closing",
    "wait_readable",
    "wait_writable",
]


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------

# asyncio has no BusyResourceError / ClosedResourceError: its own socket helpers raise
# plain RuntimeError for a closed loop or a second reader, and OSError(EBADF) for a closed
# socket. We define the two as RuntimeError subclasses: a misuse of a connection is a
# programming error, not network trouble, so it must not be caught by the ``except
# OSError`` that turns network trouble into a report; and callers who catch RuntimeError
# (as they would for asyncio's own misuse errors) still catch these.


class BusyResourceError(RuntimeError):
    """Another task is already using this resource (sending, receiving or waiting)."""


class ClosedResourceError(RuntimeError):
    """The resource was closed, before or while it was being used."""


# --------------------------------------------------------------------------------------
# Deadlines and cancellation
# --------------------------------------------------------------------------------------


class CancelScope:
    """A region of the current task that another task can cancel, like Trio's scope.

    ``with scope:`` marks the region; ``scope.cancel()`` cancels the task that entered
    it, and the ``CancelledError`` it caused is swallowed when it reaches the end of the
    region (``cancelled_caught`` is then true). Like :func:`asyncio.timeout`, it counts
    with ``Task.cancelling()`` / ``Task.uncancel()``, so a cancellation that also came
    from outside propagates. Wrapped around an :class:`asyncio.TaskGroup`, it cancels the
    group's body and so every child.
    """

    __slots__ = ("_cancelling", "_exited", "_sent", "_task", "cancel_called", "cancelled_caught")

    def __init__(self) -> None:
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._sent = False  # we called Task.cancel(), and owe one Task.uncancel()
        self._exited = False
        self.cancel_called = False
        self.cancelled_caught = False

    def __enter__(self) -> CancelScope:
        task = asyncio.current_task()
        if task is None or self._task is not None:
            raise RuntimeError("a CancelScope is entered once, inside a task")
        self._task, self._cancelling = task, task.cancelling()
        if self.cancel_called:
            self._deliver_soon()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._exited = True
        if not self._sent or self._task is None:
            return False
        if self._task.uncancel() <= self._cancelling and isinstance(exc, asyncio.CancelledError):
            self.cancelled_caught = True
            return True
        return False

    def cancel(self) -> None:
        """Cancel the region; harmless when called again or after the region ended."""
        if self.cancel_called:
            return
        self.cancel_called = True
        if self._task is not None and asyncio.current_task() is self._task:
            # Task.cancel() lands at the task's next await, which might come after the
            # region; a callback runs only while the task is suspended, so it can tell.
            self._deliver_soon()
        else:
            self._deliver()

    def _deliver_soon(self) -> None:
        asyncio.get_running_loop().call_soon(self._deliver)

    def _deliver(self) -> None:
        if self._task is not None and not self._exited and not self._sent:
            self._sent = True
            self._task.cancel()


class CapacityLimiter:
    """Trio's ``CapacityLimiter`` for asyncio: tokens held on behalf of a borrower.

    A borrower holds at most one token, and only the borrower that holds a token may
    release it; both mistakes raise ``RuntimeError``, as in Trio.
    """

    __slots__ = ("_borrowers", "_semaphore", "total_tokens")

    def __init__(self, total_tokens: int) -> None:
        if isinstance(total_tokens, bool) or not isinstance(total_tokens, int):
            raise TypeError(f"total_tokens must be an int, got {total_tokens!r}")
        if total_tokens < 1:
            raise ValueError(f"total_tokens must be >= 1, got {total_tokens!r}")
        self.total_tokens = total_tokens
        self._semaphore = asyncio.Semaphore(total_tokens)
        self._borrowers: set[object] = set()

    @property
    def borrowed_tokens(self) -> int:
        return len(self._borrowers)

    @property
    def available_tokens(self) -> int:
        return self.total_tokens - len(self._borrowers)

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        """Wait for a token and record ``borrower`` as its holder."""
        if borrower in self._borrowers:
            raise RuntimeError(f"{borrower!r} already holds one of this limiter's tokens")
        await self._semaphore.acquire()
        self._borrowers.add(borrower)

    def release_on_behalf_of(self, borrower: object) -> None:
        """Give back the token ``borrower`` holds."""
        try:
            self._borrowers.remove(borrower)
        except KeyError:
            raise RuntimeError(f"{borrower!r} does not hold a token of this limiter") from None
        self._semaphore.release()


# --------------------------------------------------------------------------------------
# Socket readiness
# --------------------------------------------------------------------------------------

_Key: TypeAlias = tuple[asyncio.AbstractEventLoop, int, bool]  # (loop, fd, writing)
# The pending waits, one per (loop, fd, direction): loop.add_writer() would silently
# replace a second writer callback for the same fd and leave the first waiter hanging.
_WAITERS: Final[dict[_Key, _FdWaiter]] = {}


class _FdWaiter(asyncio.Future[None]):
    """A future that is registered with the loop for its fd while, and only while, pending.

    The reader or writer is removed *before* the future resolves, fails or is cancelled,
    never later in a done-callback or in the waiting task's ``finally``: in between,
    another task could close the socket and the fd number could be reused, and a stale
    registration would then belong to someone else's socket (CPython gh-131728).
    ``Task.cancel()`` calls ``cancel()`` on the future it waits for, so overriding
    ``cancel`` is enough to catch cancellation synchronously.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, writing: bool) -> None:
        super().__init__(loop=loop)
        self._key: _Key = (loop, fd, writing)
        if writing:
            loop.add_writer(fd, self._ready)
        else:
            loop.add_reader(fd, self._ready)
        _WAITERS[self._key] = self

    def _unregister(self) -> None:
        if _WAITERS.get(self._key) is self:
            del _WAITERS[self._key]
            loop, fd, writing = self._key
            if writing:
                loop.remove_writer(fd)
            else:
                loop.remove_reader(fd)

    def _ready(self) -> None:
        self._unregister()
        if not self.done():
            self.set_result(None)

    def close(self, exc: BaseException) -> None:
        self._unregister()
        if not self.done():
            self.set_exception(exc)

    def cancel(self, msg: Any | None = None) -> bool:
        self._unregister()
        return super().cancel(msg)


async def _wait(loop: asyncio.AbstractEventLoop, sock: socket.socket, writing: bool) -> None:
    fd = sock.fileno()
    if fd < 0:
        raise ClosedResourceError("the socket is closed")
    if (loop, fd, writing) in _WAITERS:
        what = "write" if writing else "read"
        raise BusyResourceError(f"another task is already waiting to {what} on this socket")
    waiter = _FdWaiter(loop, fd, writing)
    try:
        await waiter
    finally:
        waiter._unregister()  # the coroutine was closed without a cancel(): still clean up


async def wait_writable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Wait until ``sock`` is writable: ``loop.add_writer`` and a future.

    Always waits for the loop to report readiness (one loop iteration at least). The
    writer is removed before the wait ends, however it ends.

    Raises:
        BusyResourceError: another task is already waiting to write on ``sock``.
        ClosedResourceError: ``sock`` is closed, or :func:`notify_closing` was called.
    """
    await _wait(loop, sock, True)


async def wait_readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Wait until ``sock`` is readable; the reader twin of :func:`wait_writable`.

    Raises:
        BusyResourceError: another task is already waiting to read on ``sock``.
        ClosedResourceError: ``sock`` is closed, or :func:`notify_closing` was called.
    """
    await _wait(loop, sock, False)


def notify_closing(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Call before ``sock.close()``: wake its waiters with ``ClosedResourceError``.

    Like ``trio.lowlevel.notify_closing``: a task blocked in :func:`wait_writable` or
    :func:`wait_readable` on ``sock`` gets the error instead of hanging, and their writer
    or reader is removed, so that nothing stays registered for a file descriptor number
    that the next socket may reuse. (Registrations made by others, such as the loop's
    own ``sock_*`` methods, are theirs to remove; ``loop.sock_connect`` removes its writer
    before the awaiting task resumes.)
    """
    if not _WAITERS:  # the common case, and the cheap one
        return
    fd = sock.fileno()
    for writing in (True, False):
        waiter = _WAITERS.get((loop, fd, writing))
        if waiter is not None:
            waiter.close(ClosedResourceError("another task closed this socket"))


class ClosingSocket(socket.socket):
    """A ``socket.socket`` whose ``close()`` first wakes the tasks waiting on it.

    asyncio watches file descriptors, not sockets. A socket closed while a task waits in
    :func:`wait_readable` or :func:`wait_writable` would leave that task waiting forever
    (the kernel drops a closed descriptor from epoll without a word), and leave the
    loop's registration behind for a number that the next socket may reuse, whose own
    waits and connects would then hang. Checking ``fileno() == -1`` before each wait is
    not enough: the close may come while the task already waits. So, as Trio's socket
    does in its ``close()``, this one calls :func:`notify_closing` first: closing
    ``Connection.socket`` directly, behind the connection's back, is safe.
    """

    __slots__ = ()

    def close(self) -> None:
        if _WAITERS:
            try:
                loops = [asyncio.get_running_loop()]
            except RuntimeError:  # closed outside the loop: look in every loop's waits
                loops = list({key[0] for key in _WAITERS})
            for loop in loops:
                notify_closing(loop, self)
        super().close()
