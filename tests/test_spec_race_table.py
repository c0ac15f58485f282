"""Spec: the scripted race table, run on every port over the fake network, in virtual time.

In the style of trio's own tests/test_highlevel_open_tcp_stream.py: each scenario is a
row of ``(address, delay, outcome)`` steps, run over ``trio_sockets.testing``'s scripted
network (``FakeNetwork`` on Trio, ``AsyncioFakeNetwork`` on asyncio) on a virtual clock
(Trio's ``MockClock``, a ``looptime`` loop on asyncio; uvloop has no virtual clock, so
its runs are skipped). Each asserts when the call returned, which address won, every
attempt's times and outcome, and that every losing socket was closed: the same exact
times on both ports. Delays are multiples of 1/8 s, so the virtual times add up exactly
in binary floating point and can be compared with ``==``.
"""

from __future__ import annotations

import dataclasses
import errno
from typing import Any

import pytest
from conftest import Port

from trio_sockets import ConnectError
from trio_sockets.testing import (
    AsyncioFakeNetwork,
    AsyncioFakeSocket,
    ConnectOutcome,
    FakeNetwork,
    FakeSocket,
)

pytestmark = pytest.mark.timeout(30)

HOST = "example.test"
PORT = 80
REFUSED = "ConnectionRefusedError: [Errno 111] Connection refused"
UNREACHABLE = "OSError: [Errno 113] No route to host"


def unreachable() -> OSError:
    return OSError(errno.EHOSTUNREACH, "No route to host")


def net_unreachable() -> OSError:
    return OSError(errno.ENETUNREACH, "Network is unreachable")


@dataclasses.dataclass(frozen=True)
class Race:
    """One scripted race: the resolver's answer, the outcome, and every attempt."""

    # (ip, connect delay, outcome), in resolver order.
    steps: tuple[tuple[str, float, ConnectOutcome], ...]
    # How long the call takes, in virtual seconds.
    elapsed: float
    # The winning ip, or None when every attempt fails.
    winner: str | None
    # (ip, started_s, ended_s, outcome, error) per attempt, in start order.
    attempts: tuple[tuple[str, float, float, str, str | None], ...]
    happy_eyeballs_delay: float | None = 0.25
    # ConnectError.errno when every attempt fails.
    errno: int | None = None


