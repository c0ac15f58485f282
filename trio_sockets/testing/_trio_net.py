"""The scripted fake network for Trio: :class:`FakeNetwork` and its :class:`FakeSocket`.

Installed through Trio's two public hooks, :func:`trio.socket.set_custom_hostname_resolver`
and :func:`trio.socket.set_custom_socket_factory` (Trio's own happy-eyeballs tests script
their fake the same way). Delays are Trio sleeps, so under a
:class:`trio.testing.MockClock` (pytest-trio's ``autojump_clock``) they are virtual time.
The scripts and the inspection are shared with the asyncio twin (``_script.py``); see
:mod:`trio_sockets.testing` for how to use them.
"""

from __future__ import annotations

import builtins
import errno
import socket as _stdlib_socket
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

import trio

from ._script import (
    FIRST_LOCAL_PORT,
    LOCAL_IPV4,
    LOCAL_IPV6,
    PeerScript,
    Recorded,
    RecordedSocket,
    ScriptedNetwork,
    SocketRecord,
    family_of,
    oserror,
)

if TYPE_CHECKING:
    from typing import Self

    from typing_extensions import Buffer

__all__ = ["FakeNetwork", "FakeSocket"]

# Fake descriptors count up from here: far above any real one, so code that polls a
# fileno() it was given sees POLLNVAL, never the events of some unrelated open file.
_FIRST_FILENO: Final = 1 << 30


# --------------------------------------------------------------------------------------
# FakeSocket
# --------------------------------------------------------------------------------------


