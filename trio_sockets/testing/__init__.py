"""Test helpers for code that uses trio_sockets, or any code that opens TCP connections.

- :class:`FakeNetwork` (Trio) and :class:`AsyncioFakeNetwork` (asyncio): one scripted
  fake network, for exact virtual-time tests of code that opens TCP connections.
- :class:`LoopbackServer` and friends (:mod:`trio_sockets.testing.servers`): real sink,
  echo, slow, reset and blackhole servers on loopback, in a background thread, for any
  framework.
"""

from __future__ import annotations

from ._asyncio_net import AsyncioFakeNetwork, AsyncioFakeSocket
from ._script import ConnectOutcome, PeerScript, addrinfo
from ._trio_net import FakeNetwork, FakeSocket
from .servers import (
    MODES,
    LoopbackServer,
    Mode,
    blackhole_listener,
    ipv6_loopback,
    refusing_socket,
)

__all__ = [
    "MODES",
    "AsyncioFakeNetwork",
    "AsyncioFakeSocket",
    "ConnectOutcome",
    "FakeNetwork",
    "FakeSocket",
    "LoopbackServer",
    "Mode",
    "PeerScript",
    "addrinfo",
    "blackhole_listener",
    "ipv6_loopback",
    "refusing_socket",
]
