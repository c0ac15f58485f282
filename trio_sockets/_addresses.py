"""Addresses: the numeric fast path, RFC 8305 ordering, and how an address is written.

Part of the sans-I/O core: no ``await``, no clock. ``numeric_addrinfo`` calls
``getaddrinfo`` with ``AI_NUMERICHOST``, which only parses the literal.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

__all__ = [
    "AddrInfo",
    "SockAddr",
    "family_name",
    "format_address",
    "json_address",
    "numeric_addrinfo",
    "reorder_for_rfc_8305_section_4",
]

# What getaddrinfo returns, one entry: (family, type, proto, canonname, sockaddr).
AddrInfo: TypeAlias = tuple[int, int, int, str, tuple[Any, ...]]
SockAddr: TypeAlias = tuple[Any, ...]


def _is_ip(text: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return False
    return version is None or address.version == version


@functools.lru_cache(maxsize=4096)
def numeric_addrinfo(host: str, port: int) -> tuple[AddrInfo, ...] | None:
    """Return the one address of an IP literal without any lookup, else ``None``.

    Trio's ``getaddrinfo`` and asyncio's ``create_connection`` both skip the resolver
    thread for numeric hosts; so do we, and a numeric host also skips the race. The
    answer depends on nothing but the text, so it is cached: a fan-out to one address
    parses it once.
    """
    if not _is_ip(host):
        return None
    flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    # No I/O: with AI_NUMERICHOST the C library only parses the literal. It may still
    # refuse what ipaddress accepts (a scope id naming no interface, "1.2.3.4%x"); the
    # resolver then reports it, as a ConnectError like any name that does not resolve.
    try:
        return tuple(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, flags))
    except socket.gaierror:
        return None


def reorder_for_rfc_8305_section_4(addrinfos: Iterable[AddrInfo]) -> list[AddrInfo]:
    """Interleave address families as RFC 8305 section 4 asks.

    The resolver's order is kept within each family, and the families alternate,
    starting with the family of the first address: A1 A2 B1 B2 B3 becomes A1 B1 A2 B2 B3.
    (RFC 8305 allows a "First Address Family Count" above one; like trio, we use one.)
    """
    by_family: dict[int, list[AddrInfo]] = {}
    for info in addrinfos:
        by_family.setdefault(info[0], []).append(info)
    queues = list(by_family.values())  # dicts keep insertion order: first family first
    ordered: list[AddrInfo] = []
    for rank in range(max((len(q) for q in queues), default=0)):
        ordered.extend(q[rank] for q in queues if rank < len(q))
    return ordered


def format_address(sockaddr: Sequence[Any]) -> str:
    """Write a sockaddr as ``127.0.0.1:80`` or ``[::1]:80``: the one address formatter.

    IPv6 hosts are bracketed, as RFC 3986 writes them in a URL, so that the port cannot
    be read as part of the address (``::1:80`` could be either). Only the host and port
    are written; an IPv6 sockaddr's flowinfo and scope id are not. A list (a sockaddr
    read back from JSON) is accepted as well as a tuple.
    """
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def json_address(sockaddr: SockAddr | None) -> list[Any] | None:
    return None if sockaddr is None else list(sockaddr)


def family_name(family: int) -> str:
    try:
        return socket.AddressFamily(family).name
    except ValueError:
        return str(family)