RACES = {
    "one-address-quick": Race(
        steps=(("192.0.2.1", 0.125, "connect"),),
        elapsed=0.125,
        winner="192.0.2.1",
        attempts=(("192.0.2.1", 0.0, 0.125, "connected", None),),
    ),
    "fallthrough-after-the-delay": Race(
        # Two slow addresses each get their 0.25 s head start; the third wins.
        steps=(
            ("192.0.2.1", 1.0, "connect"),
            ("192.0.2.2", 1.0, "connect"),
            ("192.0.2.3", 0.125, "connect"),
        ),
        elapsed=0.625,
        winner="192.0.2.3",
        attempts=(
            ("192.0.2.1", 0.0, 0.625, "cancelled", None),
            ("192.0.2.2", 0.25, 0.625, "cancelled", None),
            ("192.0.2.3", 0.5, 0.625, "connected", None),
        ),
    ),
    "slow-first-attempt-still-wins": Race(
        # The second attempt is under way when the first connects: it is cancelled,
        # and the third never starts.
        steps=(
            ("192.0.2.1", 0.375, "connect"),
            ("192.0.2.2", 1.0, "connect"),
            ("192.0.2.3", 0.0, "connect"),
        ),
        elapsed=0.375,
        winner="192.0.2.1",
        attempts=(
            ("192.0.2.1", 0.0, 0.375, "connected", None),
            ("192.0.2.2", 0.25, 0.375, "cancelled", None),
        ),
    ),
    "early-failure-hurries-the-next": Race(
        steps=(
            ("192.0.2.1", 0.125, "refuse"),
            ("192.0.2.2", 0.0, "refuse"),
            ("192.0.2.3", 0.125, "connect"),
        ),
        elapsed=0.25,
        winner="192.0.2.3",
        attempts=(
            ("192.0.2.1", 0.0, 0.125, "failed", REFUSED),
            ("192.0.2.2", 0.125, 0.125, "failed", REFUSED),
            ("192.0.2.3", 0.125, 0.25, "connected", None),
        ),
    ),
    "all-refused-common-errno": Race(
        steps=(
            ("192.0.2.1", 0.125, "refuse"),
            ("192.0.2.2", 0.5, "refuse"),
            ("192.0.2.3", 0.125, "refuse"),
        ),
        # .2 starts at 0.125, .3 at 0.375 (its head start ran out) and fails at 0.5,
        # in the same tick as .2.
        elapsed=0.625,
        winner=None,
        attempts=(
            ("192.0.2.1", 0.0, 0.125, "failed", REFUSED),
            ("192.0.2.2", 0.125, 0.625, "failed", REFUSED),
            ("192.0.2.3", 0.375, 0.5, "failed", REFUSED),
        ),
        errno=errno.ECONNREFUSED,
    ),
    "all-failing-mixed-errnos": Race(
        steps=(("192.0.2.1", 0.5, unreachable()), ("192.0.2.2", 0.125, "refuse")),
        elapsed=0.5,
        winner=None,
        attempts=(
            ("192.0.2.1", 0.0, 0.5, "failed", UNREACHABLE),
            ("192.0.2.2", 0.25, 0.375, "failed", REFUSED),
        ),
        errno=None,
    ),
    "all-failing-scripted-error": Race(
        steps=(("2001:db8::1", 0.0, net_unreachable()), ("192.0.2.1", 0.0, net_unreachable())),
        elapsed=0.0,
        winner=None,
        attempts=(
            ("2001:db8::1", 0.0, 0.0, "failed", "OSError: [Errno 101] Network is unreachable"),
            ("192.0.2.1", 0.0, 0.0, "failed", "OSError: [Errno 101] Network is unreachable"),
        ),
        errno=errno.ENETUNREACH,
    ),
    "sequential-when-delay-is-none": Race(
        # With the default delay .2 would start at 0.25 and win at 2.25.
        steps=(("192.0.2.1", 1.0, "refuse"), ("192.0.2.2", 2.0, "connect")),
        happy_eyeballs_delay=None,
        elapsed=3.0,
        winner="192.0.2.2",
        attempts=(
            ("192.0.2.1", 0.0, 1.0, "failed", REFUSED),
            ("192.0.2.2", 1.0, 3.0, "connected", None),
        ),
    ),
    "sequential-never-leaves-a-blackhole": Race(
        # None means strictly one at a time: a slow first address is waited for.
        steps=(("192.0.2.1", 5.0, "connect"), ("192.0.2.2", 0.0, "connect")),
        happy_eyeballs_delay=None,
        elapsed=5.0,
        winner="192.0.2.1",
        attempts=(("192.0.2.1", 0.0, 5.0, "connected", None),),
    ),
    "ipv4-only": Race(
        steps=(("192.0.2.1", 0.0, "blackhole"), ("192.0.2.2", 0.125, "connect")),
        elapsed=0.375,
        winner="192.0.2.2",
        attempts=(
            ("192.0.2.1", 0.0, 0.375, "cancelled", None),
            ("192.0.2.2", 0.25, 0.375, "connected", None),
        ),
    ),
    "ipv6-only": Race(
        steps=(("2001:db8::1", 0.0, "blackhole"), ("2001:db8::2", 0.125, "connect")),
        elapsed=0.375,
        winner="2001:db8::2",
        attempts=(
            ("2001:db8::1", 0.0, 0.375, "cancelled", None),
            ("2001:db8::2", 0.25, 0.375, "connected", None),
        ),
    ),
    "families-interleaved": Race(
        # Resolver order v6 v6 v4 v4 is tried as v6 v4 v6 v4 (RFC 8305 section 4).
        steps=(
            ("2001:db8::1", 0.125, "refuse"),
            ("2001:db8::2", 0.125, "refuse"),
            ("192.0.2.1", 0.125, "refuse"),
            ("192.0.2.2", 0.125, "connect"),
        ),
        elapsed=0.5,
        winner="192.0.2.2",
        attempts=(
            ("2001:db8::1", 0.0, 0.125, "failed", REFUSED),
            ("192.0.2.1", 0.125, 0.25, "failed", REFUSED),
            ("2001:db8::2", 0.25, 0.375, "failed", REFUSED),
            ("192.0.2.2", 0.375, 0.5, "connected", None),
        ),
    ),
    "ipv4-first-family-leads": Race(
        steps=(
            ("192.0.2.1", 0.0, "blackhole"),
            ("192.0.2.2", 0.0, "blackhole"),
            ("2001:db8::1", 0.125, "connect"),
        ),
        elapsed=0.375,
        winner="2001:db8::1",
        attempts=(
            ("192.0.2.1", 0.0, 0.375, "cancelled", None),
            ("2001:db8::1", 0.25, 0.375, "connected", None),
        ),
    ),
    "blackhole-then-failure-then-success": Race(
        steps=(
            ("2001:db8::1", 0.0, "blackhole"),
            ("192.0.2.1", 0.125, "refuse"),
            ("2001:db8::2", 0.125, "connect"),
        ),
        elapsed=0.5,
        winner="2001:db8::2",
        attempts=(
            ("2001:db8::1", 0.0, 0.5, "cancelled", None),
            ("192.0.2.1", 0.25, 0.375, "failed", REFUSED),
            ("2001:db8::2", 0.375, 0.5, "connected", None),
        ),
    ),
    "delay-zero-starts-all-at-once": Race(
        steps=(
            ("192.0.2.1", 0.5, "connect"),
            ("192.0.2.2", 0.25, "connect"),
            ("192.0.2.3", 0.125, "connect"),
        ),
        happy_eyeballs_delay=0.0,
        elapsed=0.125,
        winner="192.0.2.3",
        attempts=(
            ("192.0.2.1", 0.0, 0.125, "cancelled", None),
            ("192.0.2.2", 0.0, 0.125, "cancelled", None),
            ("192.0.2.3", 0.0, 0.125, "connected", None),
        ),
    ),
    "long-delay-never-starts-the-second": Race(
        steps=(("192.0.2.1", 0.75, "connect"), ("192.0.2.2", 0.0, "connect")),
        happy_eyeballs_delay=1.0,
        elapsed=0.75,
        winner="192.0.2.1",
        attempts=(("192.0.2.1", 0.0, 0.75, "connected", None),),
    ),
}


