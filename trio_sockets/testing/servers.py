"""Loopback servers for tests, the demo, the benchmark and ``trio-sockets serve``.

They run in a background thread on plain ``selectors``, outside any event loop, so the
same server serves the Trio port and the asyncio port alike and never shares a loop with
the code under test. Modes:

- ``sink``: accepts, reads and discards everything.
- ``echo``: sends back what it reads; closes its side after the client's end of stream.
  It holds at most ``ECHO_BUFFER`` bytes per client (so do ``hold`` and ``trickle``):
  when a client does not read its echo, the server stops reading from it, and the
  client's sends meet backpressure.
- ``slow``: reads a small chunk now and then through a small receive buffer, so that a
  large send meets backpressure.
- ``reset``: reads ``reset_after`` bytes, then resets the connection (RST).
- ``blackhole``: listens with a full accept queue, so that new connection attempts get
  no answer at all (their SYNs are dropped), as behind a firewall.
- ``hold``: sends back what it reads, and never closes its side, not even after the
  client's end of stream: a server waiting for the next request (Redis, HTTP
  keep-alive). A client must end the reply itself (an idle timeout, a marker).
- ``trickle``: sends back what it reads one byte per ``send()``, ``slow_interval``
  seconds apart; closes its side after the client's end of stream, once all is sent.

With ``tls=`` (a server-side :class:`ssl.SSLContext`, such as one from
:func:`tls_server_context`), ``sink``, ``echo`` and ``slow`` speak TLS: they count and
echo the plaintext, take a TCP end of stream with or without a close_notify alert as the
client's end of stream, and send a close_notify before they close. A plain ``sink`` is
also a TLS server that never answers a handshake.

Every server binds loopback by default, port 0 unless told otherwise, and counts what it
received, so a test can check that bytes received equal bytes sent. Out of file
descriptors (EMFILE on accept), a server stops accepting for ``ACCEPT_BACKOFF`` seconds
instead of spinning on a listener that stays readable.

Example::

    with LoopbackServer("echo") as server:
        report = trio.run(connect_check_send, server.target, b"ping")
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import ssl
import struct
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

from .._addresses import format_address

if TYPE_CHECKING:
    import datetime

    import trustme

__all__ = [
    "MODES",
    "TLS_MODES",
    "LoopbackServer",
    "Mode",
    "blackhole_listener",
    "ipv6_loopback",
    "refusing_socket",
    "tls_server_context",
]

Mode: TypeAlias = Literal["sink", "echo", "slow", "reset", "blackhole", "hold", "trickle"]
MODES: Final[tuple[Mode, ...]] = ("sink", "echo", "slow", "reset", "blackhole", "hold", "trickle")
# The modes that send back what they read.
_ECHOING: Final = frozenset({"echo", "hold", "trickle"})

READ_CHUNK: Final = 262144  # bytes per recv for sink and echo
SLOW_RCVBUF: Final = 4096  # bytes: the kernel buffer of a slow reader, kept small
ECHO_BUFFER: Final = 1 << 20  # bytes an echo server holds per client, at most
ACCEPT_BACKOFF: Final = 0.1  # seconds without accepting after running out of fds
_SELECT_INTERVAL: Final = 0.05  # seconds between checks for close()
# accept() errors that say the process (or the system) is out of something, not that
# one client gave up: retrying at once fails the same way, and the listener stays
# readable, so a select loop would spin at 100% CPU until an fd frees.
_OUT_OF_RESOURCES: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
TLS_MODES: Final[tuple[Mode, ...]] = ("sink", "echo", "slow")
# With TLS, read at least one whole record (2**14 bytes of plaintext, RFC 8446 section
# 5.1) per recv, and write at most one: what the ssl module decrypted and holds back
# would not wake the selector, and a write it refused must be retried with the same bytes.
_TLS_RECORD: Final = 16384  # bytes


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def ipv6_loopback() -> bool:
    """Whether this machine has an IPv6 loopback (``::1``) to bind."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def refusing_socket(host: str = "127.0.0.1") -> socket.socket:
    """A socket bound to a free port of ``host`` that never listens: a refusing address.

    A SYN to a bound port with no listener is answered with RST, so connecting to
    ``sock.getsockname()`` raises ``ConnectionRefusedError``; and while the socket is
    open no other program can take the port. Close it (``with`` works) to free the port.
    """
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def tls_server_context(
    ca: trustme.CA, *identities: str, not_after: datetime.datetime | None = None
) -> ssl.SSLContext:
    """A server-side context with a certificate from the test CA ``ca`` (``trustme``).

    ``identities`` are the names and IP addresses the certificate is for (default:
    ``127.0.0.1``, ``::1`` and ``localhost``); ``not_after`` (a ``datetime``) makes it
    expire, for tests of an expired certificate. A client trusts it with
    ``ca.configure_trust(context)``, or with ``ca.cert_pem.write_to_path(path)`` and
    ``--cafile path``.
    """
    names = identities or ("127.0.0.1", "::1", "localhost")
    cert = ca.issue_cert(*names, not_after=not_after)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # A TCP end of stream without close_notify is the client's end of stream, as HTTPS
    # servers take it. Without this, OpenSSL 3 answers it with a fatal decode_error
    # alert, which would end a reply to a client that half-closed.
    context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    cert.configure_cert(context)
    return context


