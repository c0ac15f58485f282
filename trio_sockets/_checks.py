"""Argument checks, and the options of one workflow, checked before any I/O.

Part of the sans-I/O core: no ``await``, no clock, no socket calls.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import inspect
import io
import ipaddress
import math
import os
import socket
import ssl
import stat
from collections.abc import Callable
from functools import cache
from typing import Final

from ._addresses import SockAddr, _is_ip, format_address

__all__ = [
    "DEFAULT_DELAY",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_REPLY_BYTES",
    "DEFAULT_RECEIVE_BYTES",
    "DEFAULT_TIMEOUT",
    "FILE_CHUNK",
    "MAX_BYTES",
    "SENDFILE_CHUNK",
    "FilePayload",
    "TLS_RECORD_BYTES",
    "Options",
    "check_callback",
    "check_count",
    "check_flag",
    "check_idle_timeout",
    "check_local_address",
    "check_marker",
    "check_not_awaitable",
    "check_payload",
    "check_payload_or_file",
    "check_seconds",
    "check_server_hostname",
    "check_tls",
    "local_address_error",
]

# RFC 8305 section 8 recommends 250 ms as the "Connection Attempt Delay".
DEFAULT_DELAY: Final = 0.250  # seconds
DEFAULT_TIMEOUT: Final = 10.0  # seconds, for the whole workflow
DEFAULT_MAX_REPLY_BYTES: Final = 65536  # bytes
DEFAULT_MAX_CONCURRENCY: Final = 100  # workflows at once
DEFAULT_RECEIVE_BYTES: Final = 65536  # bytes per receive_some call
# The largest reply, or single receive, we agree to hold in memory: 1 GiB. A size is
# memory the caller asks us to set aside, so a larger one is refused up front with a
# ValueError, rather than failing after the payload went out (MemoryError from a huge
# buffer, OverflowError from a size that does not fit a C ssize_t).
MAX_BYTES: Final = 1 << 30  # bytes
# A file that cannot go zero-copy is read and sent in chunks of this size, so that its
# memory does not grow with the file (64 KiB is also what a Linux pipe holds).
FILE_CHUNK: Final = 65536  # bytes
# Bytes asked of one os.sendfile() call. The kernel copies no more than the socket's
# buffer takes anyway; the bound keeps one call from holding the event loop while a
# fast reader drains a large file.
SENDFILE_CHUNK: Final = 1 << 22  # bytes
# The most plaintext one TLS record carries, 2**14 bytes (RFC 8446 section 5.1): the unit
# in which the ports hand data to TLS, so that each piece is one record on the wire.
TLS_RECORD_BYTES: Final = 16384  # bytes


def check_seconds(value: object, name: str, *, allow_none: bool = True) -> float | None:
    """Check a duration in seconds: a non-negative, non-NaN number (or ``None``).

    ``math.inf`` is accepted (no deadline); an integer too large for a float is a
    ``ValueError``, not the ``OverflowError`` that ``float()`` would raise later.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        what = "a number of seconds or None" if allow_none else "a number of seconds"
        raise TypeError(f"{name} must be {what}, got {value!r}")
    try:
        seconds = float(value)
    except OverflowError:  # an int past 1.8e308; its repr may be too long to print
        raise ValueError(
            f"{name} is too large to be a number of seconds, got about 1e{int(math.log10(value))}"
        ) from None
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")
    return seconds


def check_idle_timeout(value: object, name: str = "reply_idle_timeout") -> float | None:
    """Check an idle timeout: a positive number of seconds, or ``None`` (no idle limit).

    0 is refused: a reply that must never pause would end before its first byte, and
    the frameworks do not even agree on that much (Trio's ``move_on_after(0)`` reads
    nothing, asyncio's ``timeout(0)`` still reads what is already buffered).
    """
    seconds = check_seconds(value, name)
    if seconds == 0:
        raise ValueError(f"{name} must be more than 0 seconds (None: no idle limit), got {value!r}")
    return seconds