Net = FakeNetwork | AsyncioFakeNetwork


def scripted(port: Port, race: Race) -> Net:
    net = port.FakeNetwork()
    net.add_host(HOST, *(ip for ip, _, _ in race.steps))
    for ip, delay, outcome in race.steps:
        net.script((ip, PORT), delay=delay, outcome=outcome)
    return net


def check_sockets(net: Net, race: Race, survivor: object) -> None:
    """One socket per attempt, aimed where the attempt says, started when it says."""
    assert [
        (sock.address[0] if sock.address else None, sock.connect_started) for sock in net.sockets
    ] == [(ip, started) for ip, started, _, _, _ in race.attempts]
    assert [s for s in net.sockets if not s.closed] == ([survivor] if survivor else [])


def attempt_rows(attempts: Any) -> list[tuple[Any, ...]]:
    return [(a.address[0], a.started_s, a.ended_s, a.outcome, a.error) for a in attempts]


@pytest.mark.parametrize("race", RACES.values(), ids=RACES.keys())
def test_open_connection_race(port: Port, race: Race) -> None:
    async def main() -> None:
        with scripted(port, race) as net:
            start = port.now()
            if race.winner is None:
                with pytest.raises(ConnectError) as info:
                    await port.module.open_connection(
                        HOST, PORT, happy_eyeballs_delay=race.happy_eyeballs_delay
                    )
                attempts = info.value.attempts
                assert info.value.errno == race.errno
                for ip, _, _, _, error in race.attempts:
                    assert f"{ip}]:{PORT}: {error}" in str(info.value) or (
                        f"{ip}:{PORT}: {error}" in str(info.value)
                    )
                elapsed = port.now() - start
                check_sockets(net, race, None)
            else:
                conn = await port.module.open_connection(
                    HOST, PORT, happy_eyeballs_delay=race.happy_eyeballs_delay
                )
                elapsed = port.now() - start
                attempts = conn.attempts
                assert conn.remote_address[0] == race.winner
                assert isinstance(conn.socket, FakeSocket | AsyncioFakeSocket)
                assert conn.socket.connected and not conn.socket.closed
                check_sockets(net, race, conn.socket)
                await conn.aclose()
            assert elapsed == race.elapsed
            assert attempt_rows(attempts) == list(race.attempts)
            assert net.lookups == [HOST]

    port.run(main, virtual=True)