def blackhole_listener(host: str = "127.0.0.1", port: int = 0) -> list[socket.socket]:
    """Return a listening socket whose accept queue is full, and the socket that fills it.

    Linux drops a SYN that arrives at a listener whose accept queue is full, so a
    connection attempt to it gets no answer and hangs until the caller's deadline:
    exactly what a blackholed address does. ``listen(0)`` makes the queue hold one
    connection; one connection that is never accepted fills it. Close both sockets
    (the listener first) to release the port.
    """
    listener = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        listener.bind((host, port))
        listener.listen(0)
        filler = socket.socket(_family(host), socket.SOCK_STREAM)
        filler.settimeout(5.0)
        filler.connect(listener.getsockname()[:2])
    except BaseException:
        listener.close()
        raise
    return [listener, filler]


class LoopbackServer:
    """A server of one mode in a background thread (see the module docstring).

    Args:
        mode: one of :data:`MODES`: ``"sink"``, ``"echo"``, ``"slow"``, ``"reset"``,
            ``"blackhole"``, ``"hold"`` or ``"trickle"``.
        host: the address to bind (loopback unless told otherwise).
        port: the port to bind; 0 picks a free one.
        reset_after: bytes a ``reset`` server reads before it resets the connection.
        slow_chunk: bytes a ``slow`` server reads at a time (at most what its small
            receive buffer holds, so it reads a few MB/s whatever this says).
        slow_interval: seconds a ``slow`` server waits between reads.
        backlog: the accept queue's length (the kernel caps it at somaxconn); a burst
            of connections larger than this has SYNs dropped and waits for a retransmit.
        tls: a server-side context: speak TLS (``sink``, ``echo`` and ``slow`` only).

    Attributes:
        bytes_received: bytes read from all connections so far.
        connections: connections accepted so far.
        peak_buffered: the most bytes a server that answers (``echo``, ``hold``,
            ``trickle``) held for one client, waiting to be sent back (at most
            ``ECHO_BUFFER``).
        accept_backoffs: how many times accepting was paused for lack of resources.
    """

    def __init__(
        self,
        mode: Mode,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        reset_after: int = 65536,
        slow_chunk: int = 16384,
        slow_interval: float = 0.001,
        backlog: int = 1024,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if not host.strip():
            # The empty address means every interface: a test server must not do that.
            raise ValueError(f"host must be an address to bind, such as 127.0.0.1; got {host!r}")
        if tls is not None and mode not in TLS_MODES:
            raise ValueError(f"tls works with modes {', '.join(TLS_MODES)}; got {mode!r}")
        self.tls = tls
        if reset_after < 0:
            raise ValueError(f"reset_after must be >= 0, got {reset_after!r}")
        self.mode = mode
        self.reset_after = reset_after
        self.slow_chunk = slow_chunk
        self.slow_interval = slow_interval
        self.bytes_received = 0
        self.connections = 0
        self.peak_buffered = 0
        self.accept_backoffs = 0
        self._accept_paused_until: float | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: list[socket.socket] = []
        if mode == "blackhole":
            self._sockets = blackhole_listener(host, port)
            self._listener = self._sockets[0]
        else:
            self._listener = socket.socket(_family(host), socket.SOCK_STREAM)
            try:
                if port:
                    self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if mode == "slow":
                    # Accepted sockets inherit the small buffer: backpressure comes soon.
                    self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
                self._listener.bind((host, port))
                self._listener.listen(backlog)
            except BaseException:
                self._listener.close()
                raise
            self._listener.setblocking(False)
            self._sockets = [self._listener]
        self.host: str = self._listener.getsockname()[0]
        self.port: int = self._listener.getsockname()[1]

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the server listens on."""
        return (self.host, self.port)

    @property
    def target(self) -> str:
        """``"host:port"`` (``"[::1]:port"`` for IPv6), ready for ``Target.parse``."""
        return format_address(self.address)

    def __repr__(self) -> str:
        return f"<LoopbackServer {self.mode} on {self.target}>"

    def start(self) -> LoopbackServer:
        """Start serving in a daemon thread; returns ``self``."""
        if self.mode != "blackhole" and self._thread is None:
            self._thread = threading.Thread(
                target=self._serve, name=f"trio-sockets {self.mode} server", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and close every socket; closing twice is harmless."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def wait_bytes(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` bytes were received; False after ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self.bytes_received >= count, timeout)

    def wait_connections(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` connections were accepted; False after ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self.connections >= count, timeout)

    # The serving thread ----------------------------------------------------------------

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ, None)
            peers: dict[socket.socket, _Peer] = {}
            try:
                while not self._stop.is_set():
                    timeout = self.slow_interval if self.mode == "slow" else _SELECT_INTERVAL
                    paused = self._accept_paused_until
                    if paused is not None:
                        left = paused - time.monotonic()
                        if left <= 0:
                            self._accept_paused_until = None
                            selector.register(self._listener, selectors.EVENT_READ, None)
                        else:
                            timeout = min(timeout, left)
                    for key, events in selector.select(timeout):
                        if key.data is None:
                            self._accept(selector, peers)
                        else:
                            self._service(selector, peers, key.fileobj, events)  # type: ignore[arg-type]
            finally:
                for sock in peers:
                    sock.close()

    def _accept(self, selector: selectors.BaseSelector, peers: dict[socket.socket, _Peer]) -> None:
        for _ in range(64):  # accept in batches: one wakeup, many connections
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    # Back off: stop watching the listener for a while. The pending
                    # connections wait in the kernel's accept queue meanwhile.
                    selector.unregister(self._listener)
                    self._accept_paused_until = time.monotonic() + ACCEPT_BACKOFF
                    with self._changed:
                        self.accept_backoffs += 1
                        self._changed.notify_all()
                    return
                continue  # e.g. ECONNABORTED: the client gave up already
            conn.setblocking(False)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            peers[conn] = _Peer()
            peers[conn].handshaking = self.tls is not None
            selector.register(conn, selectors.EVENT_READ, "peer")
            with self._changed:
                self.connections += 1
                self._changed.notify_all()

    def _service(
        self,
        selector: selectors.BaseSelector,
        peers: dict[socket.socket, _Peer],
        conn: socket.socket,
        events: int,
    ) -> None:
        peer = peers[conn]
        if peer.handshaking and not self._handshake(selector, peers, conn, peer):
            return
        if events & selectors.EVENT_WRITE and peer.outgoing:
            self._flush(conn, peer)
        if events & selectors.EVENT_READ and not self._echo_full(peer):
            size = self.slow_chunk if self.mode == "slow" else READ_CHUNK
            if self.mode in _ECHOING:
                size = min(size, ECHO_BUFFER - len(peer.outgoing))
            if self.mode == "reset":
                size = min(size, self.reset_after - peer.received) or 1
            if self.tls is not None:
                size = max(size, _TLS_RECORD)
            try:
                data = conn.recv(size)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                data = None
            except OSError:
                data = b""
            if data:
                peer.received += len(data)
                with self._changed:
                    self.bytes_received += len(data)
                    self._changed.notify_all()
                if self.mode in _ECHOING:
                    peer.outgoing += data
                    self.peak_buffered = max(self.peak_buffered, len(peer.outgoing))
                    self._flush(conn, peer)
                if self.mode == "slow":
                    time.sleep(self.slow_interval)
            elif data == b"":
                peer.eof = True
        if self.mode == "reset" and peer.received >= self.reset_after:
            _arm_reset(conn)
            self._drop(selector, peers, conn)
            return
        if peer.eof and not peer.outgoing:
            if self.mode == "hold":
                # Keep the connection open, watched no more, until the server closes.
                selector.unregister(conn)
                return
            self._drop(selector, peers, conn)
            return
        wanted = selectors.EVENT_WRITE if peer.outgoing else 0
        # An echo server with a full buffer reads nothing more until the client reads
        # its echo: the client's sends then wait, as TCP's flow control intends.
        if not peer.eof and not self._echo_full(peer):
            wanted |= selectors.EVENT_READ
        if wanted != peer.events:
            peer.events = wanted
            selector.modify(conn, wanted, "peer")

    def _echo_full(self, peer: _Peer) -> bool:
        return self.mode in _ECHOING and len(peer.outgoing) >= ECHO_BUFFER

    def _handshake(
        self,
        selector: selectors.BaseSelector,
        peers: dict[socket.socket, _Peer],
        conn: socket.socket,
        peer: _Peer,
    ) -> bool:
        # The server's side of a TLS handshake, one step per readiness; True once done.
        assert isinstance(conn, ssl.SSLSocket)
        try:
            conn.do_handshake()
        except ssl.SSLWantReadError:
            wanted = selectors.EVENT_READ
        except ssl.SSLWantWriteError:
            wanted = selectors.EVENT_WRITE
        except OSError:  # the client refused our certificate, or went away
            self._drop(selector, peers, conn)
            return False
        else:
            peer.handshaking = False
            return True
        if wanted != peer.events:
            peer.events = wanted
            selector.modify(conn, wanted, "peer")
        return False

    def _flush(self, conn: socket.socket, peer: _Peer) -> None:
        if self.mode == "trickle":
            self._trickle(conn, peer)
            return
        try:
            size = len(peer.outgoing) if self.tls is None else _TLS_RECORD
            sent = conn.send(peer.outgoing[:size])
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        except OSError:
            peer.outgoing.clear()
            peer.eof = True
            return
        del peer.outgoing[:sent]

    def _trickle(self, conn: socket.socket, peer: _Peer) -> None:
        # One byte per send(), with TCP_NODELAY so that each goes out as its own segment
        # and the client meets its reply in as many small pieces as the pacing allows.
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while peer.outgoing:
            try:
                conn.send(peer.outgoing[:1])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                peer.outgoing.clear()
                peer.eof = True
                return
            del peer.outgoing[:1]
            time.sleep(self.slow_interval)

    def _drop(
        self,
        selector: selectors.BaseSelector,
        peers: dict[socket.socket, _Peer],
        conn: socket.socket,
    ) -> None:
        selector.unregister(conn)
        peer = peers.pop(conn)
        if isinstance(conn, ssl.SSLSocket) and not peer.handshaking:
            # Our close_notify, so that the client reads a clean end of stream. The
            # first SSL_shutdown() sends it; waiting for the client's is not our job.
            with contextlib.suppress(OSError):
                conn.unwrap()
        conn.close()


class _Peer:
    __slots__ = ("eof", "events", "handshaking", "outgoing", "received")

    def __init__(self) -> None:
        self.handshaking = False
        self.received = 0
        self.outgoing = bytearray()
        self.eof = False
        self.events = selectors.EVENT_READ


def _arm_reset(conn: socket.socket) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
