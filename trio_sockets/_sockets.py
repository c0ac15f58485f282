"""Plain socket helpers that both ports share: synchronous, with no ``await`` and no clock.

Each is a call the kernel answers at once (a zero-timeout poll, a non-blocking read,
a close), so it is the same on Trio and asyncio, and a fix lands here once.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import ssl
import sys
from typing import Final, Protocol

from ._checks import DEFAULT_RECEIVE_BYTES
from ._errors import SendError, describe_error

__all__ = [
    "NO_SENDFILE",
    "bind_address_no_port",
    "close_quietly",
    "discard_received",
    "send_error",
    "writable_now",
]

# os.sendfile() errors that mean "not this file, not zero-copy" before any byte went
# out (as CPython's socket.sendfile() decides): then the file is sent in chunks.
NO_SENDFILE: Final = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})

_DISCARD_READS: Final = 256  # reads of up to 64 KiB: what a receive buffer holds, and more


class _Socket(Protocol):
    # What these helpers use of a socket: Trio's socket and the stdlib's both have it.
    def fileno(self) -> int: ...

    def close(self) -> None: ...


def bind_address_no_port() -> int | None:
    """Linux's ``IP_BIND_ADDRESS_NO_PORT`` option (level ``IPPROTO_IP``); None elsewhere.

    With it, binding only the local IP leaves the port to ``connect()``, so that local
    ports can be shared between connections to different peers. Python's socket module
    has the name from 3.12 on; before, Linux's value is 24. Other systems have no such
    option, and there 24 is another one (``IP_RECVIF`` on Windows, ``IP_RECVTTL`` on
    macOS), so it is set on Linux alone.
    """
    if not sys.platform.startswith("linux"):
        return None
    return int(getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24))


def writable_now(fd: int) -> bool:
    """Whether ``fd`` can take bytes right now, asked of the kernel with a zero timeout.

    A socket that has just connected is almost always writable, and asking first spares
    registering it with the I/O manager and a trip through the event loop. Windows has no
    ``poll()``: there the answer is False, and the caller waits through the event loop,
    which is always right.
    """
    poll = getattr(select, "poll", None)
    if poll is None:
        return False
    poller = poll()
    poller.register(fd, select.POLLOUT)
    for _, events in poller.poll(0):
        return bool(events & select.POLLOUT)
    return False


def send_error(
    exc: OSError, sent: int, total: int | None, cls: type[SendError] = SendError
) -> SendError:
    """The :class:`SendError` (of class ``cls``) for ``exc``, after ``sent`` of ``total`` bytes."""
    of = "" if total is None else f" of {total}"
    code = None if isinstance(exc, ssl.SSLError) else exc.errno  # an SSL code is no errno
    # The errno is the SendError's own ("[Errno 32] send failed ..."): the cause's words alone.
    reason = exc.strerror if code is not None and exc.strerror else exc
    return cls(code, f"send failed after {sent}{of} bytes: {reason}", bytes_sent=sent)


def discard_received(sock: _Socket) -> None:
    """Read and drop whatever has arrived, before closing a connection.

    Closing a socket with unread bytes makes the kernel send RST at once and drop what it
    had not sent yet (RFC 2525 section 2.17): the end of a payload that it had already
    taken, and that ``bytes_sent`` counts. Peers do send what a client that only sends
    never reads: a greeting (SMTP's and FTP's ``220 ...``), a TLS 1.3 server's session
    tickets after the handshake. When nothing arrived, this costs one read failing with
    EAGAIN. It narrows the window, it does not close it: bytes that arrive after this
    read and before the close still turn the close into a RST.
    """
    fd = sock.fileno()
    try:
        for _ in range(_DISCARD_READS):
            if not os.read(fd, DEFAULT_RECEIVE_BYTES):
                return
    except OSError:  # nothing more to read now (EAGAIN), or closed
        pass  # not contextlib.suppress(): it runs on every close, and costs a third more


def close_quietly(sock: _Socket, exc: BaseException) -> None:
    """Close a socket we give up on because of ``exc``, which stays the error.

    Should ``close()`` fail too, its error becomes a note on ``exc`` instead of
    replacing it: a cancellation must stay a cancellation, a refused connect a refused
    connect.
    """
    try:
        sock.close()
    except Exception as close_error:
        exc.add_note(f"closing the socket failed too: {describe_error(close_error)}")
