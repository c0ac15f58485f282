"""Connect, check, send, written with asyncio (the twin of the Trio reference port).

Every concurrent piece here lives inside a task group or a timeout: the happy-eyeballs
race is a ``TaskGroup`` whose winner stops it by raising, the deadline of a workflow is an
``asyncio.timeout``, and the fan-out is a ``TaskGroup`` paced by a ``Semaphore``. This
is ``trio_port.py``, line for line, in asyncio; ``diff`` the two to see what the model
changes. asyncio has no ``move_on_after``: its deadline is ``asyncio.timeout``, which
raises ``TimeoutError``. What it lacks (a safe ``wait_writable``) is in
``_asyncio_tools.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket as _stdlib_socket
import ssl
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from time import monotonic as _monotonic
from types import TracebackType
from typing import BinaryIO, Final, TypeAlias

from ._addresses import (
    AddrInfo,
    format_address,
    numeric_addrinfo,
    reorder_for_rfc_8305_section_4,
)
from ._asyncio_tls import TLSLayer
from ._asyncio_tools import (
    BusyResourceError,
    ClosedResourceError,
    ClosingSocket,
    notify_closing,
    run_in_daemon_thread,
    wait_readable,
    wait_writable,
)
from ._checks import (
    DEFAULT_DELAY,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_REPLY_BYTES,
    DEFAULT_RECEIVE_BYTES,
    DEFAULT_TIMEOUT,
    FILE_CHUNK,
    MAX_BYTES,
    SENDFILE_CHUNK,
    TLS_RECORD_BYTES,
    FilePayload,
    Options,
    check_callback,
    check_count,
    check_flag,
    check_local_address,
    check_not_awaitable,
    check_payload,
    check_payload_or_file,
    check_seconds,
    check_server_hostname,
    check_tls,
    local_address_error,
)
from ._errors import (
    ConnectError,
    SendError,
    TargetError,
    bare_exception,
    describe_error,
    handshake_error,
    resolve_error,
)
from ._reply import ReplyBuffer
from ._reports import (
    FAIL_FAST_TEXT,
    Attempt,
    AttemptLog,
    ReportBuilder,
    SendReport,
    bad_target_report,
    cancelled_report,
)
from ._sockets import (
    NO_SENDFILE,
    bind_address_no_port,
    close_quietly,
    discard_received,
    send_error,
    writable_now,
)
from ._targets import Target, check_targets, parse_targets

__all__ = [
    "Attempt",
    "ConnectError",
    "Connection",
    "SendError",
    "SendReport",
    "Target",
    "TargetError",
    "connect_check_send",
    "open_connection",
    "send_to_many",
    "stream_to_many",
]

# The errors this port raises for misuse of a Connection.
# asyncio: RuntimeError subclasses of our own; asyncio has no such errors (see _asyncio_tools).
BusyError = BusyResourceError
ClosedError = ClosedResourceError

Socket = _stdlib_socket.socket

# asyncio: reports want the finest clock. The default loop.time() is this very clock,
# while uvloop's is cached per loop iteration and counts in milliseconds.
_now = _monotonic


# asyncio: no _bare_cancelled() here. A TaskGroup whose children were all cancelled
# re-raises its own task's CancelledError bare, and Ctrl+C (KeyboardInterrupt) bare too;
# only real errors are grouped, and _race() and _fan_out() unwrap those themselves.


def _send_error(exc: OSError, sent: int, total: int | None) -> SendError:
    return send_error(exc, sent, total)


async def _read_chunk(source: FilePayload, done: int, buffer: bytearray) -> int:
    """Read the next chunk of ``source``, ``done`` bytes past its start; 0 at its end."""
    file = source.file
    if source.start is not None:
        # Seek, then read, with nothing between that lets another task run: the targets
        # of a fan-out share one file, and each keeps its own place in it.
        file.seek(source.start + done)
        count = file.readinto(buffer)  # type: ignore[attr-defined]
    else:
        # A pipe's writer may keep us waiting: read in a worker thread, so that the
        # event loop runs meanwhile. A cancelled read is abandoned to its thread.
        read = getattr(file, "readinto1", None) or file.readinto  # type: ignore[attr-defined]
        count = await run_in_daemon_thread(read, buffer)  # asyncio: see _asyncio_tools
    if count is None:  # a non-blocking file with nothing to read right now
        raise BlockingIOError(errno.EAGAIN, f"payload file is non-blocking: {file!r:.60}")
    return int(count)


# --------------------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------------------


class Connection:  # asyncio: no stream interface to subclass; the same methods
    """A connected TCP socket with exact byte accounting, and TLS over it if asked.

    On Trio it is a ``trio.abc.HalfCloseableStream``: anything that takes a Trio stream
    takes it, ``trio.SSLStream`` included.

    Attributes:
        socket: the framework's socket object: ``trio.socket.SocketType`` on Trio, a
            non-blocking ``socket.socket`` on asyncio.
        remote_address: the peer's sockaddr.
        local_address: our own sockaddr.
        family: ``socket.AF_INET`` or ``socket.AF_INET6``.
        bytes_sent: bytes the kernel has accepted so far, exact even after an error
            or a cancellation. With TLS, application bytes whose records the kernel
            has accepted whole, never more.
        bytes_received: bytes received so far (with TLS, application bytes).
        attempts: the connection attempts that led to this connection.
        tls_version: the TLS version, such as ``"TLSv1.3"``; None without TLS.
        tls_cipher: the cipher suite, such as ``"TLS_AES_256_GCM_SHA384"``; None
            without TLS.
    """

    __slots__ = (
        "_closed",
        "_eof_sent",
        "_loop",  # asyncio: the readiness waits need the loop; Trio finds its own
        "_receiving",
        "_sending",
        "_tls",
        "attempts",
        "bytes_received",
        "bytes_sent",
        "local_address",
        "remote_address",
        "socket",
    )

    def __init__(self, sock: Socket, attempts: tuple[Attempt, ...] = ()) -> None:
        self.socket = sock
        self._loop = asyncio.get_running_loop()  # asyncio: see __slots__
        self.remote_address = sock.getpeername()
        self.local_address = sock.getsockname()
        self.attempts = attempts
        self.bytes_sent = 0
        self.bytes_received = 0
        self._closed = False
        self._sending = False
        self._receiving = False
        self._eof_sent = False
        self._tls: TLSLayer | None = None  # asyncio: an SSLObject pump, not a stream

    @property
    def family(self) -> _stdlib_socket.AddressFamily:
        # Asked of the socket when read, not stored: making the enum member costs as
        # much as the rest of the constructor, and the workflow never reads it.
        return self.socket.family  # asyncio: the stdlib property is an AddressFamily

    @property
    def tls_version(self) -> str | None:
        """The TLS version, such as ``"TLSv1.3"``; None without TLS."""
        return None if self._tls is None else self._tls.version()

    @property
    def tls_cipher(self) -> str | None:
        """The cipher suite, such as ``"TLS_AES_256_GCM_SHA384"``; None without TLS."""
        cipher = None if self._tls is None else self._tls.cipher()
        return None if cipher is None else cipher[0]

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Connection {state} {self.local_address!r} -> {self.remote_address!r}>"

    def _check_open(self) -> None:
        # A socket closed behind the connection's back (conn.socket.close()) has the
        # descriptor -1: that is a closed connection too, not network trouble.
        if self._closed or self.socket.fileno() == -1:
            raise ClosedError("this connection is closed")

    async def wait_writable(self) -> None:
        """Wait until the kernel will accept more bytes on this connection (the check).

        Raises:
            BusyError: another task is sending on this connection.
            ClosedError: the connection is closed.
        """
        await self._wait_writable()  # asyncio: writable already, no checkpoint to take

    async def _wait_writable(self) -> bool:
        # The check as the workflow takes it, before it sends: True when the socket was
        # writable already (asyncio: then it returns without yielding, as always).
        self._check_open()
        if self._sending:
            raise BusyError("another task is already sending on this connection")
        if writable_now(self.socket.fileno()):
            return True
        self._sending = True  # waiting to send is sending, for send_eof() and others
        try:
            await wait_writable(self._loop, self.socket)  # asyncio: see _asyncio_tools
        finally:
            self._sending = False
        return False

    async def wait_send_all_might_not_block(self) -> None:
        """The name Trio's stream interface gives :meth:`wait_writable`."""
        await self.wait_writable()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send every byte of ``data``, waiting for writability whenever the buffer is full.

        ``bytes_sent`` grows as the kernel accepts bytes, so after an error or a
        cancellation it tells exactly how much went out.

        Raises:
            SendError: the send failed; its ``bytes_sent`` is what this call delivered.
            BusyError: another task is sending on this connection.
            ClosedError: the connection is closed.
        """
        view = check_payload(data)
        with view:
            await self._send_all(view)

    async def _send_all(self, view: memoryview) -> None:
        # send_all() for a payload already checked. The workflow checks its payload
        # once for every target and shares the view, so this must not release it.
        self._check_open()
        if self._sending:
            raise BusyError("another task is already sending on this connection")
        if self._eof_sent:
            raise ClosedError("this connection's sending side is shut (send_eof)")
        self._sending = True
        try:
            await self._send_view(view, self.bytes_sent, len(view))
            # asyncio: no checkpoint. A send the kernel takes at once does not yield
            # (loop.sock_sendall does not either, when its first send takes it all);
            # only a full buffer makes it wait.
        finally:
            self._sending = False

    async def _send_view(self, view: memoryview, base: int, total: int | None) -> None:
        # Send all of ``view``. A SendError counts the bytes sent since ``bytes_sent``
        # was ``base``, out of ``total`` (None: a file, whose size is not known).
        if self._tls is not None:
            return await self._send_view_tls(view, base, total)
        sent = 0
        while sent < len(view):
            try:
                # A send either happens, and returns its count, or is cancelled
                # before anything was written: asyncio: only the wait can be
                # cancelled; the send itself is a plain non-blocking call.
                n = self.socket.send(view[sent:])
            except BlockingIOError:
                await wait_writable(self._loop, self.socket)
                continue
            except OSError as exc:
                # Closed by another task meanwhile (the send then fails with
                # EBADF): a misuse of the connection, not network trouble.
                self._check_open()
                raise _send_error(exc, self.bytes_sent - base, total) from exc
            sent += n
            self.bytes_sent += n

    async def send_file(self, file: BinaryIO) -> None:
        """Send a binary file from its current position to its end.

        Zero-copy with ``os.sendfile`` where the platform allows it (a regular file with
        a file descriptor), in chunks of ``FILE_CHUNK`` bytes otherwise (a pipe, an
        ``io.BytesIO``), so memory does not grow with the file. ``bytes_sent`` grows as
        the kernel accepts bytes, and afterwards, even after an error or a cancellation,
        a seekable file is positioned just after the last byte sent. (A pipe is read in
        a thread, so that a slow writer does not block the event loop; a chunk read from
        it but not sent when the call is cancelled is lost, as a pipe cannot go back.)

        Raises:
            SendError: the send failed; its ``bytes_sent`` is what this call delivered.
            TypeError: ``file`` is not a binary file open for reading.
            ValueError: ``file`` is closed.
            OSError: reading the file failed.
            BusyError: another task is sending on this connection.
            ClosedError: the connection is closed.
        """
        source = check_payload_or_file(file)
        if not isinstance(source, FilePayload):
            raise TypeError(f"file must be a binary file object, got {file!r:.60}")
        await self._send_file(source)

    async def _send_file(self, source: FilePayload) -> None:
        # send_file() for a file already checked (the workflow checks it once).
        self._check_open()
        if self._sending:
            raise BusyError("another task is already sending on this connection")
        if self._eof_sent:
            raise ClosedError("this connection's sending side is shut (send_eof)")
        self._sending = True
        base = self.bytes_sent
        try:
            # Zero-copy cannot encrypt: with TLS, the file goes through in chunks.
            zero_copy = source.sendfile_fd is not None and self._tls is None
            if not zero_copy or not await self._sendfile(source, base):
                await self._send_chunks(source, base)
            # asyncio: no checkpoint for an empty file, as in _send_all().
        finally:
            self._sending = False
            if source.start is not None:
                # Just past the last byte sent; or back at the start for a file that
                # targets share, so that the caller finds it where it was.
                sent = self.bytes_sent - base if source.advance else 0
                source.file.seek(source.start + sent)

    async def _sendfile(self, source: FilePayload, base: int) -> bool:
        # asyncio: not loop.sock_sendfile(). It returns the total only when it is done:
        # after a cancellation or an error the count is lost (it only seeks the file to
        # match), while bytes_sent must grow as the kernel takes bytes. uvloop has none
        # at all: its loop inherits AbstractEventLoop.sock_sendfile(), which raises
        # NotImplementedError. os.sendfile() and a readiness wait are all it takes.
        assert source.sendfile_fd is not None and source.start is not None
        while True:
            try:
                # The offset is explicit: the file's own position is left alone, so
                # targets sharing one file do not disturb each other. The socket's
                # descriptor is asked each time: -1 (EBADF) once it is closed, never a
                # number that another socket may have reused meanwhile.
                n = os.sendfile(
                    self.socket.fileno(),
                    source.sendfile_fd,
                    source.start + self.bytes_sent - base,
                    SENDFILE_CHUNK,
                )
            except BlockingIOError:
                # asyncio: the loop has no wait on a socket; our helper waits for it.
                await wait_writable(self._loop, self.socket)
                continue
            except OSError as exc:
                self._check_open()
                # EBADF from a socket still open: it has no real descriptor (a fake one).
                fake = exc.errno == errno.EBADF and self.socket.fileno() >= 0
                if self.bytes_sent == base and (exc.errno in NO_SENDFILE or fake):
                    return False  # this file cannot go zero-copy: send it in chunks
                raise _send_error(exc, self.bytes_sent - base, None) from exc
            if not n:
                return True
            self.bytes_sent += n
            # asyncio: yield per chunk, as Trio's checkpoint does, so that a large file
            # sent to a fast reader lets other tasks run, and a cancellation land.
            await asyncio.sleep(0)

    async def _send_chunks(self, source: FilePayload, base: int) -> None:
        # The file read into one bounded buffer, chunk after chunk, each sent whole.
        buffer = bytearray(FILE_CHUNK)
        with memoryview(buffer) as whole:
            while count := await _read_chunk(source, self.bytes_sent - base, buffer):
                await self._send_view(whole[:count], base, None)

    async def _send_view_tls(self, view: memoryview, base: int, total: int | None) -> None:
        # bytes_sent stays honest under TLS: the TLS layer gets one record's worth of
        # plaintext at a time, and when its send_all() returns, the whole record has
        # gone to the kernel; only then do its bytes count. A record cut short by an
        # error or a cancellation counts for nothing.
        assert self._tls is not None
        for start in range(0, len(view), TLS_RECORD_BYTES):
            record = view[start : start + TLS_RECORD_BYTES]
            try:
                await self._tls.send_all(record)
            except OSError as exc:
                self._check_open()
                failure = exc  # asyncio: the ssl module's errors are OSErrors already
                raise _send_error(failure, self.bytes_sent - base, total) from failure
            self.bytes_sent += len(record)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive up to ``max_bytes`` (None: 64 KiB); ``b""`` means the peer closed its side.

        Raises:
            ValueError: ``max_bytes`` is below 1 or above ``MAX_BYTES`` (1 GiB).
            BusyError: another task is receiving on this connection.
            ClosedError: the connection is closed, also when its socket was closed
                behind its back, or while this call waited.
        """
        max_bytes = check_count(
            DEFAULT_RECEIVE_BYTES if max_bytes is None else max_bytes, "max_bytes", MAX_BYTES
        )
        with self._receiver():
            if self._tls is not None:
                data = await self._tls.receive_some(max_bytes)
            else:
                # asyncio: not loop.sock_recv(), whose reader outlives a cancellation
                # until a callback runs; wait_readable() removes it at once and wakes up
                # on aclose().
                while True:
                    try:
                        data = self.socket.recv(max_bytes)
                        break
                    except BlockingIOError:
                        await wait_readable(self._loop, self.socket)
        self.bytes_received += len(data)
        return data

    async def _receive_into(self, buffer: memoryview) -> int:
        # receive_some() into the caller's buffer: the reply is read with no bytes
        # object per receive. Returns the count; 0 means the peer closed its side.
        with self._receiver():
            if self._tls is not None:
                # asyncio: SSLObject.read() decrypts into the buffer, no copy
                count = await self._tls.receive_into(buffer)
            else:
                # asyncio: the wait, not the recv, is where a cancellation lands, so a
                # cancelled receive has read nothing (as in receive_some()).
                while True:
                    try:
                        count = self.socket.recv_into(buffer)
                        break
                    except BlockingIOError:
                        await wait_readable(self._loop, self.socket)
        self.bytes_received += count
        return count

    @contextlib.contextmanager
    def _receiver(self) -> Iterator[None]:
        # Around each receive: one receiving task at a time, and an error from a socket
        # that another task closed meanwhile is a ClosedError, as in send_all().
        self._check_open()
        if self._receiving:
            raise BusyError("another task is already receiving on this connection")
        self._receiving = True
        try:
            yield
        except OSError:  # asyncio: the ssl module's errors are OSErrors already
            self._check_open()
            raise
        finally:
            self._receiving = False

    async def send_eof(self) -> None:
        """Half-close: tell the peer we will send nothing more (it reads end of stream).

        With TLS, the TCP sending side is shut beneath the TLS session, with no
        close_notify alert: the peer reads a TCP end of stream, and the reply, if any,
        still comes through TLS. TLS 1.2 has no half-close (a close_notify obliges the
        peer to close at once, dropping its reply: RFC 5246 section 7.2.1); TLS 1.3 has
        one (RFC 8446 section 6.1), but neither ``trio.SSLStream`` (python-trio/trio#823)
        nor asyncio's TLS transports (``can_write_eof()`` is False) can send it, so both
        ports do the same, which is what servers that accept HTTPS's unannounced ends of
        stream (Trio's ``https_compatible``) read as end of stream. Calling it twice is
        harmless.
        """
        self._check_open()
        if self._sending:
            raise BusyError("another task is already sending on this connection")
        if not self._eof_sent:
            self._eof_sent = True
            self.socket.shutdown(_stdlib_socket.SHUT_WR)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            # asyncio: wake our waiters and drop their reader or writer first; the loop
            # must not keep watching an fd number that the next socket may reuse.
            notify_closing(self._loop, self.socket)
            discard_received(self.socket)  # unread bytes would make close() a RST
            self.socket.close()

    async def aclose(self) -> None:
        """Close the connection; closing twice is harmless.

        With TLS, a close_notify alert goes first (unless :meth:`send_eof` shut the
        sending side), and the close waits until the kernel has taken it, not for the
        peer's answer.
        """
        if self._tls is not None and not self._closed and not self._eof_sent:
            try:
                await self._tls.aclose()  # close_notify (asyncio: our TLS layer's)
            finally:
                self._close()
            return
        self._close()

    async def _start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        # asyncio: its TLS lives inside its transports (loop.start_tls() takes a
        # transport and a protocol), which code written on sock_* calls cannot use; so
        # _asyncio_tls pumps an ssl.SSLObject over this socket with our readiness waits.
        tls = TLSLayer(self._loop, self.socket, context, server_hostname)
        await tls.do_handshake()
        self._tls = tls

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# --------------------------------------------------------------------------------------
# open_connection: resolve, then race the addresses (happy eyeballs, RFC 8305)
# --------------------------------------------------------------------------------------


