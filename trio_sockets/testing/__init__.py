"""Test helpers for code that uses trio_sockets, or any code that opens TCP connections.

- :class:`FakeNetwork` (:mod:`trio_sockets.testing.fakenet`): a scripted fake network for
  Trio, installed through Trio's public resolver and socket-factory hooks, for exact
  virtual-time tests.
- :class:`LoopbackServer` and friends (:mod:`trio_sockets.testing.servers`): real sink,
  echo, slow, reset and blackhole servers on loopback, in a background thread, for any
  framework.
"""

from __future__ import annotations

from ._fakesocket import ConnectOutcome, FakeSocket, PeerScript
from .fakenet import FakeNetwork
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
    "ConnectOutcome",
    "FakeNetwork",
    "FakeSocket",
    "LoopbackServer",
    "Mode",
    "PeerScript",
    "blackhole_listener",
    "ipv6_loopback",
    "refusing_socket",
]
