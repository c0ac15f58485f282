"""Connect, check, send, written with Trio's structured concurrency (the reference port).

Every concurrent piece here lives inside a nursery or a cancel scope: the happy-eyeballs
race is a nursery whose winner cancels its siblings, the deadline of a workflow is a cancel
scope, and the fan-out is a nursery paced by a capacity limiter. ``asyncio_port.py`` is
the same module, line for line, in asyncio; ``diff`` the two to see what the model changes.
"""

from __future__ import annotations

import contextlib
import errno
import math
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
from types import TracebackType
from typing import BinaryIO, Final, TypeAlias

import trio

from ._addresses import (
    AddrInfo,
    format_address,
    numeric_addrinfo,
    reorder_for_rfc_8305_section_4,
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
BusyError = trio.BusyResourceError
ClosedError = trio.ClosedResourceError

Socket = trio.socket.SocketType

_now = trio.current_time


@contextlib.contextmanager
def _bare_cancelled() -> Iterator[None]:
    """Let one bare exception out of a nursery: ``trio.Cancelled``, or what stopped it.

    With strict exception groups (Trio's default), a nursery raises a group:
    ``BaseExceptionGroup([Cancelled, ...])`` when its children were all cancelled, and
    ``[KeyboardInterrupt, Cancelled, ...]`` or ``[RuntimeError, Cancelled, ...]`` when
    Ctrl+C or a bug in one child cancelled the others. Our nurseries are an
    implementation detail, so callers get what they would get without one: the one
    exception that ended it (see :func:`~trio_sockets._errors.bare_exception`), and a
    ``Cancelled`` that Trio's own scopes recognise. Ctrl+C stays a ``KeyboardInterrupt``,
    so that a command line exits with 130, not with a group traceback.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        raise bare_exception(group, trio.Cancelled) from None


def _send_error(exc: OSError, sent: int, total: int | None) -> SendError:
    # trio: also a BrokenResourceError, as Trio streams report a broken peer
    return send_error(exc, sent, total, _BrokenSendError)


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
        count = await trio.to_thread.run_sync(read, buffer, abandon_on_cancel=True)
    if count is None:  # a non-blocking file with nothing to read right now
        raise BlockingIOError(errno.EAGAIN, f"payload file is non-blocking: {file!r:.60}")
    return int(count)


class _BrokenSendError(SendError, trio.BrokenResourceError):
    # trio: a Trio stream says "the other side is gone" with BrokenResourceError, and
    # code written for any stream catches that (trio.SSLStream.aclose() does, when its
    # close_notify meets a closed peer). Our send failure is both that and SendError.
    pass


def _tls_failure(exc: OSError | trio.BrokenResourceError) -> OSError:
    # trio: SSLStream reports a TLS failure as BrokenResourceError raised from the ssl
    # module's error; the reports give that error (an OSError), as the asyncio port's
    # SSLObject raises it.
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc.__cause__, OSError):
        return exc.__cause__
    return ssl.SSLError("the TLS session broke earlier (an error or a cancellation)")


# trio: see _broken(); one subclass per OSError class, made on first use.
_BROKEN_TYPES: dict[type[OSError], type[OSError]] = {}


def _broken(exc: OSError) -> OSError:
    # trio: a Trio stream reports a broken peer with BrokenResourceError (the
    # HalfCloseableStream contract), when receiving and half-closing as when sending
    # (see _BrokenSendError). Ours is a subclass of the error's own class that is also
    # BrokenResourceError: a ConnectionResetError stays one (and reports name it so).
    if isinstance(exc, trio.BrokenResourceError):
        return exc
    cls = type(exc)
    broken = _BROKEN_TYPES.get(cls)
    if broken is None:
        broken = type(f"_Broken{cls.__name__}", (cls, trio.BrokenResourceError), {})
        broken.__module__ = __name__
        _BROKEN_TYPES[cls] = broken
    return broken(*exc.args)


# --------------------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------------------


class Connection(trio.abc.HalfCloseableStream):
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
        self.remote_address = sock.getpeername()
        self.local_address = sock.getsockname()
        self.attempts = attempts
        self.bytes_sent = 0
        self.bytes_received = 0
        self._closed = False
        self._sending = False
        self._receiving = False
        self._eof_sent = False
        self._tls: trio.SSLStream[Connection] | None = None

    @property
    def family(self) -> _stdlib_socket.AddressFamily:
        # Asked of the socket when read, not stored: making the enum member costs as
        # much as the rest of the constructor, and the workflow never reads it.
        return _stdlib_socket.AddressFamily(self.socket.family)

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
        if await self._wait_writable():
            await trio.lowlevel.checkpoint()  # trio: every async operation is a checkpoint

    async def _wait_writable(self) -> bool:
        # The check as the workflow takes it, before it sends: True when the socket was
        # writable already (trio: then a pending cancellation still raises here, but
        # without a schedule point: the send that follows has one, and a second made
        # the run loop turn once more per target, about 5 % of the instructions of a
        # short workflow, counted with callgrind. Not leaving the cancellation to the
        # send: a file's os.sendfile() looks only after its first chunk).
        self._check_open()
        if self._sending:
            raise BusyError("another task is already sending on this connection")
        if writable_now(self.socket.fileno()):
            await trio.lowlevel.checkpoint_if_cancelled()  # trio: see above
            return True
        self._sending = True  # waiting to send is sending, for send_eof() and others
        try:
            await self.socket.wait_writable()
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
            if not view:
                await trio.lowlevel.checkpoint()
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
                # before anything was written. Trio's socket tries the send first and
                # waits for writability only on EAGAIN; checkpoint_if_cancelled() comes
                # before the call (a pending cancel raises before any byte goes out) and
                # a cancel-shielded checkpoint after a send that went through (its count
                # is returned, never lost to a cancel), and a cancelled wait sent nothing.
                n = await self.socket.send(view[sent:])
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
            if self.bytes_sent == base:
                await trio.lowlevel.checkpoint()
        finally:
            self._sending = False
            if source.start is not None:
                # Just past the last byte sent; or back at the start for a file that
                # targets share, so that the caller finds it where it was.
                sent = self.bytes_sent - base if source.advance else 0
                source.file.seek(source.start + sent)

    async def _sendfile(self, source: FilePayload, base: int) -> bool:
        # trio: Trio has no sendfile. os.sendfile() on the socket's descriptor, waiting
        # for writability whenever the kernel buffer is full, is all it takes, and each
        # call returns the count the kernel took, so bytes_sent stays exact.
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
                await self.socket.wait_writable()
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
            # trio: a checkpoint per chunk, so that a large file sent to a fast reader
            # lets other tasks run, and a cancellation land, between chunks.
            await trio.lowlevel.checkpoint()

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
            # trio: SSLStream's own failures are BrokenResourceError, not OSError
            except (OSError, trio.BrokenResourceError) as exc:
                self._check_open()
                failure = _tls_failure(exc)  # trio: the ssl error behind SSLStream's
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
                # trio: SSLStream's type says bytes or bytearray; it gives bytes
                data = bytes(await self._tls.receive_some(max_bytes))
            else:
                data = await self.socket.recv(max_bytes)
        self.bytes_received += len(data)
        return data

    async def _receive_into(self, buffer: memoryview) -> int:
        # receive_some() into the caller's buffer: the reply is read with no bytes
        # object per receive. Returns the count; 0 means the peer closed its side.
        with self._receiver():
            if self._tls is not None:
                data = await self._tls.receive_some(len(buffer))  # decrypted: a copy anyway
                count = len(data)
                buffer[:count] = data
            else:
                count = await self.socket.recv_into(buffer)
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
        except (OSError, trio.BrokenResourceError) as exc:
            self._check_open()
            raise _broken(_tls_failure(exc)) from exc  # trio: see _broken()
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
        await trio.lowlevel.checkpoint()  # trio: every async operation is a checkpoint
        if not self._eof_sent:
            self._eof_sent = True
            try:
                self.socket.shutdown(_stdlib_socket.SHUT_WR)
            except OSError as exc:
                raise _broken(exc) from exc  # trio: see _broken()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            discard_received(self.socket)  # unread bytes would make close() a RST
            self.socket.close()

    async def aclose(self) -> None:
        """Close the connection; closing twice is harmless.

        With TLS, a close_notify alert goes first (unless :meth:`send_eof` shut the
        sending side), and the close waits until the kernel has taken it, not for the
        peer's answer.
        """
        if self._tls is not None and not self._closed and not self._eof_sent:
            # trio: SSLStream.aclose() closes the plain Connection beneath, and the socket
            discard_received(self.socket)
            try:
                await self._tls.aclose()  # close_notify, then the plain Connection beneath
            finally:
                self._close()
            return
        self._close()
        await trio.lowlevel.checkpoint()  # trio: asyncio's aclose() need not yield

    async def _start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        # TLS composes over any Trio stream: that is the Trio lesson. trio.SSLStream
        # takes a HalfCloseableStream, and a plain Connection over this same socket is
        # one; it carries the records (and counts the bytes on the wire), while this
        # Connection becomes the TLS stream and counts the application's bytes. The
        # asyncio port must pump an SSLObject by hand for the same result.
        transport = Connection(self.socket, self.attempts)
        tls = trio.SSLStream(transport, context, server_hostname=server_hostname)
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
        found = await trio.socket.getaddrinfo(
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
        # One address, nothing to race: no nursery, no tasks.
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
        sock = trio.socket.socket(family, type_, proto)
    except OSError as exc:  # e.g. EAFNOSUPPORT on a host without IPv6
        log.ended(index, "failed", _now(), describe_error(exc))
        raise
    try:
        if local is not None:
            await _bind_local(sock, local, sockaddr)
        await sock.connect(sockaddr)
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
    except (OSError, trio.BrokenResourceError) as exc:
        conn._close()
        # trio: the ssl error behind SSLStream's BrokenResourceError
        raise handshake_error(target, _tls_failure(exc), conn.attempts) from exc
    except BaseException:
        conn._close()
        raise


async def _bind_local(sock: Socket, local: str, sockaddr: tuple[object, ...]) -> None:
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
        await sock.bind((local, 0))
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

    async def attempt(info: AddrInfo, failed: trio.Event, index: int) -> None:
        nonlocal winner
        try:
            conn = await _attempt(info, local, log, index)
        except OSError as exc:
            errors.append(exc)
            failed.set()  # hurry the next attempt along
            return
        if winner is None:
            winner = conn
            nursery.cancel_scope.cancel()
        else:
            # Two attempts connected in the same tick: only the first one wins.
            log.ended(index, "cancelled", _now(), "another attempt connected first")
            conn._close()

    async def launch() -> None:
        for info in infos:
            failed = trio.Event()
            nursery.start_soon(attempt, info, failed, _start(info, log))
            with trio.move_on_after(math.inf if delay is None else delay):
                await failed.wait()

    try:
        # One exception out, never a group: a cancellation, Ctrl+C or a bug in an
        # attempt comes out as itself, as it would from a single attempt.
        with _bare_cancelled():
            async with trio.open_nursery() as nursery:
                # The launcher is a child like the attempts, so that a winner's
                # nursery.cancel_scope.cancel() stops it and its siblings alike.
                nursery.start_soon(launch)
    except BaseException as exc:
        if winner is not None:
            close_quietly(winner.socket, exc)
        raise
    return winner


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
    # trio: the deadline is a cancel scope, and the block is left quietly when it expires.
    with trio.move_on_after(math.inf if options.timeout is None else options.timeout):
        return await _workflow_steps(target, data, options, report)
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
            await conn._wait_writable()  # trio: the send that follows is the schedule point
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
    idle = math.inf if options.reply_idle_timeout is None else options.reply_idle_timeout
    reply = ReplyBuffer(options.max_reply_bytes, options.reply_until)
    sending = True
    broken: SendError | None = None
    failure: OSError | None = None
    # trio: the scope of the receive in progress; once the payload is out, the body
    # moves its deadline: the idle timer starts, or the dropping stops.
    receiving = trio.CancelScope()

    async def read() -> None:
        nonlocal receiving, failure  # trio: the scopes are entered here, not in a helper
        try:
            while reply.end is None:
                with reply.free() as space:
                    count = None
                    # trio: a receive cancelled by this scope has read nothing: Trio waits
                    # for readability before the recv, and a cancelled wait reads no byte.
                    with trio.move_on_at(math.inf if sending else _now() + idle) as receiving:
                        count = await conn._receive_into(space)
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
                    with trio.move_on_at(math.inf) as receiving:
                        if not await conn._receive_into(space):
                            return
        except OSError as exc:
            failure = exc  # the report's error if the send succeeds

    try:
        # One exception out, never a group: the send's error, or a cancellation.
        with _bare_cancelled():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
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
                receiving.deadline = _now() + (idle if reply.end is None else 0)
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

    __slots__ = ("_receive", "_running")

    def __init__(
        self,
        receive: trio.MemoryReceiveChannel[SendReport],  # trio: a channel, closed at the end
        running: dict[int, ReportBuilder | SendReport],
    ) -> None:
        self._receive = receive  # trio: the channel's receiving end
        self._running = running

    def __aiter__(self) -> _ReportStream:
        return self

    async def __anext__(self) -> SendReport:
        # trio: a report already buffered is taken without a schedule point (a pending
        # cancellation still raises here). receive() would yield for each one, and
        # with a report finishing every few hundred microseconds the run loop would
        # then never sleep in epoll_wait: it spun once per report (2014 loop turns
        # for 2000 TLS targets, 136 without the yield), which cost 15 % more CPU
        # time per TLS workflow. At most the channel's buffer is taken before a wait.
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            return self._receive.receive_nowait()
        except trio.WouldBlock:
            pass
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def taken_late(self) -> list[SendReport]:
        """Reports that ended but were not taken when the fan-out stopped.

        Those waiting in the buffer, then those whose hand-over the stop cut short.
        Complete once the fan-out's block has exited.
        """
        late = []
        with contextlib.suppress(trio.WouldBlock, trio.EndOfChannel):
            while True:
                late.append(self._receive.receive_nowait())
        late += [entry for entry in self._running.values() if isinstance(entry, SendReport)]
        return late


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
    send, receive = trio.open_memory_channel[SendReport](_REPORT_BUFFER)
    limiter = trio.CapacityLimiter(limit)
    stop = trio.CancelScope()  # fail_fast cancels it; it never sees outside cancellation

    async def run_one(index: int, target: Target) -> None:
        report = ReportBuilder(target, _now(), index)
        running[index] = report
        try:
            done = await _workflow(target, data, options, report)
            running[index] = done
            if fail_fast and not done.ok:
                # The caller takes this report from the channel's buffer, or finds it
                # in `running` when the buffer was full and the send was cancelled.
                stop.cancel()
            try:
                # trio: into the channel's buffer without a schedule point when it has
                # room (the task ends here, and the workflow took its checkpoints);
                # send() made the run loop turn once more for every target, about 6 %
                # of the instructions of a short workflow (counted with callgrind).
                send.send_nowait(done)
            except trio.WouldBlock:
                await send.send(done)
            del running[index]
        finally:
            limiter.release_on_behalf_of(index)

    async def start(workers: trio.Nursery, index: int, value: object) -> None:
        try:
            target = Target.parse(value)
        except TargetError as exc:
            running[index] = bad = bad_target_report(value, exc, index)
            await send.send(bad)
            del running[index]
            return
        # Take the slot before spawning: at most `limit` tasks exist at once, instead
        # of one task per target queueing on the limiter. Only wait when no slot is
        # free, so that one wakeup fills every slot freed meanwhile.
        try:
            limiter.acquire_on_behalf_of_nowait(index)
        except trio.WouldBlock:
            await limiter.acquire_on_behalf_of(index)
        workers.start_soon(run_one, index, target)
        # With slots free the loop above never blocks, so it would read on after the
        # fan-out was cancelled (the consumer left, say): look before the next target.
        await trio.lowlevel.checkpoint_if_cancelled()

    async def feed() -> None:
        # The channel closes when the last workflow has sent: the reports end there.
        # A plain `with`: aclose() would take a checkpoint, where the consumer's exit
        # could cancel us and the Cancelled would replace an error in flight.
        with send:
            async with trio.open_nursery() as workers:
                if isinstance(targets, AsyncIterable):
                    index = 0
                    async for value in targets:
                        await start(workers, index, value)
                        index += 1
                else:
                    for index, value in enumerate(targets):
                        await start(workers, index, value)

    body_error: BaseException | None = None
    with stop, _bare_cancelled():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            try:
                yield _ReportStream(receive, running)
            except (trio.Cancelled, GeneratorExit):
                raise  # from outside, or from `stop`: the scopes above sort it out
            except BaseException as exc:
                # The consumer's own exception (on_report's, say) must come out bare,
                # not in the group the nursery would wrap it in: keep it for later.
                body_error = exc
            # Leaving the block, early or not, stops whatever is still running.
            nursery.cancel_scope.cancel()
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
