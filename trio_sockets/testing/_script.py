"""The framework-neutral half of the fake networks: scripts, addresses and inspection.

:class:`~trio_sockets.testing.FakeNetwork` (Trio) and
:class:`~trio_sockets.testing.AsyncioFakeNetwork` (asyncio) share everything here: how
names resolve, how each address is scripted (:class:`PeerScript`), the canonical form of
addresses, and the inspection of the sockets made. Nothing here awaits or reads a
clock; each network adds its framework's sleeps, sockets and installation.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import math
import os
import socket as _stdlib_socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, Never, TypeAlias, TypeVar, overload

__all__ = ["LOCAL_IPV4", "LOCAL_IPV6", "ConnectOutcome", "PeerScript", "addrinfo"]


#: How a scripted ``connect()`` ends once its delay has passed: ``"connect"`` succeeds,
#: ``"refuse"`` raises ``ConnectionRefusedError`` (``ECONNREFUSED``), ``"blackhole"``
#: never returns (as a host that drops SYNs), and an ``OSError`` instance is raised as is.
ConnectOutcome: TypeAlias = Literal["connect", "refuse", "blackhole"] | OSError

#: The local address a fake socket reports once connected (unless it was bound to a
#: specific IP): documentation prefixes, so they never look like a real interface.
LOCAL_IPV4: Final = "198.51.100.1"
LOCAL_IPV6: Final = "2001:db8:ffff::1"
FIRST_LOCAL_PORT: Final = 50000  # fake ephemeral ports count up from here

Key: TypeAlias = tuple[str, int]
#: One entry of a ``getaddrinfo`` answer: ``(family, type, proto, canonname, sockaddr)``.
AddrInfo: TypeAlias = tuple[
    _stdlib_socket.AddressFamily, _stdlib_socket.SocketKind, int, str, tuple[Any, ...]
]


def oserror(code: int, cls: type[OSError] = OSError) -> OSError:
    """``cls(code, strerror)``, as the kernel's own errors read."""
    return cls(code, os.strerror(code))


def ip_key(host: object) -> str:
    """The canonical text of an IP literal (scope id dropped), or ``ValueError``."""
    return ipaddress.ip_address(str(host).partition("%")[0]).compressed


def address_key(address: object) -> Key:
    """``(canonical ip, port)`` of a sockaddr tuple, or ``ValueError`` naming it."""
    if not isinstance(address, tuple) or len(address) < 2:
        raise ValueError(f"expected an (ip, port) sockaddr tuple, got {address!r}")
    host, port = address[0], address[1]
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"port must be an integer, got {port!r} in {address!r}")
    try:
        return ip_key(host), port
    except ValueError:
        raise ValueError(
            f"{host!r} in {address!r} is not an IP address: script addresses, "
            "and map names to them with add_host()"
        ) from None


def family_of(ip: str) -> _stdlib_socket.AddressFamily:
    version = ipaddress.ip_address(ip.partition("%")[0]).version
    return _stdlib_socket.AF_INET6 if version == 6 else _stdlib_socket.AF_INET


def normalize_name(name: str) -> str:
    # Trio hands the resolver IDNA-encoded bytes; compare names the same way.
    return name.encode("idna").decode("ascii").lower() if not name.isascii() else name.lower()


def port_number(port: bytes | str | int | None) -> int:
    """The port a resolver was asked about, or ``gaierror(EAI_SERVICE)`` for a name."""
    if isinstance(port, int):
        return port
    text = port.decode("ascii") if isinstance(port, bytes) else (port or "0")
    if not (text.isascii() and text.isdigit()):
        raise _stdlib_socket.gaierror(
            _stdlib_socket.EAI_SERVICE, f"Servname {text!r} not supported (fake network)"
        )
    return int(text)