def check_count(value: object, name: str, maximum: int | None = None) -> int:
    """Check a positive integer (a size or a concurrency limit), at most ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value!r}")
    return value


def check_flag(value: object, name: str) -> bool:
    """Check a flag: ``True`` or ``False`` only (``"no"`` is not false, so it is refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_marker(value: object, name: str) -> bytes | None:
    """Check the bytes that end a reply: non-empty bytes-like, or ``None``."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes or None, got {value!r:.60}")
    marker = bytes(value)
    if not marker:
        raise ValueError(f"{name} must not be empty, got {value!r}")
    return marker


def check_payload(payload: object) -> memoryview:
    """Return a flat byte view of a bytes-like payload, or raise ``TypeError``.

    A buffer that cannot be read (a closed ``mmap``, a released ``memoryview``) is a
    ``ValueError`` naming it.
    """
    try:
        if isinstance(payload, str):
            raise TypeError(payload)
        view = memoryview(payload)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"payload must be bytes-like (bytes, bytearray or memoryview), "
            f"got {type(payload).__name__}: {payload!r:.60}"
        ) from None
    except ValueError as exc:  # "mmap closed or invalid", "... released memoryview ..."
        raise ValueError(f"payload cannot be read ({exc}): {payload!r:.60}") from None
    if not view.c_contiguous:
        # Python's "bytes-like" means a C-contiguous buffer; socket.send() refuses others
        # (BufferError), which would surface mid-I/O instead of before it.
        raise TypeError(f"payload must be a C-contiguous buffer, got {payload!r:.60}")
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


@dataclasses.dataclass(frozen=True, slots=True)
class FilePayload:
    """A checked binary file to send from ``start`` to its end.

    Attributes:
        file: the file object.
        start: its position when it was checked (``None``: not seekable, a pipe).
        sendfile_fd: its file descriptor when ``os.sendfile`` can send it zero-copy (a
            regular file on a platform that has ``os.sendfile``), else ``None``.
        advance: move the file's position past the bytes sent, as a single send does.
            The targets of a fan-out share one file, each sending it from ``start``
            with a position of its own, and leave the file's position alone.
    """

    file: io.IOBase
    start: int | None
    sendfile_fd: int | None
    advance: bool = True

    @property
    def seekable(self) -> bool:
        return self.start is not None


def _sendfile_fd(file: io.IOBase) -> int | None:
    if not hasattr(os, "sendfile"):
        return None
    try:
        fd = file.fileno()
        is_regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except (OSError, ValueError):  # io.UnsupportedOperation is both: BytesIO
        return None
    # sendfile() reads through the page cache: only a regular file can be its source.
    return fd if is_regular else None


def check_payload_or_file(payload: object, *, shared: bool = False) -> memoryview | FilePayload:
    """Check a payload: bytes-like (see :func:`check_payload`) or a readable binary file.

    A file is sent from its current position, which is recorded here. ``shared`` is for
    a fan-out: every target sends the same bytes from that position, so the file must be
    seekable, and sending does not move its position (see :class:`FilePayload`).

    Raises:
        TypeError: neither bytes-like nor a binary file; a text file; a file not open
            for reading; a file that cannot seek when ``shared``.
        ValueError: a closed file, a buffer that cannot be read.
    """
    if not isinstance(payload, io.IOBase):
        return check_payload(payload)
    if isinstance(payload, io.TextIOBase):
        raise TypeError(
            f"payload must be a binary file (opened with 'rb'), got a text file: {payload!r:.80}"
        )
    if payload.closed:
        raise ValueError(f"payload file is closed: {payload!r:.80}")
    if not payload.readable():
        raise TypeError(f"payload file is not open for reading: {payload!r:.80}")
    can_seek = payload.seekable()
    if shared and not can_seek:
        raise TypeError(
            f"payload file must be seekable, so that every target sends the same bytes; "
            f"got {payload!r:.80}"
        )
    start = payload.tell() if can_seek else None
    sendfile_fd = _sendfile_fd(payload) if can_seek else None
    return FilePayload(payload, start, sendfile_fd, advance=not shared)


def check_local_address(value: object) -> str | None:
    """A local address to bind before connecting must be an IP literal (or ``None``)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _is_ip(value):
        raise ValueError(f"local_address must be an IP address string, got {value!r}")
    return value


def local_address_error(local: str, family: int, sockaddr: SockAddr) -> OSError | None:
    """The error for a ``local_address`` of the wrong family for ``sockaddr``, else None.

    Checked before binding: Trio would bind an IPv4 address to an IPv6 socket as an
    IPv4-mapped address, and the failure would come later, from ``connect()``, without
    naming the local address.
    """
    version = ipaddress.ip_address(local.partition("%")[0]).version
    if (version == 6) == (family == socket.AF_INET6):
        return None
    # The OS's own wording, and ours as a note: reports describe every OS error alike.
    error = OSError(errno.EAFNOSUPPORT, os.strerror(errno.EAFNOSUPPORT))
    error.add_note(
        f"local_address={local!r} is an IPv{version} address; it cannot reach "
        f"{format_address(sockaddr)}"
    )
    return error


def check_callback(value: object, name: str) -> Callable[..., object] | None:
    """Check a plain callable (or ``None``): called, never awaited.

    A coroutine function (also behind ``functools.partial``, or as an object's
    ``__call__``) would make a coroutine that nobody awaits, so it is refused up front;
    :func:`check_not_awaitable` catches any other callable that returns an awaitable.
    """
    if value is None:
        return None
    if not callable(value):
        raise TypeError(f"{name} must be callable or None, got {value!r:.80}")
    inner = value.func if isinstance(value, functools.partial) else value
    if _is_async_function(value) or _is_async_function(getattr(inner, "__call__", None)):  # noqa: B004
        raise TypeError(
            f"{name} must be a plain callable, not a coroutine function (it is called, "
            f"never awaited), got {value!r:.80}"
        )
    return value


def _is_async_function(value: object) -> bool:
    return inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value)


