"""Argument checks, and the options of one workflow, checked before any I/O.

Part of the sans-I/O core: no ``await``, no clock, no socket calls.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import math
import socket
from collections.abc import Callable
from typing import Final

from ._addresses import SockAddr, _is_ip, format_address

__all__ = [
    "DEFAULT_DELAY",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_REPLY_BYTES",
    "DEFAULT_RECEIVE_BYTES",
    "DEFAULT_TIMEOUT",
    "Options",
    "check_callback",
    "check_count",
    "check_local_address",
    "check_payload",
    "check_seconds",
    "local_address_error",
]

# RFC 8305 section 8 recommends 250 ms as the "Connection Attempt Delay".
DEFAULT_DELAY: Final = 0.250  # seconds
DEFAULT_TIMEOUT: Final = 10.0  # seconds, for the whole workflow
DEFAULT_MAX_REPLY_BYTES: Final = 65536  # bytes
DEFAULT_MAX_CONCURRENCY: Final = 100  # workflows at once
DEFAULT_RECEIVE_BYTES: Final = 65536  # bytes per receive_some call


def check_seconds(value: object, name: str, *, allow_none: bool = True) -> float | None:
    """Check a duration in seconds: a non-negative, non-NaN number (or ``None``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        what = "a number of seconds or None" if allow_none else "a number of seconds"
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")
    return float(value)


def check_count(value: object, name: str) -> int:
    """Check a positive integer (a size or a concurrency limit)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_payload(payload: object) -> memoryview:
    """Return a flat byte view of a bytes-like payload, or raise ``TypeError``."""
    try:
        if isinstance(payload, str):
            raise TypeError(payload)
        view = memoryview(payload)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"payload must be bytes-like (bytes, bytearray or memoryview), "
            f"got {type(payload).__name__}: {payload!r:.60}"
        ) from None
    if not view.c_contiguous:
        # Python's "bytes-like" means a C-contiguous buffer; socket.send() refuses others
        # (BufferError), which would surface mid-I/O instead of before it.
        raise TypeError(f"payload must be a C-contiguous buffer, got {payload!r:.60}")
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


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
    return OSError(
        errno.EAFNOSUPPORT,
        f"local_address={local!r} is an IPv{version} address; it cannot reach "
        f"{format_address(sockaddr)}",
    )


def check_callback(value: object, name: str) -> Callable[..., object] | None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """The checked options of one connect-check-send workflow."""

    timeout: float | None
    delay: float | None
    read_reply: bool
    max_reply_bytes: int

    @classmethod
    def check(
        cls, timeout: object, delay: object, read_reply: object, max_reply_bytes: object
    ) -> Options:
        return cls(
            timeout=check_seconds(timeout, "timeout"),
            delay=check_seconds(delay, "happy_eyeballs_delay"),
            read_reply=bool(read_reply),
            max_reply_bytes=check_count(max_reply_bytes, "max_reply_bytes"),
        )