def addrinfo(*sockaddrs: tuple[Any, ...], family: int = 0) -> list[AddrInfo]:
    """What ``getaddrinfo`` answers for these addresses: one TCP entry each, in order.

    The helper every fake resolver needs, whatever its hook (Trio's custom hostname
    resolver, a patched ``loop.getaddrinfo``). Each sockaddr is ``(ip, port)`` or an
    IPv6 ``(ip, port, flowinfo, scope_id)``; an IPv6 pair becomes the 4-tuple that
    ``getaddrinfo`` returns. ``family`` filters as ``getaddrinfo``'s own argument does.

    >>> addrinfo(("192.0.2.1", 80), ("2001:db8::1", 80))[1][4]
    ('2001:db8::1', 80, 0, 0)

    Raises:
        ValueError: an address is not an ``(ip literal, port)`` tuple.
    """
    entries: list[AddrInfo] = []
    for sockaddr in sockaddrs:
        address_key(sockaddr)  # names the bad address
        ip_family = family_of(str(sockaddr[0]))
        if family not in (0, ip_family):
            continue
        if ip_family == _stdlib_socket.AF_INET6 and len(sockaddr) == 2:
            sockaddr = (*sockaddr, 0, 0)
        entries.append(
            (ip_family, _stdlib_socket.SOCK_STREAM, _stdlib_socket.IPPROTO_TCP, "", sockaddr)
        )
    return entries


# --------------------------------------------------------------------------------------
# Scripts
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PeerScript:
    """How one address behaves; made by ``FakeNetwork.script``.

    Attributes:
        delay: seconds ``connect()`` takes before its outcome (virtual time in tests).
        outcome: see :data:`ConnectOutcome`.
        reply: bytes the peer sends as soon as the connection is up, or ``"echo"`` to
            send back every byte it receives.
        closes: whether the peer closes its side (``recv`` returns ``b""``) once we have
            shut down ours; ``False`` keeps it open, so a reader waits forever.
        max_send: at most this many bytes accepted per ``send`` call (partial sends).
        reset_after: the peer takes this many bytes in all, then every further ``send``
            raises ``ConnectionResetError`` (``ECONNRESET``).
        window: the peer takes this many bytes in all and then stops reading: ``send``
            and writability waits block until cancelled (a stalled receiver).
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

    def window_room(self, sent: int) -> int | None:
        """How many more bytes the peer takes after ``sent``; ``None``: no limit."""
        return None if self.window is None else self.window - sent

    def send_count(self, wanted: int, sent: int) -> int:
        """How many of ``wanted`` bytes one ``send`` moves, after ``sent`` in all.

        The caller has checked that the window has room and no reset is due.
        """
        count = wanted
        for limit in (
            self.window_room(sent),
            self.max_send,
            None if self.reset_after is None else self.reset_after - sent,
        ):
            if limit is not None:
                count = min(count, limit)
        return count

    def resets(self, sent: int) -> bool:
        """The peer's ``reset_after`` budget is used up: the next ``send`` fails."""
        return self.reset_after is not None and sent >= self.reset_after


# --------------------------------------------------------------------------------------
# The network: names, scripts and inspection
# --------------------------------------------------------------------------------------


#: Where a fake socket's ``connect()`` stands: ``None`` before it is called.
ConnectState: TypeAlias = Literal["pending", "connected", "refused", "failed", "cancelled"]


