"""The scripted fake network for asyncio: :class:`AsyncioFakeNetwork`.

asyncio has no resolver or socket-factory hooks, so the network is installed on the
running event loop: ``getaddrinfo`` and ``sock_connect`` are shadowed by instance
attributes (on this loop only, removed on exit), and the asyncio port's clock points at
``loop.time()``. See :mod:`trio_sockets.testing` for how to use it.

The socket is the caller's own ``socket.socket``. At ``sock_connect`` the network adopts
it: its class becomes :class:`AsyncioFakeSocket` (a subclass that adds no storage, so the
switch is allowed), and once the scripted connect succeeds its file descriptor is
replaced (``dup2``) by one end of a Unix ``socketpair()`` whose other end is the scripted
peer. The descriptor is real, so ``select``/``poll`` and the loop's
``add_reader``/``add_writer`` work as on a real connection; ``send`` (``sendmsg``,
``sendall``), ``recv`` (``recv_into``), ``shutdown``, ``close``, ``setsockopt``,
``getpeername`` and ``getsockname`` follow the script and report the scripted
addresses. A peer that stops reading (``window``) fills the real send buffer,
so that writability waits block as they do for a stalled TCP receiver.

Delays are ``asyncio.sleep`` calls: on a ``looptime`` loop (which jumps its clock to the
next timer whenever nothing is ready, in integer microseconds) they are virtual time.
looptime patches asyncio's own loop; uvloop's timers live in libuv, out of its reach.
"""

from __future__ import annotations

import asyncio
import errno
import socket as _stdlib_socket
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from .. import asyncio_port
from ._asyncio_socket import AsyncioFakeSocket, adopt
from ._script import AddrInfo, ScriptedNetwork, oserror

if TYPE_CHECKING:
    from typing import Self

__all__ = ["AsyncioFakeNetwork", "AsyncioFakeSocket"]

_MISSING: Final = object()


# --------------------------------------------------------------------------------------
# AsyncioFakeNetwork
# --------------------------------------------------------------------------------------


class AsyncioFakeNetwork(ScriptedNetwork[AsyncioFakeSocket]):
    """A scripted network for asyncio, installed on the running event loop.

    Use it as a context manager inside a coroutine: entering shadows the running loop's
    ``getaddrinfo`` and ``sock_connect`` and points the asyncio port's clock at
    ``loop.time()``; leaving restores all three and closes the scripted peers' ends of
    the sockets. Scripting (``add_host``, ``script``, ``script_for``, ``default``) and
    inspection (``sockets``, ``lookups``, ``open_sockets()``, ``sockets_to()``,
    ``received()``) are the same as Trio's :class:`~trio_sockets.testing.FakeNetwork`.

    Args:
        families: the address families that can connect; connecting a socket of
            another family raises ``OSError(EAFNOSUPPORT)``, as on a host without IPv6.
            (asyncio code makes its sockets itself, so the error comes from
            ``sock_connect``, not from creating the socket as on Trio, and such a
            socket is not recorded.)

    Attributes:
        sockets: every :class:`AsyncioFakeSocket` adopted, in order of first connect.
        lookups: every name passed to ``getaddrinfo``, in order.
        scripts: the scripted addresses, ``(ip, port)`` to :class:`PeerScript`.
        default: the script of every other address: refuse at once.
    """

    def __init__(
        self,
        *,
        families: Iterable[int] = (_stdlib_socket.AF_INET, _stdlib_socket.AF_INET6),
    ) -> None:
        super().__init__(families)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[str, Any] = {}
        self._previous_clock: Callable[[], float] = asyncio_port._now

    # ----- installing ---------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._loop is not None:
            raise RuntimeError("this AsyncioFakeNetwork is already installed")
        loop = asyncio.get_running_loop()
        methods = {"getaddrinfo": self.getaddrinfo, "sock_connect": self.sock_connect}
        # An instance attribute shadows the method, on this loop only (uvloop's too).
        self._previous = {name: vars(loop).get(name, _MISSING) for name in methods}
        for name, method in methods.items():
            setattr(loop, name, method)
        # The port times its attempts and reports with a clock of its own (the finest
        # one); under the fake, that clock must be the loop's, which may be virtual.
        self._previous_clock, asyncio_port._now = asyncio_port._now, loop.time
        self._loop = loop
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        loop, self._loop = self._loop, None
        assert loop is not None
        for name, previous in self._previous.items():
            if previous is _MISSING:
                delattr(loop, name)
            else:
                setattr(loop, name, previous)
        asyncio_port._now = self._previous_clock
        for sock in self.sockets:
            peer = sock._state.peer
            if peer is not None:
                peer.close()

    # ----- the loop methods it stands in for ----------------------------------------

    async def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[AddrInfo]:
        """Resolve a name added with :meth:`add_host` (stands in for ``loop.getaddrinfo``).

        Returns TCP entries in the order given to :meth:`add_host`, filtered by
        ``family``, after the host's scripted delay.

        Raises:
            socket.gaierror: an unknown name (``EAI_NONAME``) or a non-numeric port
                (``EAI_SERVICE``).
        """
        name = host.decode("ascii") if isinstance(host, bytes) else (host or "localhost")
        await asyncio.sleep(self._lookup_delay(name))
        return self._answer(name, port, family)

    async def sock_connect(self, sock: _stdlib_socket.socket, address: Any) -> None:
        """Connect as scripted (stands in for ``loop.sock_connect``).

        Sleeps the scripted delay, then connects, refuses, hangs or raises. Unlike
        Trio's, a cancelled connect leaves the socket open: asyncio's own does too, and
        closing it is the caller's job.

        Raises:
            ConnectionRefusedError: the outcome is ``"refuse"`` (or unscripted).
            OSError: the scripted error; ``EAFNOSUPPORT`` for a family not in
                ``families`` or an address of the other family; ``EISCONN`` if connect
                was already called; ``EBADF`` if closed.
        """
        if sock.family not in self._families:
            raise oserror(errno.EAFNOSUPPORT)
        await adopt(sock, self)._connect(tuple(address))