async def open_connection(
    host: str,
    port: int,
    *,
    happy_eyeballs_delay: float | None = DEFAULT_DELAY,
    local_address: str | None = None,
    tls: bool | ssl.SSLContext = False,
    server_hostname: str | None = None,
) -> Connection:
    """Resolve ``host`` and connect to the first of its addresses that answers.

    Addresses are ordered as RFC 8305 section 4 says and raced as a staircase: attempt
    i+1 starts when attempt i fails or ``happy_eyeballs_delay`` seconds after it
    started, whichever comes first. The first to connect wins; every other attempt is
    cancelled and its socket closed before this returns. ``None`` tries one address at a
    time. There is no timeout: wrap the call in a deadline of your own.

    With ``tls``, the TLS handshake is part of opening: ``True`` verifies the peer's
    certificate and host name against the system's CA certificates
    (:func:`ssl.create_default_context`); an :class:`ssl.SSLContext` is used as it is.
    ``server_hostname`` (default: ``host``) is the name the certificate must carry.

    Raises:
        ConnectError: every attempt failed; ``.attempts`` holds each address's error.
            Or the TLS handshake failed (a certificate that does not verify, say): its
            text names the reason.
        TargetError: ``host`` or ``port`` is not valid.
        TypeError: ``tls`` is not a bool or an SSLContext.
    """
    target = Target.parse((host, port))
    delay = check_seconds(happy_eyeballs_delay, "happy_eyeballs_delay")
    local = check_local_address(local_address)
    context = check_tls(tls)
    hostname = check_server_hostname(server_hostname, context) or target.host
    conn = await _open(target, delay, local, AttemptLog(_now()))
    if context is not None:
        await _handshake(conn, target, context, hostname)
    return conn