@dataclasses.dataclass(slots=True, eq=False, kw_only=True)
class SocketRecord:
    """What a fake socket records for tests to read back, on either framework.

    Each fake socket keeps one, writes it as it goes, and shows it through the read-only
    attributes of :class:`RecordedSocket`.

    Attributes:
        number: the socket's index in its network's ``sockets``.
        closed: ``close()`` was called.
        address: the sockaddr passed to ``connect()``, or ``None``.
        script: the :class:`PeerScript` of that address, or ``None`` before ``connect()``.
        connect_state: see :data:`ConnectState`.
        connect_started, connect_ended: the framework's clock at both ends of
            ``connect()`` (``None`` until then).
        sent: every byte the peer accepted from this socket.
        sends: how many bytes each ``send`` call moved, in order (partial sends show).
        received: every byte ``recv`` returned.
        bound: the local address the socket was bound to, or ``None``.
        shut_wr: our sending side was shut down (``SHUT_WR`` or ``SHUT_RDWR``).
    """

    number: int
    closed: bool = False
    address: tuple[Any, ...] | None = None
    script: PeerScript | None = None
    connect_state: ConnectState | None = None
    connect_started: float | None = None
    connect_ended: float | None = None
    sent: bytearray = dataclasses.field(default_factory=bytearray)
    sends: list[int] = dataclasses.field(default_factory=list)
    received: bytearray = dataclasses.field(default_factory=bytearray)
    bound: tuple[Any, ...] | None = None
    shut_wr: bool = False

    def start_connect(
        self,
        address: tuple[Any, ...],
        family: _stdlib_socket.AddressFamily,
        network: ScriptedNetwork[Any],
        now: float,
    ) -> PeerScript:
        """Check a ``connect()`` to ``address`` and record its start; return its script.

        Raises:
            OSError: ``EISCONN`` if connect was already called; ``EAFNOSUPPORT`` for an
                address of the other family.
            ValueError: ``address`` is not an ``(ip, port)`` sockaddr.
        """
        if self.address is not None:
            raise oserror(errno.EISCONN)
        key = address_key(address)
        if family_of(key[0]) != family:
            raise OSError(errno.EAFNOSUPPORT, f"cannot connect {family.name} socket to {key[0]!r}")
        self.script = script = network.script_for(key)
        self.address = tuple(address)
        self.connect_state, self.connect_started = "pending", now
        return script

    def end_connect(self, now: float) -> None:
        """Record the end of the scripted delay; raise a refusal or error as scripted.

        Returning means the connect succeeds: the socket records ``"connected"`` once
        its I/O reaches the peer.
        """
        assert self.script is not None
        self.connect_ended = now
        outcome = self.script.outcome
        if outcome == "refuse":
            self.connect_state = "refused"
            raise oserror(errno.ECONNREFUSED, ConnectionRefusedError)
        if isinstance(outcome, OSError):
            self.connect_state = "failed"
            raise outcome


T = TypeVar("T")


class Recorded(Generic[T]):
    """A read-only attribute of a fake socket: a field of its :class:`SocketRecord`."""

    def __init__(self, field: str = "") -> None:
        self._field = field

    def __set_name__(self, owner: type, name: str) -> None:
        self._field = self._field or name

    @overload
    def __get__(self, sock: None, owner: type) -> Recorded[T]: ...
    @overload
    def __get__(self, sock: RecordedSocket, owner: type | None = None) -> T: ...
    def __get__(self, sock: RecordedSocket | None, owner: type | None = None) -> T | Recorded[T]:
        if sock is None:
            return self
        value: T = getattr(sock._record, self._field)
        return value

    def __set__(self, sock: RecordedSocket, value: Never) -> None:
        # A data descriptor, as a property is: an assignment cannot shadow the record.
        raise AttributeError(f"{self._field!r} is read-only: the fake socket records it")


class RecordedSocket:
    """The attributes tests inspect on a fake socket, the same on both frameworks.

    Each is read from the socket's :class:`SocketRecord`, its ``_record``.

    Attributes:
        closed: ``close()`` was called.
        address: the sockaddr passed to ``connect()``, or ``None``.
        script: the :class:`PeerScript` of that address, or ``None`` before ``connect()``.
        connect_state: ``None`` (never connected), ``"pending"``, ``"connected"``,
            ``"refused"``, ``"failed"`` or ``"cancelled"``.
        connect_started, connect_ended: the framework's clock (``trio.current_time()``,
            ``loop.time()``) at both ends of ``connect()`` (``None`` until then).
        connected: ``connect()`` succeeded (the socket may have been closed since).
        sent: every byte the peer accepted from this socket.
        sends: how many bytes each ``send`` call moved, in order (partial sends show).
        received: every byte ``recv`` returned.
        did_shutdown_SHUT_WR: our sending side was shut down.
    """

    __slots__ = ()  # the asyncio fake may add no storage to its socket

    if TYPE_CHECKING:

        @property
        def _record(self) -> SocketRecord: ...

    closed = Recorded[bool]()
    address = Recorded[tuple[Any, ...] | None]()
    script = Recorded[PeerScript | None]()
    connect_state = Recorded[ConnectState | None]()
    connect_started = Recorded[float | None]()
    connect_ended = Recorded[float | None]()
    sent = Recorded[bytearray]()
    sends = Recorded[list[int]]()
    received = Recorded[bytearray]()
    did_shutdown_SHUT_WR = Recorded[bool]("shut_wr")

    @property
    def connected(self) -> bool:
        """``connect()`` succeeded (the socket may have been closed since)."""
        return self._record.connect_state == "connected"


