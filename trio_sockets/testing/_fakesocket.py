"""The fake sockets of :class:`~trio_sockets.testing.FakeNetwork`, and their scripts.

See :mod:`trio_sockets.testing.fakenet` for the network that makes them and how to use it.
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import ipaddress
import math
import os
import socket as _stdlib_socket
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import trio

if TYPE_CHECKING:
    from typing import Self

    from typing_extensions import Buffer

    from .fakenet import FakeNetwork

__all__ = ["ConnectOutcome", "FakeSocket", "PeerScript"]


#: How a scripted ``connect()`` ends once its delay has passed: ``"connect"`` succeeds,
#: ``"refuse"`` raises ``ConnectionRefusedError`` (``ECONNREFUSED``), ``"blackhole"``
#: never returns (as a host that drops SYNs), and an ``OSError`` instance is raised as is.
ConnectOutcome: TypeAlias = Literal["connect", "refuse", "blackhole"] | OSError

#: The local address a fake socket reports once connected (unless it was bound to a
#: specific IP): documentation prefixes, so they never look like a real interface.
LOCAL_IPV4: Final = "198.51.100.1"
LOCAL_IPV6: Final = "2001:db8:ffff::1"
# Fake descriptors count up from here: far above any real one, so code that polls a
# fileno() it was given sees POLLNVAL, never the events of some unrelated open file.
_FIRST_FILENO: Final = 1 << 30
_FIRST_LOCAL_PORT: Final = 50000  # fake ephemeral ports count up from here

_Key: TypeAlias = tuple[str, int]


def _oserror(code: int, cls: type[OSError] = OSError) -> OSError:
    return cls(code, os.strerror(code))


def _ip_key(host: object) -> str:
    """The canonical text of an IP literal (scope id dropped), or ``ValueError``."""
    return ipaddress.ip_address(str(host).partition("%")[0]).compressed


def _address_key(address: object) -> _Key:
    if not isinstance(address, tuple) or len(address) < 2:
        raise ValueError(f"expected an (ip, port) sockaddr tuple, got {address!r}")
    host, port = address[0], address[1]
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"port must be an integer, got {port!r} in {address!r}")
    try:
        return _ip_key(host), port
    except ValueError:
        raise ValueError(
            f"{host!r} in {address!r} is not an IP address: script addresses, "
            "and map names to them with add_host()"
        ) from None


def _family_of(ip: str) -> _stdlib_socket.AddressFamily:
    version = ipaddress.ip_address(ip.partition("%")[0]).version
    return _stdlib_socket.AF_INET6 if version == 6 else _stdlib_socket.AF_INET


def _normalize_name(name: str) -> str:
    # Trio hands the resolver IDNA-encoded bytes; compare names the same way.
    return name.encode("idna").decode("ascii").lower() if not name.isascii() else name.lower()


# --------------------------------------------------------------------------------------
# Scripts
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PeerScript:
    """How one address behaves; made by :meth:`FakeNetwork.script`.

    Attributes:
        delay: seconds ``connect()`` takes before its outcome (virtual under a MockClock).
        outcome: see :data:`ConnectOutcome`.
        reply: bytes the peer sends as soon as the connection is up, or ``"echo"`` to
            send back every byte it receives.
        closes: whether the peer closes its side (``recv`` returns ``b""``) once we have
            shut down ours; ``False`` keeps it open, so a reader waits forever.
        max_send: at most this many bytes accepted per ``send`` call (partial sends).
        reset_after: the peer takes this many bytes in all, then every further ``send``
            raises ``ConnectionResetError`` (``ECONNRESET``).
        window: the peer takes this many bytes in all and then stops reading: ``send``
            and ``wait_writable`` block until cancelled (a stalled receiver).
    """

    delay: float = 0.0
    outcome: ConnectOutcome = "connect"
    reply: bytes | Literal["echo"] = "echo"
    closes: bool = True
    max_send: int | None = None
    reset_after: int | None = None
    window: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.delay, bool) or not isinstance(self.delay, (int, float)):
            raise TypeError(f"delay must be a number of seconds, got {self.delay!r}")
        if math.isnan(self.delay) or self.delay < 0:
            raise ValueError(f"delay must be a non-negative number of seconds, got {self.delay}")
        if not isinstance(self.outcome, OSError) and self.outcome not in (
            "connect",
            "refuse",
            "blackhole",
        ):
            raise ValueError(
                "outcome must be 'connect', 'refuse', 'blackhole' or an OSError instance, "
                f"got {self.outcome!r}"
            )
        if self.reply != "echo" and not isinstance(self.reply, bytes):
            raise TypeError(f"reply must be bytes or 'echo', got {self.reply!r}")
        for name, low in (("max_send", 1), ("reset_after", 0), ("window", 0)):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < low
            ):
                raise ValueError(f"{name} must be None or an integer >= {low}, got {value!r}")


# --------------------------------------------------------------------------------------
# FakeSocket
# --------------------------------------------------------------------------------------


class FakeSocket(trio.socket.SocketType):
    """A Trio socket whose peer follows a :class:`PeerScript`; made by :class:`FakeNetwork`.

    It implements what a TCP client needs: ``connect``, ``bind``, ``send``, ``recv``,
    ``wait_writable``, ``is_readable``, ``shutdown``, ``close``, ``fileno``,
    ``getpeername``, ``getsockname``, ``setsockopt`` (ignored) and the ``family``,
    ``type`` and ``proto`` properties. Each blocking method is a checkpoint; ``send`` and
    ``recv`` either complete or are cancelled before moving any byte, as Trio's own do,
    and a cancelled ``connect`` closes the socket, as Trio's does.

    Attributes for tests to inspect:
        network: the :class:`FakeNetwork` that made it.
        closed: ``close()`` was called.
        address: the sockaddr passed to ``connect()``, or ``None``.
        script: the :class:`PeerScript` of that address, or ``None`` before ``connect()``.
        connect_state: ``None`` (never connected), ``"pending"``, ``"connected"``,
            ``"refused"``, ``"failed"`` or ``"cancelled"``.
        connect_started, connect_ended: ``trio.current_time()`` at both ends of
            ``connect()`` (``None`` until then).
        sent: every byte the peer accepted from this socket.
        sends: how many bytes each ``send`` call moved, in order (partial sends show).
        received: every byte ``recv`` returned.
        bound: the address given to ``bind()``, or ``None``.
    """

    def __init__(
        self, network: FakeNetwork, family: int, type_: int, proto: int, number: int
    ) -> None:
        super().__init__()
        self.network = network
        self._family = _stdlib_socket.AddressFamily(family)
        self._type = _stdlib_socket.SocketKind(type_)
        self._proto = proto
        self._number = number
        self.closed = False
        self.address: tuple[Any, ...] | None = None
        self.script: PeerScript | None = None
        self.connect_state: (
            Literal["pending", "connected", "refused", "failed", "cancelled"] | None
        ) = None
        self.connect_started: float | None = None
        self.connect_ended: float | None = None
        self.sent = bytearray()
        self.sends: list[int] = []
        self.received = bytearray()
        self.bound: tuple[Any, ...] | None = None
        self._inbox = bytearray()  # what the peer has sent and we have not read
        self._shut_wr = False
        self._shut_rd = False
        self._peer_closed = False
        # Wakes tasks blocked in recv/send/wait_writable when the state changes.
        self._changed = trio.lowlevel.ParkingLot()

    def __repr__(self) -> str:
        state = "closed" if self.closed else (self.connect_state or "new")
        return f"<FakeSocket #{self._number} {self._family.name} {state} to {self.address!r}>"

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

    @property
    def did_shutdown_SHUT_WR(self) -> bool:
        return self._shut_wr

    @property
    def connected(self) -> bool:
        """``connect()`` succeeded (the socket may have been closed since)."""
        return self.connect_state == "connected"

    def fileno(self) -> int:
        """A fake descriptor number, or -1 once closed (as a closed stdlib socket)."""
        return -1 if self.closed else _FIRST_FILENO + self._number

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
            port = port or _FIRST_LOCAL_PORT + self._number
        return (ip, port, 0, 0) if v6 else (ip, port)

    def is_readable(self) -> bool:
        """True when ``recv`` would return at once (bytes pending or end of stream)."""
        self._check_open()
        return bool(self._inbox) or self._eof

    def shutdown(self, flag: int) -> None:
        """``SHUT_WR`` half-closes: a scripted peer that ``closes`` then closes its side."""
        self._check_connected()
        if flag in (_stdlib_socket.SHUT_WR, _stdlib_socket.SHUT_RDWR):
            self._shut_wr = True
            if self.script is not None and self.script.closes:
                self._peer_closed = True
        if flag in (_stdlib_socket.SHUT_RD, _stdlib_socket.SHUT_RDWR):
            self._shut_rd = True
        self._changed.unpark_all()

    def close(self) -> None:
        """Close the socket; closing twice is harmless. Blocked callers get ``EBADF``."""
        if not self.closed:
            self.closed = True
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
        if ip and _family_of(ip) != self._family:
            raise OSError(errno.EAFNOSUPPORT, f"cannot bind {self._family.name} socket to {ip!r}")
        self.bound = tuple(address)

    async def connect(self, address: tuple[Any, ...]) -> None:
        """Sleep the scripted delay, then connect, refuse, hang or raise as scripted.

        Raises:
            ConnectionRefusedError: the outcome is ``"refuse"`` (or unscripted).
            OSError: the scripted error; ``EBADF`` if closed; ``EISCONN`` if connect was
                already called; ``EAFNOSUPPORT`` for an address of the other family.
            trio.Cancelled: cancelled while connecting; the socket is then closed.
        """
        self._check_open()
        if self.address is not None:
            raise _oserror(errno.EISCONN)
        key = _address_key(address)
        if _family_of(key[0]) != self._family:
            raise OSError(
                errno.EAFNOSUPPORT, f"cannot connect {self._family.name} socket to {key[0]!r}"
            )
        script = self.network.script_for(key)
        self.address, self.script = tuple(address), script
        self.connect_state, self.connect_started = "pending", trio.current_time()
        try:
            await _wait_like_io(script.delay)
            if script.outcome == "blackhole":
                await trio.sleep_forever()
        except trio.Cancelled:
            # Like Trio: a connect cannot be undone, so a cancelled one closes the socket.
            self.connect_state, self.connect_ended = "cancelled", trio.current_time()
            self.close()
            raise
        # No checkpoint from here on: the outcome is decided in the tick the delay ends.
        self.connect_ended = trio.current_time()
        if script.outcome == "refuse":
            self.connect_state = "refused"
            raise _oserror(errno.ECONNREFUSED, ConnectionRefusedError)
        if isinstance(script.outcome, OSError):
            self.connect_state = "failed"
            raise script.outcome
        self.connect_state = "connected"
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
            if self._shut_wr:
                raise _oserror(errno.EPIPE, BrokenPipeError)
            if script.reset_after is not None and len(self.sent) >= script.reset_after:
                raise _oserror(errno.ECONNRESET, ConnectionResetError)
            room = self._window_room(script)
            if room is None or room > 0:
                break
            await self._changed.park()  # a stalled peer: only close() wakes us
        with memoryview(data) as raw, raw.cast("B") as view:
            count = len(view) if room is None else min(len(view), room)
            if script.max_send is not None:
                count = min(count, script.max_send)
            if script.reset_after is not None:
                count = min(count, script.reset_after - len(self.sent))
            chunk = bytes(view[:count])
        self.sent += chunk
        self.sends.append(count)
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
                self.received += chunk
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
            room = None if self.script is None else self._window_room(self.script)
            if room is None or room > 0:
                break
            await self._changed.park()
        await trio.lowlevel.cancel_shielded_checkpoint()

    # ----- helpers ------------------------------------------------------------------

    @property
    def _eof(self) -> bool:
        return not self._inbox and (self._peer_closed or self._shut_rd)

    def _window_room(self, script: PeerScript) -> int | None:
        # None: the peer reads everything; else how many more bytes it will take.
        return None if script.window is None else script.window - len(self.sent)

    def _check_open(self) -> None:
        if self.closed:
            raise _oserror(errno.EBADF)

    def _check_connected(self) -> PeerScript:
        self._check_open()
        if self.connect_state != "connected" or self.script is None:
            raise _oserror(errno.ENOTCONN)
        return self.script


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
