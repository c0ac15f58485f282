"""A scripted fake network for testing Trio code that opens TCP connections.

Trio has no public fake network (python-trio/trio#170); its own happy-eyeballs tests
script one through two public hooks, :func:`trio.socket.set_custom_hostname_resolver`
and :func:`trio.socket.set_custom_socket_factory`. :class:`FakeNetwork` is that fake,
made reusable: install it with ``with FakeNetwork() as net:`` inside ``trio.run`` (or a
pytest-trio test), tell it which names resolve to which addresses, and script how each
address behaves: how long ``connect()`` takes, whether it connects, is refused, never
answers or fails with an error of your choice, and what the peer does with the bytes it
is sent. Every socket made while the network is installed is a :class:`FakeSocket`,
recorded in :attr:`FakeNetwork.sockets`, so a test can check that every socket but the
winner was closed and what each peer received.

Delays are ``trio.sleep`` calls, so under a :class:`trio.testing.MockClock` (pytest-trio's
``autojump_clock`` fixture) they are virtual time: a test of a 10-second timeout runs in
microseconds, and ``trio.current_time()`` tells exactly when each step happened.

Example (a pytest-trio test)::

    import trio
    import trio_sockets
    from trio_sockets.testing import FakeNetwork

    async def test_falls_back_to_ipv4(autojump_clock):
        with FakeNetwork() as net:
            net.add_host("example.test", "2001:db8::1", "192.0.2.1")
            net.script(("2001:db8::1", 80), outcome="blackhole")
            net.script(("192.0.2.1", 80), delay=0.125, reply=b"hello")
            conn = await trio_sockets.open_connection("example.test", 80)
            # IPv6 got its 0.25 s head start, then IPv4 connected 0.125 s later.
            assert trio.current_time() == 0.375
            assert conn.remote_address == ("192.0.2.1", 80)
            assert net.open_sockets() == [conn.socket]
            await conn.send_all(b"ping")
            assert net.received(("192.0.2.1", 80)) == b"ping"
            assert await conn.receive_some() == b"hello"
            await conn.aclose()

Behaviour in brief:

* Names: :meth:`FakeNetwork.add_host` gives the addresses in resolver order. An unknown
  name fails like the system resolver (``socket.gaierror``, ``EAI_NONAME``). IP literals
  never reach the resolver (Trio and this package skip it for numeric hosts), but their
  sockets still come from the fake network, so numeric targets work too.
* Addresses: :meth:`FakeNetwork.script` scripts one ``(ip, port)``. An address that was
  not scripted refuses at once (``ConnectionRefusedError``, ``ECONNREFUSED``, no delay),
  as a real host with nothing listening does; change :attr:`FakeNetwork.default` to
  script every other address at once.
* Peers: a connected peer accepts every byte (unless scripted otherwise) and, by
  default, echoes it back; once we shut down our sending side it closes its own, so
  ``recv`` then returns ``b""`` after the pending bytes.
"""

from __future__ import annotations

import errno
import socket as _stdlib_socket
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import trio

from ._fakesocket import (
    ConnectOutcome,
    FakeSocket,
    PeerScript,
    _address_key,
    _family_of,
    _ip_key,
    _Key,
    _normalize_name,
    _oserror,
)

if TYPE_CHECKING:
    from typing import Self


__all__ = ["ConnectOutcome", "FakeNetwork", "FakeSocket", "PeerScript"]


# --------------------------------------------------------------------------------------
# FakeNetwork
# --------------------------------------------------------------------------------------


class FakeNetwork(trio.abc.SocketFactory, trio.abc.HostnameResolver):
    """A scripted network: Trio's hostname resolver and socket factory in one object.

    Use it as a context manager inside ``trio.run``: entering installs it through
    :func:`trio.socket.set_custom_hostname_resolver` and
    :func:`trio.socket.set_custom_socket_factory`, and leaving restores whatever was
    installed before (both hooks are per ``trio.run``).

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
        self.sockets: list[FakeSocket] = []
        self.lookups: list[str] = []
        self.scripts: dict[_Key, PeerScript] = {}
        self.default = PeerScript(outcome="refuse")
        self._families = frozenset(families)
        self._hosts: dict[str, tuple[tuple[str, ...], float]] = {}
        self._previous: tuple[trio.abc.HostnameResolver | None, trio.abc.SocketFactory | None]
        self._installed = False

    # ----- scripting ----------------------------------------------------------------

    def add_host(self, name: str, *ips: str, delay: float = 0.0) -> None:
        """Make ``name`` resolve to ``ips``, in this order, after ``delay`` seconds.

        With no ``ips`` the resolver returns an empty list (which real resolvers never
        do, but code should survive it). Names compare case-insensitively.
        """
        for ip in ips:
            _ip_key(ip)  # raises ValueError for anything but an IP literal
        PeerScript(delay=delay)  # the same check of the delay
        self._hosts[_normalize_name(name)] = (tuple(ips), float(delay))

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
        self.scripts[_address_key(address)] = script
        return script

    def script_for(self, address: tuple[Any, ...]) -> PeerScript:
        """The script ``address`` follows: its own, or :attr:`default`."""
        return self.scripts.get(_address_key(address), self.default)

    # ----- inspection ---------------------------------------------------------------

    def open_sockets(self) -> list[FakeSocket]:
        """The sockets not closed yet, in creation order."""
        return [sock for sock in self.sockets if not sock.closed]

    def sockets_to(self, address: tuple[Any, ...]) -> list[FakeSocket]:
        """The sockets whose ``connect()`` aimed at ``address``, in creation order."""
        key = _address_key(address)
        return [s for s in self.sockets if s.address is not None and _address_key(s.address) == key]

    def received(self, address: tuple[Any, ...]) -> bytes:
        """Every byte the peer at ``address`` received, over all its connections."""
        return b"".join(bytes(sock.sent) for sock in self.sockets_to(address))

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
            raise _oserror(errno.EAFNOSUPPORT)
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
        self.lookups.append(name)
        known = self._hosts.get(_normalize_name(name))
        await trio.sleep(known[1] if known is not None else 0)
        if known is None:
            raise _stdlib_socket.gaierror(_stdlib_socket.EAI_NONAME, "Name or service not known")
        number = _port_number(port)
        kind = _stdlib_socket.SocketKind(type or _stdlib_socket.SOCK_STREAM)
        proto = proto or _stdlib_socket.IPPROTO_TCP
        entries: list[Any] = []
        for ip in known[0]:
            ip_family = _family_of(ip)
            if family not in (0, ip_family):
                continue
            if ip_family == _stdlib_socket.AF_INET6:
                entries.append((ip_family, kind, proto, "", (ip, number, 0, 0)))
            else:
                entries.append((ip_family, kind, proto, "", (ip, number)))
        return entries

    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int
    ) -> tuple[str, str]:
        """Numeric only: the address and port as text (there are no reverse names)."""
        await trio.lowlevel.checkpoint()
        return str(sockaddr[0]), str(sockaddr[1])


def _port_number(port: bytes | str | int | None) -> int:
    if isinstance(port, int):
        return port
    text = port.decode("ascii") if isinstance(port, bytes) else (port or "0")
    if not (text.isascii() and text.isdigit()):
        raise _stdlib_socket.gaierror(
            _stdlib_socket.EAI_SERVICE, f"Servname {text!r} not supported (fake network)"
        )
    return int(text)