S = TypeVar("S", bound=RecordedSocket)


class ScriptedNetwork(Generic[S]):
    """The scripting and inspection API both fake networks share.

    Attributes:
        sockets: every fake socket made, in creation order.
        lookups: every name passed to the resolver, in order (IP literals never are).
        scripts: the scripted addresses, ``(ip, port)`` to :class:`PeerScript`.
        default: the script of every other address: refuse at once.
    """

    def __init__(self, families: Iterable[int]) -> None:
        self.sockets: list[S] = []
        self.lookups: list[str] = []
        self.scripts: dict[Key, PeerScript] = {}
        self.default = PeerScript(outcome="refuse")
        self._families = frozenset(families)
        self._hosts: dict[str, tuple[tuple[str, ...], float]] = {}

    # ----- scripting ----------------------------------------------------------------

    def add_host(self, name: str, *ips: str, delay: float = 0.0) -> None:
        """Make ``name`` resolve to ``ips``, in this order, after ``delay`` seconds.

        With no ``ips`` the resolver returns an empty list (which real resolvers never
        do, but code should survive it). Names compare case-insensitively.
        """
        for ip in ips:
            ip_key(ip)  # raises ValueError for anything but an IP literal
        PeerScript(delay=delay)  # the same check of the delay
        self._hosts[normalize_name(name)] = (tuple(ips), float(delay))

    def script(
        self,
        address: tuple[str, int],
        *,
        delay: float = 0.0,
        outcome: ConnectOutcome = "connect",
        reply: bytes | Literal["echo"] = "echo",
        closes: bool = True,
        max_send: int | None = None,
        reset_after: int | None = None,
        window: int | None = None,
    ) -> PeerScript:
        """Script how ``address`` (an ``(ip, port)`` pair) behaves; see :class:`PeerScript`.

        Scripting the same address again replaces its script.
        """
        script = PeerScript(delay, outcome, reply, closes, max_send, reset_after, window)
        self.scripts[address_key(address)] = script
        return script

    def script_for(self, address: tuple[Any, ...]) -> PeerScript:
        """The script ``address`` follows: its own, or :attr:`default`."""
        return self.scripts.get(address_key(address), self.default)

    # ----- inspection ---------------------------------------------------------------

    def open_sockets(self) -> list[S]:
        """The sockets not closed yet, in creation order."""
        return [sock for sock in self.sockets if not sock.closed]

    def sockets_to(self, address: tuple[Any, ...]) -> list[S]:
        """The sockets whose ``connect()`` aimed at ``address``, in creation order."""
        key = address_key(address)
        return [s for s in self.sockets if s.address is not None and address_key(s.address) == key]

    def received(self, address: tuple[Any, ...]) -> bytes:
        """Every byte the peer at ``address`` received, over all its connections."""
        return b"".join(bytes(sock.sent) for sock in self.sockets_to(address))

    # ----- for the resolvers --------------------------------------------------------

    def _lookup_delay(self, name: str) -> float:
        """Record a lookup of ``name``; how long it takes (unknown names fail at once)."""
        self.lookups.append(name)
        known = self._hosts.get(normalize_name(name))
        return known[1] if known is not None else 0.0

    def _answer(self, name: str, port: bytes | str | int | None, family: int) -> list[AddrInfo]:
        """The resolver's answer, once the lookup's delay has passed.

        Raises:
            socket.gaierror: an unknown name (``EAI_NONAME``) or a non-numeric port
                (``EAI_SERVICE``).
        """
        known = self._hosts.get(normalize_name(name))
        if known is None:
            raise _stdlib_socket.gaierror(_stdlib_socket.EAI_NONAME, "Name or service not known")
        number = port_number(port)
        return addrinfo(*((ip, number) for ip in known[0]), family=family)
