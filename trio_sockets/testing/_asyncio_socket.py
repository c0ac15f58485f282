"""The sockets of :class:`~trio_sockets.testing.AsyncioFakeNetwork`.

A caller's own ``socket.socket``, adopted at ``sock_connect``: see
:mod:`trio_sockets.testing._asyncio_net` for how, and :mod:`trio_sockets.testing` for
how to use the network.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import socket as _stdlib_socket
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from ._script import (
    FIRST_LOCAL_PORT,
    LOCAL_IPV4,
    LOCAL_IPV6,
    RecordedSocket,
    SocketRecord,
    oserror,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from ._asyncio_net import AsyncioFakeNetwork

__all__ = ["AsyncioFakeSocket", "adopt"]

_CHUNK: Final = bytes(1 << 16)  # filler for the send buffer of a stalled peer


@dataclasses.dataclass(slots=True, eq=False, kw_only=True)
class _State(SocketRecord):
    """What an :class:`AsyncioFakeSocket` knows beyond its real socket.

    Kept outside the socket: the class switch forbids new instance storage.
    """

    network: AsyncioFakeNetwork
    peer: _stdlib_socket.socket | None = None  # the scripted peer's end
    backlog: bytearray = dataclasses.field(default_factory=bytearray)  # not in the pair yet
    peer_closing: bool = False  # the peer closes its side once the backlog is out


_STATES: Final[weakref.WeakKeyDictionary[AsyncioFakeSocket, _State]] = weakref.WeakKeyDictionary()


class AsyncioFakeSocket(RecordedSocket, _stdlib_socket.socket):
    """A ``socket.socket`` adopted by :class:`AsyncioFakeNetwork` at ``sock_connect``.

    Tests inspect it through the attributes of :class:`RecordedSocket` (``closed``,
    ``address`` as passed to ``sock_connect()``, ``script``, ``connect_state``,
    ``sent``, ...), as Trio's ``FakeSocket``.

    Attributes:
        network: the :class:`AsyncioFakeNetwork` that adopted it.
    """

    __slots__ = ()  # no storage of its own: see _State

    @property
    def _state(self) -> _State:
        return _STATES[self]

    _record = _state  # what the inspection attributes read

    def __repr__(self) -> str:
        state = self._state
        what = "closed" if state.closed else (state.connect_state or "new")
        return f"<AsyncioFakeSocket #{state.number} {self.family.name} {what} to {state.address!r}>"

    # ----- inspection ---------------------------------------------------------------

    @property
    def network(self) -> AsyncioFakeNetwork:
        return self._state.network

    # ----- the overridden socket methods --------------------------------------------

    def getpeername(self) -> Any:
        state = self._check_connected()
        return state.address

    def getsockname(self) -> Any:
        state = self._state
        if state.closed:
            raise oserror(errno.EBADF)
        if state.connect_state != "connected":
            return super().getsockname()  # still the caller's real, unconnected socket
        v6 = self.family == _stdlib_socket.AF_INET6
        ip, port = state.bound[:2] if state.bound is not None else ("", 0)
        if ip in ("", "::", "0.0.0.0"):
            ip = LOCAL_IPV6 if v6 else LOCAL_IPV4
        port = port or FIRST_LOCAL_PORT + state.number
        return (ip, port, 0, 0) if v6 else (ip, port)

    def setsockopt(self, level: int, optname: int, value: Any, optlen: Any = None, /) -> None:
        """As a real socket's; once connected, TCP options are accepted and ignored.

        (The descriptor is then a Unix socket, which has no TCP options; asyncio's
        transports set ``TCP_NODELAY``, for one.)
        """
        state = self._state
        if state.connect_state == "connected" and level == _stdlib_socket.IPPROTO_TCP:
            if state.closed:
                raise oserror(errno.EBADF)
            return
        if optlen is None:
            super().setsockopt(level, optname, value)
        else:
            super().setsockopt(level, optname, value, optlen)

    def send(self, data: Buffer, flags: int = 0, /) -> int:
        """Hand bytes to the peer; return how many it took (see :class:`PeerScript`).

        Raises:
            BlockingIOError: the peer's ``window`` is full (it has stopped reading).
            ConnectionResetError: the peer's ``reset_after`` budget is used up.
            BrokenPipeError: our sending side was shut down.
            OSError: ``EBADF`` if closed, ``ENOTCONN`` if not connected.
        """
        state = self._check_connected()
        script = state.script
        assert script is not None
        if state.shut_wr:
            raise oserror(errno.EPIPE, BrokenPipeError)
        if script.resets(len(state.sent)):
            raise oserror(errno.ECONNRESET, ConnectionResetError)
        if script.window_room(len(state.sent)) == 0:
            raise oserror(errno.EAGAIN, BlockingIOError)
        with memoryview(data) as raw, raw.cast("B") as view:
            count = script.send_count(len(view), len(state.sent))
            chunk = bytes(view[:count])
        state.sent += chunk
        state.sends.append(count)
        if script.reply == "echo":
            state.backlog += chunk
            self._flush_peer()
        if script.window_room(len(state.sent)) == 0:
            self._stall()
        return count

    def sendmsg(self, buffers: Iterable[Buffer], *rest: Any) -> int:
        """:meth:`send` of the buffers joined (asyncio's transports write with it, 3.12+)."""
        if any(rest[:1]) or any(rest[2:]):
            raise oserror(errno.EOPNOTSUPP)  # no ancillary data or address on a fake
        return self.send(b"".join(buffers), *rest[1:2])

    def sendall(self, data: Buffer, flags: int = 0, /) -> None:
        """:meth:`send` until every byte is taken (``BlockingIOError`` once none is)."""
        with memoryview(data) as raw, raw.cast("B") as view:
            sent = 0
            while sent < len(view):
                sent += self.send(view[sent:], flags)

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        """Return up to ``bufsize`` bytes the peer sent (``BlockingIOError`` if none yet).

        ``b""`` means end of stream: the peer closed its side (after our ``SHUT_WR``,
        if it ``closes``) and every byte it sent was read.
        """
        state = self._check_connected()
        data = super().recv(bufsize, flags)
        state.received += data
        self._flush_peer()  # room was made: the peer sends what it still has
        return data

    def recv_into(self, buffer: Buffer, nbytes: int = 0, flags: int = 0, /) -> int:
        """:meth:`recv` into ``buffer`` (up to ``nbytes``, or its length); returns the count."""
        with memoryview(buffer) as view:
            chunk = self.recv(nbytes or len(view), flags)
            view[: len(chunk)] = chunk
        return len(chunk)

    def shutdown(self, how: int, /) -> None:
        """``SHUT_WR`` half-closes: a scripted peer that ``closes`` then closes its side."""
        state = self._check_connected()
        super().shutdown(how)
        if how in (_stdlib_socket.SHUT_WR, _stdlib_socket.SHUT_RDWR):
            state.shut_wr = True
            if state.script is not None and state.script.closes:
                state.peer_closing = True
                self._flush_peer()

    def close(self) -> None:
        """Close the socket and the peer's end; closing twice is harmless."""
        state = _STATES.get(self)
        if state is not None:
            state.closed = True
            if state.peer is not None:
                state.peer.close()
        super().close()

    # ----- the network's side -------------------------------------------------------

    async def _connect(self, address: tuple[Any, ...]) -> None:
        state = self._state
        if state.closed or self.fileno() < 0:
            raise oserror(errno.EBADF)
        loop = asyncio.get_running_loop()
        script = state.start_connect(address, self.family, state.network, loop.time())
        try:
            # Woken by a timer, as a real connect is by the loop's I/O callback: a
            # cancellation in the same tick wins over both (Task.cancel semantics).
            await asyncio.sleep(script.delay)
            if script.outcome == "blackhole":
                await loop.create_future()  # never resolved: SYNs dropped
        except asyncio.CancelledError:
            state.connect_state, state.connect_ended = "cancelled", loop.time()
            raise
        state.end_connect(loop.time())
        self._wire()
        state.connect_state = "connected"
        if isinstance(script.reply, bytes):
            state.backlog += script.reply
            self._flush_peer()
        if script.window_room(0) == 0:
            self._stall()

    def _wire(self) -> None:
        # Swap the unconnected TCP descriptor for one end of a Unix socket pair: the
        # socket object, its number and its family stay; its I/O now reaches the peer.
        state = self._state
        local = super().getsockname()
        if local[0] not in ("", "::", "0.0.0.0") or local[1]:
            state.bound = tuple(local)
        ours, peer = _stdlib_socket.socketpair()
        with ours:
            ours.setblocking(False)  # O_NONBLOCK is per open file: set it on the new one
            peer.setblocking(False)
            os.dup2(ours.fileno(), self.fileno(), inheritable=False)
        state.peer = peer

    def _flush_peer(self) -> None:
        # The peer sends what it has, as far as our receive buffer takes it, and closes
        # its side once everything is out (if it was asked to).
        state = self._state
        if state.peer is None or state.closed:
            return
        while state.backlog:
            try:
                n = state.peer.send(state.backlog)
            except BlockingIOError:
                return
            del state.backlog[:n]
        if state.peer_closing:
            state.peer_closing = False
            state.peer.shutdown(_stdlib_socket.SHUT_WR)

    def _stall(self) -> None:
        # The peer has stopped reading: fill our real send buffer, so that send() and
        # every writability wait (poll, loop.add_writer) see a full buffer, as with TCP.
        while True:
            try:
                super().send(_CHUNK)
            except BlockingIOError:
                return

    def _check_connected(self) -> _State:
        state = self._state
        if state.closed:
            raise oserror(errno.EBADF)
        if state.connect_state != "connected" or state.script is None:
            raise oserror(errno.ENOTCONN)
        return state


def adopt(sock: _stdlib_socket.socket, network: AsyncioFakeNetwork) -> AsyncioFakeSocket:
    """Make ``sock`` an :class:`AsyncioFakeSocket` of ``network`` (once), and return it."""
    if not isinstance(sock, AsyncioFakeSocket):
        sock.__class__ = AsyncioFakeSocket  # adds no storage: see _State
        assert isinstance(sock, AsyncioFakeSocket)
        _STATES[sock] = _State(number=len(network.sockets), network=network)
        network.sockets.append(sock)
    return sock