class FakeSocket(RecordedSocket, trio.socket.SocketType):
    """A Trio socket whose peer follows a :class:`PeerScript`; made by :class:`FakeNetwork`.

    It implements what a TCP client needs: ``connect``, ``bind``, ``send``, ``recv``,
    ``wait_writable``, ``is_readable``, ``shutdown``, ``close``, ``fileno``,
    ``getpeername``, ``getsockname``, ``setsockopt`` (ignored) and the ``family``,
    ``type`` and ``proto`` properties. Each blocking method is a checkpoint; ``send`` and
    ``recv`` either complete or are cancelled before moving any byte, as Trio's own do,
    and a cancelled ``connect`` closes the socket, as Trio's does.

    Tests inspect it through the attributes of :class:`RecordedSocket` (``closed``,
    ``address``, ``script``, ``connect_state``, ``sent``, ...), as asyncio's
    ``AsyncioFakeSocket``.

    Attributes:
        network: the :class:`FakeNetwork` that made it.
        bound: the address given to ``bind()``, or ``None``.
    """

    _record: SocketRecord  # what the inspection attributes read
    bound = Recorded[tuple[Any, ...] | None]()

    def __init__(
        self, network: FakeNetwork, family: int, type_: int, proto: int, number: int
    ) -> None:
        super().__init__()
        self.network = network
        self._family = _stdlib_socket.AddressFamily(family)
        self._type = _stdlib_socket.SocketKind(type_)
        self._proto = proto
        self._record = SocketRecord(number=number)
        self._inbox = bytearray()  # what the peer has sent and we have not read
        self._shut_rd = False
        self._peer_closed = False
        # Wakes tasks blocked in recv/send/wait_writable when the state changes.
        self._changed = trio.lowlevel.ParkingLot()

    def __repr__(self) -> str:
        state = "closed" if self.closed else (self.connect_state or "new")
        number = self._record.number
        return f"<FakeSocket #{number} {self._family.name} {state} to {self.address!r}>"

    # ----- properties and plain methods ---------------------------------------------

    @property
    def family(self) -> _stdlib_socket.AddressFamily:
        return self._family

    @property
    def type(self) -> _stdlib_socket.SocketKind:
        return self._type

    @property
    def proto(self) -> int:
        return self._proto

    def fileno(self) -> int:
        """A fake descriptor number, or -1 once closed (as a closed stdlib socket)."""
        return -1 if self.closed else _FIRST_FILENO + self._record.number

    def setsockopt(
        self, level: int, optname: int, value: int | Buffer | None, optlen: int | None = None
    ) -> None:
        """Accepted and ignored (nothing here depends on socket options)."""
        self._check_open()

    def getpeername(self) -> tuple[Any, ...]:
        self._check_connected()
        assert self.address is not None
        return self.address

    def getsockname(self) -> tuple[Any, ...]:
        self._check_open()
        v6 = self._family == _stdlib_socket.AF_INET6
        ip = self.bound[0] if self.bound is not None else ("::" if v6 else "0.0.0.0")
        port = self.bound[1] if self.bound is not None else 0
        if self.connected:
            if ip in ("", "::", "0.0.0.0"):
                ip = LOCAL_IPV6 if v6 else LOCAL_IPV4
            port = port or FIRST_LOCAL_PORT + self._record.number
        return (ip, port, 0, 0) if v6 else (ip, port)

    def is_readable(self) -> bool:
        """True when ``recv`` would return at once (bytes pending or end of stream)."""
        self._check_open()
        return bool(self._inbox) or self._eof

    def shutdown(self, flag: int) -> None:
        """``SHUT_WR`` half-closes: a scripted peer that ``closes`` then closes its side."""
        self._check_connected()
        if flag in (_stdlib_socket.SHUT_WR, _stdlib_socket.SHUT_RDWR):
            self._record.shut_wr = True
            if self.script is not None and self.script.closes:
                self._peer_closed = True
        if flag in (_stdlib_socket.SHUT_RD, _stdlib_socket.SHUT_RDWR):
            self._shut_rd = True
        self._changed.unpark_all()

    def close(self) -> None:
        """Close the socket; closing twice is harmless. Blocked callers get ``EBADF``."""
        if not self.closed:
            self._record.closed = True
            self._changed.unpark_all()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: builtins.type[BaseException] | None,  # `type` is a property here
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ----- blocking methods ---------------------------------------------------------

    async def bind(self, address: tuple[Any, ...]) -> None:
        """Record the local address; an IP of the other family fails (``EAFNOSUPPORT``)."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        ip = str(address[0])
        if ip and family_of(ip) != self._family:
            raise OSError(errno.EAFNOSUPPORT, f"cannot bind {self._family.name} socket to {ip!r}")
        self._record.bound = tuple(address)

    async def connect(self, address: tuple[Any, ...]) -> None:
        """Sleep the scripted delay, then connect, refuse, hang or raise as scripted.

        Raises:
            ConnectionRefusedError: the outcome is ``"refuse"`` (or unscripted).
            OSError: the scripted error; ``EBADF`` if closed; ``EISCONN`` if connect was
                already called; ``EAFNOSUPPORT`` for an address of the other family.
            trio.Cancelled: cancelled while connecting; the socket is then closed.
        """
        self._check_open()
        record = self._record
        script = record.start_connect(address, self._family, self.network, trio.current_time())
        try:
            await _wait_like_io(script.delay)
            if script.outcome == "blackhole":
                await trio.sleep_forever()
        except trio.Cancelled:
            # Like Trio: a connect cannot be undone, so a cancelled one closes the socket.
            record.connect_state, record.connect_ended = "cancelled", trio.current_time()
            self.close()
            raise
        # No checkpoint from here on: the outcome is decided in the tick the delay ends.
        record.end_connect(trio.current_time())
        record.connect_state = "connected"
        if isinstance(script.reply, bytes):
            self._inbox += script.reply

    async def send(self, data: Buffer, flags: int = 0, /) -> int:
        """Hand bytes to the peer; return how many it took (see :class:`PeerScript`).

        Raises:
            ConnectionResetError: the peer's ``reset_after`` budget is used up.
            BrokenPipeError: our sending side was shut down.
            OSError: ``EBADF`` if closed, ``ENOTCONN`` if not connected.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            script = self._check_connected()
            if self._record.shut_wr:
                raise oserror(errno.EPIPE, BrokenPipeError)
            if script.resets(len(self.sent)):
                raise oserror(errno.ECONNRESET, ConnectionResetError)
            room = script.window_room(len(self.sent))
            if room is None or room > 0:
                break
            await self._changed.park()  # a stalled peer: only close() wakes us
        with memoryview(data) as raw, raw.cast("B") as view:
            count = script.send_count(len(view), len(self.sent))
            chunk = bytes(view[:count])
        self._record.sent += chunk
        self._record.sends.append(count)
        if script.reply == "echo":
            self._inbox += chunk
            self._changed.unpark_all()
        # Like Trio's send: once bytes moved, the call completes even if cancelled.
        await trio.lowlevel.cancel_shielded_checkpoint()
        return count

    async def recv(self, buflen: int, flags: int = 0, /) -> bytes:
        """Return up to ``buflen`` bytes the peer sent, waiting for some if needed.

        ``b""`` means end of stream: the peer closed its side (after our ``SHUT_WR``,
        if it ``closes``) and every byte it sent was read.

        Raises:
            OSError: ``EBADF`` if closed (also when closed while waiting), ``ENOTCONN``
                if not connected.
        """
        if buflen < 0:
            raise ValueError("negative buffersize in recv")
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            self._check_connected()
            if self._inbox or self._eof or not buflen:
                chunk = bytes(self._inbox[:buflen])
                del self._inbox[:buflen]
                self._record.received += chunk
                await trio.lowlevel.cancel_shielded_checkpoint()
                return chunk
            await self._changed.park()

    async def recv_into(self, buffer: Buffer, nbytes: int = 0, flags: int = 0, /) -> int:
        """:meth:`recv` into ``buffer`` (up to ``nbytes``, or its length); returns the count."""
        with memoryview(buffer) as view:
            chunk = await self.recv(nbytes or len(view), flags)
            view[: len(chunk)] = chunk
        return len(chunk)

    async def wait_writable(self) -> None:
        """Return when ``send`` would take a byte; blocks while a ``window`` is full."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            self._check_open()
            room = None if self.script is None else self.script.window_room(len(self.sent))
            if room is None or room > 0:
                break
            await self._changed.park()
        await trio.lowlevel.cancel_shielded_checkpoint()

    # ----- helpers ------------------------------------------------------------------

    @property
    def _eof(self) -> bool:
        return not self._inbox and (self._peer_closed or self._shut_rd)

    def _check_open(self) -> None:
        if self.closed:
            raise oserror(errno.EBADF)

    def _check_connected(self) -> PeerScript:
        self._check_open()
        if self.connect_state != "connected" or self.script is None:
            raise oserror(errno.ENOTCONN)
        return self.script


# --------------------------------------------------------------------------------------
# FakeNetwork
# --------------------------------------------------------------------------------------


class FakeNetwork(ScriptedNetwork["FakeSocket"], trio.abc.SocketFactory, trio.abc.HostnameResolver):
    """A scripted network: Trio's hostname resolver and socket factory in one object.

    Use it as a context manager inside ``trio.run``: entering installs it through
    :func:`trio.socket.set_custom_hostname_resolver` and
    :func:`trio.socket.set_custom_socket_factory`, and leaving restores whatever was
    installed before (both hooks are per ``trio.run``).

    Scripting (``add_host``, ``script``, ``script_for``, ``default``) and inspection
    (``sockets``, ``lookups``, ``open_sockets()``, ``sockets_to()``, ``received()``) are
    the same as :class:`~trio_sockets.testing.AsyncioFakeNetwork`'s.

    Args:
        families: the address families sockets can be made for; creating a socket of
            another family raises ``OSError(EAFNOSUPPORT)``, as on a host without IPv6.

    Attributes:
        sockets: every :class:`FakeSocket` made, in creation order.
        lookups: every name passed to the resolver, in order (IP literals never are).
        scripts: the scripted addresses, ``(ip, port)`` to :class:`PeerScript`.
        default: the script of every other address: refuse at once.
    """

    def __init__(
        self,
        *,
        families: Iterable[int] = (_stdlib_socket.AF_INET, _stdlib_socket.AF_INET6),
    ) -> None:
        super().__init__(families)
        self._previous: tuple[trio.abc.HostnameResolver | None, trio.abc.SocketFactory | None]
        self._installed = False

    # ----- installing ---------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._installed:
            raise RuntimeError("this FakeNetwork is already installed")
        resolver = trio.socket.set_custom_hostname_resolver(self)
        factory = trio.socket.set_custom_socket_factory(self)
        self._previous = (resolver, factory)
        self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        resolver, factory = self._previous
        trio.socket.set_custom_hostname_resolver(resolver)
        trio.socket.set_custom_socket_factory(factory)
        self._installed = False

    # ----- trio.abc.SocketFactory ---------------------------------------------------

    def socket(
        self,
        family: _stdlib_socket.AddressFamily | int = _stdlib_socket.AF_INET,
        type: _stdlib_socket.SocketKind | int = _stdlib_socket.SOCK_STREAM,
        proto: int = 0,
    ) -> FakeSocket:
        """Make a :class:`FakeSocket` (called by :func:`trio.socket.socket`)."""
        if family not in self._families:
            raise oserror(errno.EAFNOSUPPORT)
        sock = FakeSocket(self, family, type, proto, len(self.sockets))
        self.sockets.append(sock)
        return sock

    # ----- trio.abc.HostnameResolver ------------------------------------------------

    async def getaddrinfo(
        self,
        host: bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[
        tuple[
            Literal[_stdlib_socket.AddressFamily.AF_INET],
            _stdlib_socket.SocketKind,
            int,
            str,
            tuple[str, int],
        ]
        | tuple[
            Literal[_stdlib_socket.AddressFamily.AF_INET6],
            _stdlib_socket.SocketKind,
            int,
            str,
            tuple[str, int, int, int] | tuple[int, bytes],
        ]
    ]:
        """Resolve a name added with :meth:`add_host` (called by Trio's ``getaddrinfo``).

        Returns TCP entries in the order given to :meth:`add_host`, filtered by
        ``family``, after the host's scripted delay.

        Raises:
            socket.gaierror: an unknown name (``EAI_NONAME``) or a non-numeric port
                (``EAI_SERVICE``).
        """
        name = (host or b"localhost").decode("ascii")
        await trio.sleep(self._lookup_delay(name))
        answer: list[Any] = self._answer(name, port, family)
        return answer

    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int
    ) -> tuple[str, str]:
        """Numeric only: the address and port as text (there are no reverse names)."""
        await trio.lowlevel.checkpoint()
        return str(sockaddr[0]), str(sockaddr[1])


async def _wait_like_io(delay: float) -> None:
    """Sleep ``delay`` seconds the way a socket waits for the kernel.

    ``trio.sleep`` ends by cancelling its own scope, so a cancellation arriving in the
    tick the delay ends wins over it. A real connect is woken by I/O readiness instead:
    rescheduled with a value, after which a cancellation no longer touches it. A timer
    task wakes us the same way, so two connects due in the same tick both complete, as
    they can on a real network (and as a happy-eyeballs race must survive).
    """
    task = trio.lowlevel.current_task()
    deadline = trio.current_time() + delay
    timer = trio.CancelScope()

    async def wake_at_deadline() -> None:
        with timer:
            await trio.sleep_until(deadline)
            trio.lowlevel.reschedule(task)

    def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        timer.cancel()
        return trio.lowlevel.Abort.SUCCEEDED

    trio.lowlevel.spawn_system_task(wake_at_deadline, name="FakeSocket connect timer")
    await trio.lowlevel.wait_task_rescheduled(abort)