async def _resolve(target: Target) -> list[AddrInfo]:
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=_stdlib_socket.SOCK_STREAM
        )
    # Not only OSError: a name that the IDNA encoder refuses raises UnicodeError
    # (idna.IDNAError on Trio, which encodes with IDNA 2008), a ValueError. Either way
    # the name does not resolve, and that is the target's failure, not the caller's.
    except (OSError, ValueError) as exc:
        raise resolve_error(target, exc) from exc
    return reorder_for_rfc_8305_section_4(found)


async def _open(
    target: Target, delay: float | None, local: str | None, log: AttemptLog
) -> Connection:
    # An IP literal needs no resolver (Trio's getaddrinfo and asyncio's create_connection
    # skip it too).
    infos = numeric_addrinfo(target.host, target.port) or await _resolve(target)
    log.connect_at = _now()
    if not infos:
        raise resolve_error(target, OSError(f"no addresses for {target.host!r}"))
    errors: list[OSError] = []
    if len(infos) == 1:
        # One address, nothing to race: no task group, no tasks.
        try:
            conn = await _attempt(infos[0], local, log, _start(infos[0], log))
        except OSError as exc:
            errors.append(exc)
            conn = None
    else:
        conn = await _race(infos, delay, local, log, errors)
    if conn is None:
        raise log.connect_error(target, errors, _now())
    conn.attempts = log.close_all(_now())
    return conn


