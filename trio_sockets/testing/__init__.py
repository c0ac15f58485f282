"""Test helpers for code that uses trio_sockets, or any code that opens TCP connections.

- :class:`FakeNetwork` (Trio) and :class:`AsyncioFakeNetwork` (asyncio): one scripted
  fake network, for exact virtual-time tests of code that opens TCP connections.
- :class:`LoopbackServer` and friends (:mod:`trio_sockets.testing.servers`): real sink,
  echo, slow, reset and blackhole servers on loopback, in a background thread, for any
  framework.
- :func:`addrinfo`: what ``getaddrinfo`` answers for a list of addresses, for a fake
  resolver of your own.
- :mod:`trio_sockets.testing.backends`: one class per framework (Trio, asyncio, asyncio
  on uvloop) with the framework calls that a test written once for every port needs.

The scripted fake network
-------------------------

Tell it which names resolve to which addresses (``add_host``), and script how each
address behaves (``script``): how long ``connect()`` takes, whether it connects, is
refused, never answers or fails with an error of your choice, and what the peer does
with the bytes it is sent (echo them, reply, accept a few at a time, reset, stall). An
address not scripted refuses at once (change ``default`` for all of them). Every socket
is recorded in ``sockets``, so that a test can check that every socket but the winner
was closed (``open_sockets()``) and what each peer received (``received(address)``).
Delays are the framework's own sleeps, so on a virtual clock a test asserts exact times
and runs in microseconds. The scripts and the inspection are the same on both
frameworks; only the installation differs, because the frameworks do.

Trio has two public hooks, :func:`trio.socket.set_custom_hostname_resolver` and
:func:`trio.socket.set_custom_socket_factory`: ``with FakeNetwork() as net:`` sets both
(inside ``trio.run``) and restores the previous ones on exit, for any code that uses
``trio.socket``, such as ``trio.open_tcp_stream``. The virtual clock is
:class:`trio.testing.MockClock` (pytest-trio's ``autojump_clock``)::

    import trio
    import trio_sockets
    from trio_sockets.testing import FakeNetwork

    async def test_falls_back_to_ipv4(autojump_clock):
        with FakeNetwork() as net:
            net.add_host("example.test", "2001:db8::1", "192.0.2.1")
            net.script(("2001:db8::1", 80), outcome="blackhole")
            net.script(("192.0.2.1", 80), delay=0.125, reply=b"hello")
            conn = await trio_sockets.open_connection("example.test", 80)
            # IPv6 got its 0.25 s head start, then IPv4 connected 0.125 s later.
            assert trio.current_time() == 0.375
            assert conn.remote_address == ("192.0.2.1", 80)
            assert net.open_sockets() == [conn.socket]
            await conn.send_all(b"ping")
            assert net.received(("192.0.2.1", 80)) == b"ping"
            assert await conn.receive_some() == b"hello"
            await conn.aclose()

asyncio has no such hooks. ``with AsyncioFakeNetwork() as net:`` (inside a coroutine)
installs the network on the running event loop instead: it shadows the loop's
``getaddrinfo`` and ``sock_connect`` with its own, adopts each socket handed to
``sock_connect`` (its descriptor becomes one end of a socket pair whose other end is the
scripted peer), and points the asyncio port's clock at ``loop.time()``; all of it is
undone on exit. Any code that resolves and connects through the loop's methods sees the
fake: this package's asyncio port, and ``asyncio.open_connection`` on asyncio's own
loop (uvloop connects in C, past the loop's Python methods). The virtual clock is a
``looptime`` event loop, which jumps ahead to the next timer whenever nothing is ready
(looptime cannot do that for uvloop, whose timers live in libuv)::

    import asyncio
    import looptime
    from trio_sockets import asyncio_port
    from trio_sockets.testing import AsyncioFakeNetwork

    async def falls_back_to_ipv4():
        loop = asyncio.get_running_loop()
        with AsyncioFakeNetwork() as net:
            net.add_host("example.test", "2001:db8::1", "192.0.2.1")
            net.script(("2001:db8::1", 80), outcome="blackhole")
            net.script(("192.0.2.1", 80), delay=0.125, reply=b"hello")
            conn = await asyncio_port.open_connection("example.test", 80)
            assert loop.time() == 0.375  # the same virtual times as on Trio
            assert conn.remote_address == ("192.0.2.1", 80)
            assert net.open_sockets() == [conn.socket]
            await conn.send_all(b"ping")
            assert net.received(("192.0.2.1", 80)) == b"ping"
            assert await conn.receive_some() == b"hello"
            await conn.aclose()

    def test_falls_back_to_ipv4():
        with asyncio.Runner(loop_factory=lambda: looptime.new_event_loop(start=0)) as runner:
            runner.run(falls_back_to_ipv4())

(looptime's pytest plugin expects pytest-asyncio; without it, run pytest with
``-p no:looptime_plugin``.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._script import ConnectOutcome, PeerScript, addrinfo
from .servers import (
    MODES,
    LoopbackServer,
    Mode,
    blackhole_listener,
    ipv6_loopback,
    refusing_socket,
)

if TYPE_CHECKING:
    from ._asyncio_net import AsyncioFakeNetwork, AsyncioFakeSocket
    from ._trio_net import FakeNetwork, FakeSocket

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


# The fake networks import their framework (Trio; asyncio and the asyncio port), which
# the loopback servers need neither of: they are imported on first use (PEP 562), so
# that `trio-sockets send` and `serve`, which import the servers, start without them.
_FAKE_NETWORKS: dict[str, str] = {
    "AsyncioFakeNetwork": "._asyncio_net",
    "AsyncioFakeSocket": "._asyncio_net",
    "FakeNetwork": "._trio_net",
    "FakeSocket": "._trio_net",
}


def __getattr__(name: str) -> Any:
    if name in _FAKE_NETWORKS:
        value = getattr(importlib.import_module(_FAKE_NETWORKS[name], __name__), name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
