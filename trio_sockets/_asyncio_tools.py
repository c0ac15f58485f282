"""What the asyncio port needs that asyncio lacks: misuse errors, and safe readiness waits.

The one gap: asyncio's readiness waits on a raw socket are ``loop.add_reader`` and
``loop.add_writer``, keyed by descriptor number, and nothing removes them when the
socket closes. A task waiting on a socket that another task closes would wait forever,
and the registration would stay behind for a number that the next socket may reuse.
So this module has:

- :func:`wait_writable`, :func:`wait_readable` and :func:`notify_closing`, readiness waits
  that never leave a reader or writer registered for a socket that is closed, and
  :class:`ClosingSocket`, whose ``close()`` wakes them first;
- :class:`BusyResourceError` and :class:`ClosedResourceError`, the misuse errors (asyncio
  has none of its own);
- :func:`run_in_daemon_thread`, a blocking call (a read from a quiet pipe) that a
  cancellation abandons without keeping ``asyncio.run()`` from returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any, Final, TypeAlias, TypeVar

__all__ = [
    "BusyResourceError",
    "ClosedResourceError",
    "ClosingSocket",
    "notify_closing",
    "run_in_daemon_thread",
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
    before the awaiting task resumes.) Call it on ``loop``'s thread.
    """
    if not _WAITERS:  # the common case, and the cheap one
        return
    _notify_fd(loop, sock.fileno())


def _notify_fd(loop: asyncio.AbstractEventLoop, fd: int) -> None:
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

    Close it on the thread of the loop that uses it. Closed from another thread, it
    hands the wake-up to each loop that has a task waiting on it
    (``call_soon_threadsafe``: a loop's futures and registrations are not thread-safe),
    and closes at once; until that loop runs the wake-up, its registration outlives the
    descriptor, and a new socket that reuses the number cannot wait on it in that loop.
    """

    __slots__ = ()

    def close(self) -> None:
        if _WAITERS:
            fd = self.fileno()
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:  # not on a loop's thread
                running = None
            for loop in {key[0] for key in list(_WAITERS) if key[1] == fd}:
                if loop is running:
                    _notify_fd(loop, fd)
                else:
                    # Another thread's loop: its own thread must wake its tasks.
                    with contextlib.suppress(RuntimeError):  # that loop has closed
                        loop.call_soon_threadsafe(_notify_fd, loop, fd)
        super().close()


_T = TypeVar("_T")


async def run_in_daemon_thread(fn: Callable[..., _T], *args: object) -> _T:
    """Run the blocking ``fn(*args)`` in a daemon thread of its own; a cancel abandons it.

    Not :func:`asyncio.to_thread`: its threads belong to the loop's default executor,
    which ``asyncio.run()`` shuts down, waiting for every thread, before it returns. A
    read blocked on a pipe whose writer is quiet would then hold the whole program, long
    after the caller was cancelled. (Trio's ``to_thread.run_sync(abandon_on_cancel=True)``
    does what this does.) A thread per call costs some tens of microseconds.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()

    def deliver(settle: Callable[[Any], None], outcome: object) -> None:
        # RuntimeError: the loop has closed, and nobody waits any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, outcome)

    def settle_result(result: Any) -> None:
        if not done.done():  # cancelled meanwhile: the result is abandoned
            done.set_result(result)

    def settle_error(exc: BaseException) -> None:
        if not done.done():
            done.set_exception(exc)

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:
            deliver(settle_error, exc)
        else:
            deliver(settle_result, result)

    threading.Thread(target=run, name="trio-sockets blocking read", daemon=True).start()
    return await done