def _start(info: AddrInfo, log: AttemptLog) -> int:
    # Recorded by the launcher, not by the attempt's task: the log is in start order
    # even when two attempts are launched in the same tick.
    return log.started(info[4], info[0], _now())


async def _attempt(info: AddrInfo, local: str | None, log: AttemptLog, index: int) -> Connection:
    """One connection attempt, recorded in ``log``; its socket is closed if it fails."""
    family, type_, proto, _, sockaddr = info
    try:
        # asyncio: a socket whose close() wakes our waiters first, as Trio's does.
        sock = ClosingSocket(family, type_, proto)
    except OSError as exc:  # e.g. EAFNOSUPPORT on a host without IPv6
        log.ended(index, "failed", _now(), describe_error(exc))
        raise
    try:
        sock.setblocking(False)  # asyncio: the loop.sock_* methods require it
        if local is not None:
            _bind_local(sock, local, sockaddr)  # asyncio: binding never blocks here
        await asyncio.get_running_loop().sock_connect(sock, sockaddr)
        # The hand-over belongs to the attempt: Connection() asks for both addresses,
        # and a peer that reset the connection at once fails getpeername() (ENOTCONN).
        # Then this attempt failed, its socket is closed, and the race goes on.
        conn = Connection(sock)
    except OSError as exc:
        # Logged first and closed second: a close() that fails must not lose either.
        log.ended(index, "failed", _now(), describe_error(exc))
        close_quietly(sock, exc)
        raise
    except BaseException as exc:
        log.ended(index, "cancelled", _now())
        close_quietly(sock, exc)
        raise
    log.ended(index, "connected", _now())
    return conn


async def _handshake(
    conn: Connection, target: Target, context: ssl.SSLContext, server_hostname: str
) -> None:
    """The TLS handshake on a new connection, which is closed if it fails."""
    try:
        await conn._start_tls(context, server_hostname)
    except OSError as exc:  # asyncio: the ssl module's errors are OSErrors already
        conn._close()
        raise handshake_error(target, exc, conn.attempts) from exc
    except BaseException:
        conn._close()
        raise


# asyncio: a plain function; asyncio has no async bind(), and an IP literal needs none.
def _bind_local(sock: Socket, local: str, sockaddr: tuple[object, ...]) -> None:
    # Bind only the IP and let connect() pick the port, so that local ports can be
    # shared between connections to different peers (Linux's IP_BIND_ADDRESS_NO_PORT).
    wrong_family = local_address_error(local, sock.family, sockaddr)
    if wrong_family is not None:
        raise wrong_family
    no_port = bind_address_no_port()
    if no_port is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(_stdlib_socket.IPPROTO_IP, no_port, 1)
    try:
        sock.bind((local, 0))  # asyncio: a plain call, the address is an IP literal
    except OSError as exc:
        exc.add_note(f"local_address={local!r} cannot be bound to reach {format_address(sockaddr)}")
        raise