def check_not_awaitable(result: object, name: str) -> None:
    """Refuse an awaitable returned by a callback that should be plain (see above)."""
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never awaited, and never to be: no "never awaited" warning
        raise TypeError(
            f"{name} must be a plain callable, but it returned an awaitable: {result!r:.80}"
        )


@cache
def _default_tls_context() -> ssl.SSLContext:
    # Made once per process: loading the system's CA certificates takes milliseconds,
    # far more than a handshake on loopback. A context is safe to share between
    # connections; it is never changed after this.
    return ssl.create_default_context()


def check_tls(value: object) -> ssl.SSLContext | None:
    """``tls=``: ``False`` (no TLS), ``True`` (verified, by default) or an ``SSLContext``.

    ``True`` means :func:`ssl.create_default_context`: the peer's certificate chain and
    its host name are verified against the system's CA certificates. Anything else
    (other CAs, client certificates, no verification) is a context of the caller's own.
    """
    if value is False:
        return None
    if value is True:
        return _default_tls_context()
    if isinstance(value, ssl.SSLContext):
        return value
    raise TypeError(f"tls must be True, False or an ssl.SSLContext, got {value!r:.60}")


def check_server_hostname(value: object, tls: ssl.SSLContext | None) -> str | None:
    """The name to verify the certificate against and send as SNI (``None``: the host).

    Given without TLS, it would be silently ignored: a ``ValueError``, as
    ``asyncio.open_connection`` raises for it.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TypeError(f"server_hostname must be a non-empty string or None, got {value!r:.60}")
    if tls is None:
        raise ValueError(f"server_hostname={value!r} is only meaningful with tls")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """The checked options of one connect-check-send workflow."""

    timeout: float | None
    delay: float | None
    read_reply: bool
    max_reply_bytes: int
    half_close: bool = True
    reply_until: bytes | None = None
    reply_idle_timeout: float | None = None
    tls: ssl.SSLContext | None = None
    server_hostname: str | None = None  # None: each target's host

    @classmethod
    def check(
        cls,
        timeout: object,
        delay: object,
        read_reply: object,
        max_reply_bytes: object,
        *,
        half_close: object = True,
        reply_until: object = None,
        reply_idle_timeout: object = None,
        tls: object = False,
        server_hostname: object = None,
    ) -> Options:
        context = check_tls(tls)
        return cls(
            timeout=check_seconds(timeout, "timeout"),
            delay=check_seconds(delay, "happy_eyeballs_delay"),
            read_reply=check_flag(read_reply, "read_reply"),
            max_reply_bytes=check_count(max_reply_bytes, "max_reply_bytes", MAX_BYTES),
            half_close=check_flag(half_close, "half_close"),
            reply_until=check_marker(reply_until, "reply_until"),
            reply_idle_timeout=check_idle_timeout(reply_idle_timeout),
            tls=context,
            server_hostname=check_server_hostname(server_hostname, context),
        )