@pytest.mark.parametrize("race", RACES.values(), ids=RACES.keys())
def test_connect_check_send_race(port: Port, race: Race) -> None:
    async def main() -> None:
        with scripted(port, race) as net:
            start = port.now()
            report = await port.module.connect_check_send(
                f"{HOST}:{PORT}",
                b"payload",
                timeout=None,
                happy_eyeballs_delay=race.happy_eyeballs_delay,
            )
            assert port.now() - start == race.elapsed
            assert (report.total_s, report.connect_s, report.resolve_s) == (
                race.elapsed,
                race.elapsed,
                0.0,
            )
            assert attempt_rows(report.attempts) == list(race.attempts)
            check_sockets(net, race, None)  # the workflow closes the winner too
            if race.winner is None:
                assert (report.status, report.address, report.bytes_sent) == ("error", None, 0)
                assert report.error is not None
                if race.errno == errno.ECONNREFUSED:
                    assert report.error == REFUSED  # every attempt failed the same way
            else:
                assert (report.status, report.error, report.bytes_sent) == ("ok", None, 7)
                assert report.address is not None and report.address[0] == race.winner
                assert net.received((race.winner, PORT)) == b"payload"

    port.run(main, virtual=True)


def test_two_attempts_connecting_in_the_same_tick(port: Port) -> None:
    # .1 takes 0.5 s; .2 starts at 0.25 and takes 0.25 s: both connect at 0.5.
    async def main() -> None:
        with port.FakeNetwork() as net:
            net.add_host(HOST, "192.0.2.1", "192.0.2.2")
            net.script(("192.0.2.1", PORT), delay=0.5)
            net.script(("192.0.2.2", PORT), delay=0.25)
            conn = await port.module.open_connection(HOST, PORT)
            assert port.now() == 0.5
            # Both connects completed: the race, not the network, had to pick one.
            assert [s.connect_state for s in net.sockets] == ["connected", "connected"]
            assert net.open_sockets() == [conn.socket]
            winner = conn.remote_address[0]
            loser = "192.0.2.2" if winner == "192.0.2.1" else "192.0.2.1"
            by_ip = {a.address[0]: a for a in conn.attempts}
            assert (by_ip[winner].outcome, by_ip[winner].ended_s) == ("connected", 0.5)
            assert (by_ip[loser].outcome, by_ip[loser].ended_s, by_ip[loser].error) == (
                "cancelled",
                0.5,
                "another attempt connected first",
            )
            assert [(a.address[0], a.started_s) for a in conn.attempts] == [
                ("192.0.2.1", 0.0),
                ("192.0.2.2", 0.25),
            ]
            await conn.aclose()

    port.run(main, virtual=True)