async def _race(
    infos: Sequence[AddrInfo],
    delay: float | None,
    local: str | None,
    log: AttemptLog,
    errors: list[OSError],
) -> Connection | None:
    """The staircase race: start an attempt, give it ``delay`` or until it fails, repeat."""
    winner: Connection | None = None
    task = asyncio.current_task()
    assert task is not None
    cancelling = task.cancelling()  # asyncio: see "swallowed" at the end

    async def attempt(info: AddrInfo, failed: asyncio.Event, index: int) -> None:
        nonlocal winner
        try:
            conn = await _attempt(info, local, log, index)
        except OSError as exc:
            errors.append(exc)
            failed.set()  # hurry the next attempt along
            return
        if winner is None:
            winner = conn
            _stop(tg, _Won)  # asyncio: a TaskGroup is stopped by a child's failure
        else:
            # Two attempts connected in the same tick: only the first one wins.
            log.ended(index, "cancelled", _now(), "another attempt connected first")
            conn._close()

    try:
        async with asyncio.TaskGroup() as tg:
            # asyncio: the body launches (no launcher task): a child that fails cancels
            # the body along with its siblings.
            failures = []
            for info in infos:
                failed = asyncio.Event()
                failures.append(failed)
                tg.create_task(attempt(info, failed, _start(info, log)))
                # asyncio: the deadline is an exception, and TimeoutError is an OSError
                # too: caught right here, it can never pass for a failed connect.
                try:
                    async with asyncio.timeout(delay):
                        await failed.wait()
                except TimeoutError:
                    pass
            # asyncio: the body stays until every attempt has failed (or _Won cancels
            # it). A TaskGroup that a child stops after its body has ended leaves our
            # task's cancel count raised on Python < 3.13 (gh-116720), and a caller's
            # asyncio.timeout would then let out CancelledError instead of TimeoutError.
            for failed in failures:
                await failed.wait()
    except* _Won:
        pass  # asyncio: the winner stopped the group; the others are cancelled and closed
    except* BaseException as group:
        # asyncio: a cancellation, Ctrl+C or a bug in an attempt goes out as itself, not
        # in a group (TaskGroup groups a bug); a winner of the same moment is closed.
        exc = bare_exception(group, asyncio.CancelledError)
        if winner is not None:
            close_quietly(winner.socket, exc)
        raise exc from None
    if winner is not None and task.cancelling() > cancelling:
        # asyncio: a cancellation from outside that met _Won was swallowed: the group
        # raised _Won alone. Our caller asked us to stop: the winner is closed, and the
        # cancellation goes out once. Python 3.13 re-arms it as the group exits
        # (uncancel(), then cancel(): gh-116720), so it lands at the sleep(0); raising
        # our own as well would have it fire again at the caller's next await. 3.11 and
        # 3.12 drop it, so there we raise it ourselves (as _fan_out does).
        cancelled = asyncio.CancelledError()
        close_quietly(winner.socket, cancelled)
        await asyncio.sleep(0)
        raise cancelled
    return winner


# asyncio: Trio's winner cancels the nursery's cancel scope; a TaskGroup has no scope to
# cancel (until TaskGroup.cancel() in 3.15), so its winner raises this instead.
class _Won(Exception):
    """Raised by the winning attempt to stop the race's TaskGroup (see :func:`_race`)."""


# --------------------------------------------------------------------------------------
# connect_check_send: the workflow for one target
# --------------------------------------------------------------------------------------


async def connect_check_send(
    target: Target | str | tuple[str, int],
    payload: bytes | bytearray | memoryview | BinaryIO,
    *,
    # The workflow's own deadline: when it passes, the report says "timeout".
    timeout: float | None = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    happy_eyeballs_delay: float | None = DEFAULT_DELAY,
    read_reply: bool = False,
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    half_close: bool = True,
    reply_until: bytes | None = None,
    reply_idle_timeout: float | None = None,
    tls: bool | ssl.SSLContext = False,
    server_hostname: str | None = None,
) -> SendReport:
    """Resolve, connect (racing addresses), check writability, send all; optionally read.

    ``timeout`` bounds the whole workflow (``None``: no deadline). Network trouble
    never raises: it is reported.

    Args:
        target: ``"host:port"``, ``"[v6]:port"``, a ``(host, port)`` tuple or a Target.
        payload: the bytes to send, or a binary file object, sent from its current
            position to its end without being read into memory (see
            :meth:`Connection.send_file`).
        timeout: seconds for the whole workflow, or ``None``.
        happy_eyeballs_delay: seconds before the next address is tried (RFC 8305);
            ``None`` tries one address at a time.
        read_reply: read the peer's reply while sending, as netcat does (no deadlock
            on a peer that echoes a large payload); ``report.reply`` holds it.
        max_reply_bytes: the most reply bytes kept (at most ``MAX_BYTES``, 1 GiB);
            reading stops there (``reply_end`` ``"limit"``). Memory for the reply stays
            within a small multiple of this, however the peer splits its reply.
        half_close: shut our sending side once the payload is sent, so the peer reads
            end of stream. ``False`` keeps it open, as netcat does by default, for
            servers that drop their reply when the client half-closes; then end the
            reply with ``reply_until`` or ``reply_idle_timeout`` (or let the peer close).
        reply_until: stop reading once the reply ends with these bytes (``"until"``),
            wherever the receives split them.
        reply_idle_timeout: stop reading after this many seconds without a byte
            (``"idle"``), like netcat's ``-w`` / ncat's ``-i``, counted only once the
            payload is out (a slow upload is not idleness); ``None``: no limit.
            More than 0 (0 is a ``ValueError``).
        tls: ``True`` or an :class:`ssl.SSLContext` for TLS, as in
            :func:`open_connection`; a certificate that does not verify is an
            ``"error"`` report naming the reason.
        server_hostname: the name the certificate must carry (default: the host).

    Returns:
        A :class:`SendReport` with status ``"ok"``, ``"error"`` or ``"timeout"``; with
        ``read_reply``, ``reply_end`` says why reading stopped: ``"eof"``, ``"limit"``,
        ``"until"`` or ``"idle"``.

    Raises:
        TargetError: the target is not valid.
        TypeError: the payload is not bytes-like or a readable binary file, a flag is
            not a bool, or ``tls`` is not a bool or an SSLContext.
        ValueError: a negative, NaN or unusably large timeout, delay or size.
    """
    parsed = Target.parse(target)
    options = Options.check(
        timeout,
        happy_eyeballs_delay,
        read_reply,
        max_reply_bytes,
        half_close=half_close,
        reply_until=reply_until,
        reply_idle_timeout=reply_idle_timeout,
        tls=tls,
        server_hostname=server_hostname,
    )
    data = check_payload_or_file(payload)
    return await _workflow(parsed, data, options, ReportBuilder(parsed, _now()))


