"""TLS for the asyncio port: ``ssl.SSLObject`` and two ``MemoryBIO``s over a raw socket.

asyncio's own TLS lives inside its transports: ``loop.create_connection(ssl=...)``,
``asyncio.open_connection(ssl=...)`` and ``loop.start_tls()`` all need a transport and
a protocol, and hand back a transport. The ``loop.sock_*`` style this port is written in
(a non-blocking socket and readiness waits) has no TLS at all: ``loop.sock_sendall()``
sends bytes as they are. So the port does what asyncio's ``sslproto`` does inside its
transport, in the open: the ``ssl`` module's sans-I/O object, :class:`ssl.SSLObject`,
encrypts into one memory buffer and decrypts from another, and this module moves bytes
between those buffers and the socket, waiting with the port's own readiness waits.

The Trio port needs none of this: ``trio.SSLStream`` wraps any Trio stream, and the
port's ``Connection`` is one (see ``Connection._start_tls`` there).

The pump is the one ``trio.SSLStream`` runs, cut down to what a client needs:

- call the ``SSLObject`` (handshake, write, read);
- send whatever it wrote to the outgoing buffer (waiting for writability), and only then
  consider the call done;
- when it raises ``SSLWantReadError``, receive from the socket into the incoming buffer
  (waiting for readability; end of stream is ``write_eof()``) and call it again.

One task may send while another receives (the workflow reads the reply while it sends),
as ``trio.SSLStream`` allows. Both may need the socket in either direction: a receive
can produce records to send (a TLS 1.3 KeyUpdate answer), a send can need bytes from the
peer (a TLS 1.2 renegotiation). So the outgoing buffer is flushed under one lock, which
keeps records in the order the ``SSLObject`` made them, and the socket is read under
another, with a count of receives so that a task that waited for the lock while another
task received calls the ``SSLObject`` again instead of waiting for bytes that came already.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import TypeVar

from ._asyncio_tools import wait_readable, wait_writable

__all__ = ["TLSLayer"]

T = TypeVar("T")

_RECEIVE_BYTES = 65536  # bytes read from the socket at a time, whole records or not


class TLSLayer:
    """A TLS client session over a connected non-blocking socket.

    Like ``trio.SSLStream``, a cancellation or an error while records are going out, or
    during the handshake, leaves the session broken (a record may have gone out in part):
    every later call then raises :class:`ssl.SSLError`, and the only thing left to do is
    to close the socket. A receive that is cancelled while it waits breaks nothing.
    """

    __slots__ = (
        "_broken",
        "_incoming",
        "_loop",
        "_outgoing",
        "_receive_lock",
        "_receives",
        "_send_lock",
        "_sock",
        "object",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        context: ssl.SSLContext,
        server_hostname: str,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.object = context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        # Records leave in the order the SSLObject made them: one task sends at a time.
        self._send_lock = asyncio.Lock()
        # One task reads the socket at a time; _receives counts what came (see _fill).
        self._receive_lock = asyncio.Lock()
        self._receives = 0
        self._broken = False

    def version(self) -> str | None:
        """The TLS version agreed on, such as ``"TLSv1.3"``."""
        return self.object.version()

    def cipher(self) -> tuple[str, str, int] | None:
        """The cipher suite agreed on: ``(name, protocol, secret bits)``."""
        return self.object.cipher()

    async def do_handshake(self) -> None:
        """Run the handshake; certificate and host name checks happen here."""
        try:
            await self._retry(self.object.do_handshake)
        except BaseException:
            self._broken = True
            raise

    async def send_all(self, data: memoryview) -> None:
        """Encrypt ``data`` and return once the kernel has taken all of its records."""
        await self._retry(self.object.write, data)

    async def receive_some(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of plaintext; ``b""`` once the peer's close_notify came."""
        try:
            return await self._retry(self.object.read, max_bytes)
        except ssl.SSLZeroReturnError:
            return b""

    async def receive_into(self, buffer: memoryview) -> int:
        """Decrypt into ``buffer``; the count, 0 once the peer's close_notify came."""

        def read_into() -> int:
            # typeshed says bytes; given a buffer, read() returns the count
            return self.object.read(len(buffer), buffer)  # type: ignore[return-value]

        try:
            return await self._retry(read_into)
        except ssl.SSLZeroReturnError:
            return 0

    async def aclose(self) -> None:
        """Send a close_notify alert and wait until the kernel has taken it; never raise.

        One-way, as ``trio.SSLStream.aclose()`` does it: waiting for the peer's own
        close_notify could wait forever on a peer that is not reading.
        """
        if self._broken:
            return
        try:
            # The first SSL_shutdown() writes our close_notify; Python then asks for the
            # peer's, which is not there yet: SSLWantReadError, expected.
            self.object.unwrap()
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError):
            return
        with contextlib.suppress(OSError):  # the peer is gone already: nothing to tell it
            await self._flush()

    async def _retry(self, operation: Callable[..., T], *args: object) -> T:
        if self._broken:
            raise ssl.SSLError("the TLS session broke earlier (an error or a cancellation)")
        while True:
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                await self._flush()  # the handshake's messages, before waiting for more
                await self._fill()
                continue
            await self._flush()
            return result

    async def _flush(self) -> None:
        # Everything the SSLObject wrote, to the kernel; a call counts as done only then.
        if not self._outgoing.pending:
            return
        async with self._send_lock:
            if self._broken:
                # Another task's send tore a record while this one waited for the lock:
                # what follows could never be decrypted, and must not count as sent.
                raise ssl.SSLError("the TLS session broke earlier (an error or a cancellation)")
            data = memoryview(self._outgoing.read())
            sent = 0
            try:
                while sent < len(data):
                    try:
                        sent += self._sock.send(data[sent:])
                    except BlockingIOError:
                        await wait_writable(self._loop, self._sock)
            except BaseException:
                # The rest of a record is lost: the peer could never decrypt what follows.
                self._broken = True
                raise

    async def _fill(self) -> None:
        # What the socket has, to the SSLObject; end of stream is the buffer's EOF, which
        # the SSLObject reports as SSLEOFError unless a close_notify came first (RFC 8446
        # section 6.1: without one, the data may have been cut short).
        seen = self._receives
        async with self._receive_lock:
            if self._receives != seen:
                return  # another task received while we waited: try the SSLObject again
            while True:
                try:
                    data = self._sock.recv(_RECEIVE_BYTES)
                except BlockingIOError:
                    await wait_readable(self._loop, self._sock)
                    continue
                break
            self._receives += 1
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()