async def _workflow(
    target: Target, data: memoryview | FilePayload, options: Options, report: ReportBuilder
) -> SendReport:
    # asyncio: the deadline is an exception. asyncio.timeout() cancels the body and turns
    # that cancellation into TimeoutError at its exit (a cancellation from outside stays
    # a CancelledError). TimeoutError is also an OSError, which means network trouble in
    # _workflow_steps(), so the deadline is caught out here, and only when this very
    # timeout expired: the kernel's ETIMEDOUT is a TimeoutError too.
    deadline = asyncio.timeout(options.timeout)
    try:
        async with deadline:
            return await _workflow_steps(target, data, options, report)
    except TimeoutError:
        if not deadline.expired():
            raise
    return report.finish("timeout", _now(), report.timeout_text(options.timeout))


async def _workflow_steps(
    target: Target, data: memoryview | FilePayload, options: Options, report: ReportBuilder
) -> SendReport:
    """The workflow without its deadline: every network failure becomes a report."""
    try:
        conn = await _open(target, options.delay, None, report)
        try:
            report.address = conn.remote_address
            if options.tls is not None:
                report.tls_at = _now()
                hostname = options.server_hostname or target.host
                await _handshake(conn, target, options.tls, hostname)
                report.tls_version, report.tls_cipher = conn.tls_version, conn.tls_cipher
            report.check_at = _now()
            await conn._wait_writable()
            report.send_at = _now()
            if options.read_reply:
                await _read_reply(conn, data, options, report)
            else:
                await _send_payload(conn, data, report)
        finally:
            # A plain close, not aclose(): its checkpoint could turn a finished
            # workflow into a timeout at the very edge of the deadline.
            conn._close()
    except OSError as exc:
        return report.finish("error", _now(), describe_error(exc))
    return report.finish("ok", _now())


async def _send_payload(
    conn: Connection, data: memoryview | FilePayload, report: ReportBuilder
) -> None:
    try:
        # Checked by our caller.
        if isinstance(data, FilePayload):
            await conn._send_file(data)
        else:
            await conn._send_all(data)
    finally:
        report.bytes_sent = conn.bytes_sent


async def _read_reply(
    conn: Connection, data: memoryview | FilePayload, options: Options, report: ReportBuilder
) -> None:
    """Send the payload and read the reply side by side, as netcat does.

    Reading only after sending deadlocks on an echoing peer once the payload outgrows
    the buffers between us (the peer stops reading while we do not read its echo), and
    loses the reply of a peer that answers and closes before the payload is out. So a
    child task reads while this task sends:

    - this task sends the payload, then shuts our sending side if ``half_close``;
    - the reader reads until the peer's end of stream, the limit, ``reply_until``, or
      ``reply_idle_timeout`` seconds without a byte, counted only once the payload is
      out: a slow upload is not an idle peer. A reply that ends while the payload is
      still going out lets the send finish; what arrives meanwhile is read and dropped,
      so that an echoing peer never stalls the send.

    The send's fate is the workflow's: a send that fails is the report's error, and the
    reply keeps what arrived before the connection broke (the reader takes it, and the
    broken connection ends it at once). A receive that fails stops the reader only; its
    error is the report's if the payload goes out. The report's
    ``send`` phase lasts until the payload is out (the reader works meanwhile); its
    ``reply`` phase is the wait for the rest of the reply after that.
    """
    idle = options.reply_idle_timeout  # asyncio: None is no deadline, and no timer
    reply = ReplyBuffer(options.max_reply_bytes, options.reply_until)
    sending = True
    broken: SendError | None = None
    failure: OSError | None = None
    # asyncio: the timeout of the receive in progress, None between receives (only an
    # entered timeout can be rescheduled); once the payload is out, the body
    # reschedules it: the idle timer starts, or the dropping stops.
    receiving: asyncio.Timeout | None = None
    loop = asyncio.get_running_loop()  # asyncio: reschedule() counts in the loop's time

    async def receive(space: memoryview, quiet: asyncio.Timeout) -> int | None:
        # asyncio: a receive cancelled by this timeout has read nothing (see
        # _receive_into). As in _workflow(), only our own expiry ends it quietly.
        nonlocal receiving
        try:
            async with quiet:
                receiving = quiet
                return await conn._receive_into(space)
        except TimeoutError:
            if not quiet.expired():
                raise
            return None
        finally:
            receiving = None

    async def read() -> None:
        nonlocal failure
        try:
            while reply.end is None:
                with reply.free() as space:
                    count = await receive(space, asyncio.timeout(None if sending else idle))
                if count is None:
                    reply.idle()
                else:
                    reply.received(count)
            if not sending or reply.end == "eof":
                return
            # The reply has ended before the payload is out: read on and drop what
            # comes until the payload is out, so that an echoing peer reads it all.
            with memoryview(bytearray(DEFAULT_RECEIVE_BYTES)) as space:
                while sending:
                    if not await receive(space, asyncio.timeout(None)):
                        return  # asyncio: None, stopped by the body; 0, end of stream
        except OSError as exc:
            failure = exc  # the report's error if the send succeeds

    try:
        # asyncio: the body is the sender, so the group outlives every child that could
        # stop it (see _race() on gh-116720); the reader fails only by a bug.
        async with asyncio.TaskGroup() as tg:
            tg.create_task(read())
            try:
                await _send_payload(conn, data, report)
                if options.half_close:
                    await conn.send_eof()
                report.reply_at = _now()
            except SendError as exc:
                # The connection broke: the reader still takes what arrived before the break
                # (a peer's answer to a request it refused, then its reset), and then ends.
                broken = exc
            sending = False
            # asyncio: reschedule() takes a deadline in the loop's time; None is no timer
            if receiving is not None and reply.end is not None:
                receiving.reschedule(loop.time())
            elif receiving is not None and idle is not None:
                receiving.reschedule(loop.time() + idle)
    except* BaseException as group:
        # asyncio: the send's error, a cancellation or a bug goes out as itself, not in
        # a group (a TaskGroup groups what its children raise).
        raise bare_exception(group, asyncio.CancelledError) from None
    finally:
        report.reply = reply.value()
        report.reply_end = reply.end
    if broken is not None:
        raise broken
    if failure is not None:
        raise failure


# --------------------------------------------------------------------------------------
# stream_to_many and send_to_many: the same workflow for many targets, under a limit
# --------------------------------------------------------------------------------------

AnyTarget: TypeAlias = Target | str | tuple[str, int]

# Finished reports that may wait for the consumer to take them. A few smooth out a
# consumer that reads in bursts; more would only hold memory: what paces the fan-out is
# the limit on workflows, and a workflow keeps its slot until its report is taken.
_REPORT_BUFFER: Final = 16  # reports


def stream_to_many(
    targets: Iterable[AnyTarget] | AsyncIterable[AnyTarget],
    payload: bytes | bytearray | memoryview | BinaryIO,
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    # A deadline per target, not for the call: cancel the caller's scope for that.
    timeout: float | None = DEFAULT_TIMEOUT,
    happy_eyeballs_delay: float | None = DEFAULT_DELAY,
    read_reply: bool = False,
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    half_close: bool = True,
    reply_until: bytes | None = None,
    reply_idle_timeout: float | None = None,
    tls: bool | ssl.SSLContext = False,
) -> contextlib.AbstractAsyncContextManager[AsyncIterator[SendReport]]:
    """Run :func:`connect_check_send` for a stream of targets; yield reports as they end.

    Use it as ``async with stream_to_many(targets, payload) as reports:`` and then
    ``async for report in reports:``. Each report carries ``index``, the target's
    position in the input. ``targets`` may be any iterable or async iterable (a
    generator of millions will do): it is read lazily, a target at a time, and at most
    ``max_concurrency`` workflows run at once; the other options are
    :func:`connect_check_send`'s, for each target. A consumer that stops reading holds the
    workflows back, so memory is bounded by ``max_concurrency``, not by the number of
    targets. Leaving the block early, by ``break`` or an exception, cancels what is in
    flight and closes every socket before the block exits. A target that cannot be
    parsed is that target's ``"error"`` report: it is met after the fan-out began. With
    ``tls``, each target's certificate must carry its host name. A payload file must be
    seekable: every target sends it from its current position, which stays unchanged.

    It is a context manager, not an async generator that yields reports, because the
    workflows run in a nursery, and a nursery must not be suspended across a
    ``yield``: while the generator waits for its consumer, a cancellation or an error
    meant for the consumer would be delivered into the generator's tasks instead (see
    PEP 789 and "Cancel scopes and nurseries" in Trio's docs). Here the nursery is
    opened and closed by the ``async with`` in the consumer's own task.

    Raises:
        TypeError: ``targets`` is not iterable, the payload is not bytes-like or a
            seekable binary file, or an option has the wrong type (``tls`` not a bool
            or an SSLContext, say).
        TargetError: ``targets`` is a single target rather than a collection.
        ValueError: a negative or NaN timeout or delay, or a size below one.
    """
    # asyncio: the same holds for a TaskGroup (and an asyncio.timeout): suspended in an
    # async generator, the group would cancel the consumer's task, or a cancellation
    # meant for the consumer would land inside the generator's frame.
    checked = check_targets(targets)
    options = Options.check(
        timeout,
        happy_eyeballs_delay,
        read_reply,
        max_reply_bytes,
        half_close=half_close,
        reply_until=reply_until,
        reply_idle_timeout=reply_idle_timeout,
        tls=tls,
    )
    data = check_payload_or_file(payload, shared=True)
    limit = check_count(max_concurrency, "max_concurrency")
    return _fan_out(checked, data, options, limit, {}, fail_fast=False)


class _ReportStream:
    """What ``stream_to_many`` yields: the reports, as an async iterator."""

    # asyncio: a Queue has no end of stream before 3.13 (Queue.shutdown), so the feeder
    # puts None after the last report, and the fan-out marks the stream finished when
    # it stops early (where Trio's channel is closed): no read can wait forever then.
    __slots__ = ("_ended", "_queue", "_running", "finished")

    def __init__(
        self,
        queue: asyncio.Queue[SendReport | None],
        running: dict[int, ReportBuilder | SendReport],
    ) -> None:
        self._queue = queue
        self._running = running
        self._ended = False  # asyncio: the stream keeps its own end (see above)
        self.finished = False

    def __aiter__(self) -> _ReportStream:
        return self

    async def __anext__(self) -> SendReport:
        # asyncio: None or a finished, drained queue ends it (Trio: EndOfChannel).
        if self.finished and self._queue.empty():
            self._ended = True
        report = None if self._ended else await self._queue.get()
        if report is None:
            self._ended = True
            raise StopAsyncIteration
        return report

    def taken_late(self) -> list[SendReport]:
        """Reports that ended but were not taken when the fan-out stopped.

        Those waiting in the buffer, then those whose hand-over the stop cut short.
        Complete once the fan-out's block has exited.
        """
        late = []
        # asyncio: QueueEmpty ends it (Trio: WouldBlock, or EndOfChannel once closed).
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                report = self._queue.get_nowait()
                if report is not None:  # asyncio: the None that ends it is no report
                    late.append(report)
        late += [entry for entry in self._running.values() if isinstance(entry, SendReport)]
        return late


class _FailFast(Exception):
    """Raised by a workflow whose report is not ok, to stop the fan-out's task group.

    asyncio's documented way to stop a TaskGroup early: a child raises, the group
    cancels the others, and ``except* _FailFast`` around the group takes it back.
    """


class _ConsumerLeft(Exception):
    """Raised in the fan-out's ``async with`` body when the consumer leaves it."""


def _stop(group: asyncio.TaskGroup, reason: type[Exception]) -> None:
    # asyncio: Python 3.15 adds TaskGroup.cancel() (gh-108951), which stops the group
    # without an exception; before it, a private exception raised inside the group.
    cancel = getattr(group, "cancel", None)
    if cancel is None:
        raise reason
    cancel()


@contextlib.asynccontextmanager
async def _fan_out(
    targets: Iterable[object] | AsyncIterable[object],
    data: memoryview | FilePayload,
    options: Options,
    limit: int,
    running: dict[int, ReportBuilder | SendReport],
    *,
    fail_fast: bool,
) -> AsyncIterator[_ReportStream]:
    """The fan-out behind both ``stream_to_many`` and ``send_to_many``.

    A feeder reads the targets and starts a workflow for each one, once the limiter
    has a slot for it; each workflow sends its report down a memory channel and only
    then gives its slot back. So a consumer that does not read stops the feeder after
    ``limit`` workflows plus the channel's buffer (backpressure, not a growing queue).

    ``running`` holds each workflow not yet handed over: its builder while it runs,
    its report once it ended. With ``fail_fast``, the first report that is not ok
    cancels the fan-out, and the caller finds in ``running`` what was cut short.
    """
    # asyncio: the channel is an asyncio.Queue with a maxsize, and the limiter a
    # Semaphore: it has no owner, so the feeder acquires what the workflow releases.
    queue: asyncio.Queue[SendReport | None] = asyncio.Queue(_REPORT_BUFFER)
    semaphore = asyncio.Semaphore(limit)

    # asyncio: a workflow stops its group itself, so it is given the group (Trio's
    # cancels the `stop` scope it closes over).
    async def run_one(index: int, target: Target, workers: asyncio.TaskGroup) -> None:
        report = ReportBuilder(target, _now(), index)
        running[index] = report
        try:
            done = await _workflow(target, data, options, report)
            running[index] = done
            if fail_fast and not done.ok:
                # asyncio: _FailFast stops the group (or tg.cancel() on 3.15+).
                _stop(workers, _FailFast)  # the report stays in `running` for the caller
                return
            await queue.put(done)
            del running[index]
        finally:
            semaphore.release()  # asyncio: a Semaphore has no owner to name

    async def start(workers: asyncio.TaskGroup, index: int, value: object) -> None:
        try:
            target = Target.parse(value)
        except TargetError as exc:
            running[index] = bad = bad_target_report(value, exc, index)
            await queue.put(bad)
            del running[index]
            return
        # Take the slot before spawning: at most `limit` tasks exist at once, instead
        # of one task per target queueing on the semaphore. (asyncio: acquire() does
        # not yield when a slot is free, so no _nowait twin is needed.)
        await semaphore.acquire()
        workers.create_task(run_one(index, target, workers))
        # asyncio: nothing to look at: Task.cancel() throws CancelledError into the
        # feeder where it waits, even a wait that has just ended.

    async def feed() -> None:
        # The channel closes when the last workflow has sent: the reports end there.
        # asyncio: a Queue is not closed; None, put after the last report, ends it.
        async with asyncio.TaskGroup() as workers:
            if isinstance(targets, AsyncIterable):
                index = 0
                async for value in targets:
                    await start(workers, index, value)
                    index += 1
            else:
                for index, value in enumerate(targets):
                    await start(workers, index, value)
        await queue.put(None)

    # asyncio: count the cancellations asked of this task, to tell one from outside
    # from the group's own stop, which 3.11 and 3.12 may swallow (see the end).
    task = asyncio.current_task()
    assert task is not None
    cancels = task.cancelling()
    body_error: BaseException | None = None
    # asyncio: no scope to cancel; the group is stopped from inside (_stop), and
    # except* below unwraps what Trio's _bare_cancelled() does.
    stream = _ReportStream(queue, running)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(feed())
            try:
                yield stream  # asyncio: made above, since `finally` marks it finished
            except (asyncio.CancelledError, GeneratorExit):
                # asyncio: from outside, or from the group stopping after _FailFast.
                raise
            except BaseException as exc:
                # The consumer's own exception (on_report's, say) must come out bare,
                # not in the group the TaskGroup would wrap it in: keep it for later.
                body_error = exc
            # Leaving the block, early or not, stops whatever is still running.
            _stop(group, _ConsumerLeft)
    except* (_FailFast, _ConsumerLeft):
        pass  # asyncio: we stopped the group; its tasks are cancelled and awaited
    except* BaseException as errors:
        # asyncio: a bug, Ctrl+C or an error from the caller's iterator goes out as
        # itself, not in the group (Trio's twin is _bare_cancelled()).
        raise bare_exception(errors, asyncio.CancelledError) from None
    finally:
        stream.finished = True
    if task.cancelling() > cancels:
        # asyncio: a cancellation from outside that arrived while the group was
        # stopping itself. Python 3.13 re-delivers it at the next await (gh-116720);
        # 3.11 and 3.12 drop it behind the group's error, so it is raised here.
        await asyncio.sleep(0)
        raise asyncio.CancelledError
    if body_error is not None:
        raise body_error


async def send_to_many(
    targets: Iterable[AnyTarget],
    payload: bytes | bytearray | memoryview | BinaryIO,
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    # A deadline per target, not for the call: cancel the caller's scope for that.
    timeout: float | None = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    happy_eyeballs_delay: float | None = DEFAULT_DELAY,
    read_reply: bool = False,
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    half_close: bool = True,
    reply_until: bytes | None = None,
    reply_idle_timeout: float | None = None,
    tls: bool | ssl.SSLContext = False,
    fail_fast: bool = False,
    on_report: Callable[[SendReport], object] | None = None,
) -> list[SendReport]:
    """Run :func:`connect_check_send` for every target, at most ``max_concurrency`` at once.

    Every target is checked before any I/O. ``timeout`` and the reply options apply to
    each target, as in :func:`connect_check_send`. The
    reports come back one per target, in input order; a failing target never disturbs
    the others, unless ``fail_fast`` is set: then the first report that is not ``"ok"``
    cancels the rest, whose reports say ``"cancelled"``. ``on_report`` is called with
    each report as it completes (the cancelled ones included); it must be a plain
    callable, not a coroutine function. If it raises, the rest is cancelled, every
    socket is closed, and its exception propagates as it was raised. With ``tls``, each
    target's certificate must carry its host name. A payload file must be seekable:
    every target sends it from its current position, which stays unchanged. Built on
    :func:`stream_to_many`'s fan-out, with the reports gathered in input order.

    Raises:
        TargetError: a target is not valid (nothing is sent).
        TypeError: the payload is not bytes-like or a seekable binary file,
            ``targets`` is not iterable,
            ``fail_fast`` is not a bool, ``on_report`` is not a plain callable, or
            ``tls`` is not a bool or an SSLContext.
        ValueError: a negative or NaN timeout or delay, or a size below one.
    """
    parsed = parse_targets(targets)
    options = Options.check(
        timeout,
        happy_eyeballs_delay,
        read_reply,
        max_reply_bytes,
        half_close=half_close,
        reply_until=reply_until,
        reply_idle_timeout=reply_idle_timeout,
        tls=tls,
    )
    data = check_payload_or_file(payload, shared=True)
    limit = check_count(max_concurrency, "max_concurrency")
    stop_early = check_flag(fail_fast, "fail_fast")
    callback = check_callback(on_report, "on_report")
    reports: list[SendReport | None] = [None] * len(parsed)
    running: dict[int, ReportBuilder | SendReport] = {}

    def deliver(report: SendReport) -> None:
        assert report.index is not None
        reports[report.index] = report
        if callback is not None:
            check_not_awaitable(callback(report), "on_report")

    async with _fan_out(parsed, data, options, limit, running, fail_fast=stop_early) as stream:
        async for report in stream:
            deliver(report)
    if running or None in reports:  # fail_fast stopped the fan-out
        for report in stream.taken_late():
            deliver(report)
        for builder in running.values():
            if isinstance(builder, ReportBuilder):
                deliver(builder.finish("cancelled", _now(), FAIL_FAST_TEXT))
        for index, target in enumerate(parsed):
            if reports[index] is None:
                deliver(cancelled_report(target, FAIL_FAST_TEXT, index))
    return [report for report in reports if report is not None]
