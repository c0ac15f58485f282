"""Spec: ``open_connection``, as documented: written once and run on every port.

Real loopback servers only (127.0.0.1 and ::1, port 0). Host names resolve through each
framework's own resolver hook (``port.install_resolver``), so a name such as
``dual.test`` can point at a blackholed address first and a live one second. Timing is
asserted as bounds; exact virtual times are the Trio-only race tests' business.
"""

from __future__ import annotations

import errno
import socket
import time

import pytest
from conftest import Port, connections_before_one_more, refusing_port

from trio_sockets._errors import ConnectError
from trio_sockets.testing import LoopbackServer

DELAY = 0.4  # seconds: the happy-eyeballs delay of the staircase test
LATE = 0.2  # seconds: how late a loaded machine may start the next attempt
SLACK = 0.75  # seconds: how late a loaded machine may be where no delay is measured


def assert_attempt(attempt: object, address: tuple[str, int], outcome: str) -> None:
    got_address = getattr(attempt, "address")  # noqa: B009
    assert tuple(got_address[:2]) == address, attempt
    assert getattr(attempt, "outcome") == outcome, attempt  # noqa: B009


@pytest.mark.timeout(5)
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_connects_to_an_ip_literal(port: Port, host: str) -> None:
    with LoopbackServer("sink", host) as server:

        async def main() -> None:
            conn = await port.module.open_connection(host, server.port)
            async with conn:
                assert isinstance(conn, port.module.Connection)
                assert isinstance(conn.socket, port.socket_type)
                assert tuple(conn.remote_address[:2]) == server.address
                assert conn.local_address[0] == host
                assert conn.family == (socket.AF_INET6 if ":" in host else socket.AF_INET)
                assert conn.bytes_sent == conn.bytes_received == 0
                [attempt] = conn.attempts
                assert_attempt(attempt, server.address, "connected")
                assert attempt.family == conn.family
            assert conn.socket.fileno() == -1  # async with closed it

        port.run(main)
        assert server.wait_connections(1)


@pytest.mark.timeout(5)
def test_blackholed_first_address_loses_after_the_delay(port: Port) -> None:
    with LoopbackServer("blackhole", "::1") as hole, LoopbackServer("sink") as live:

        async def main() -> None:
            port.install_resolver({"dual.test": [hole.address, live.address]})
            started = time.perf_counter()
            conn = await port.module.open_connection("dual.test", 4242, happy_eyeballs_delay=DELAY)
            elapsed = time.perf_counter() - started
            async with conn:
                assert tuple(conn.remote_address) == live.address
                loser, winner = conn.attempts
                assert_attempt(loser, hole.address, "cancelled")
                assert loser.family == socket.AF_INET6
                assert_attempt(winner, live.address, "connected")
                assert winner.family == socket.AF_INET
                # The staircase: the second attempt starts one delay after the first.
                # (Not much later either: a doubled delay must not pass.)
                assert DELAY * 0.9 <= winner.started_s - loser.started_s <= DELAY + LATE
                assert loser.ended_s >= winner.ended_s - 0.05
            assert DELAY * 0.9 <= elapsed <= DELAY + LATE + 0.1

        port.run(main)
        assert live.wait_connections(1)
        assert live.connections == 1


@pytest.mark.timeout(5)
def test_refused_first_address_hurries_the_next_one(port: Port) -> None:
    with refusing_port("::1") as refused, LoopbackServer("sink") as live:

        async def main() -> None:
            port.install_resolver({"dual.test": [("::1", refused), live.address]})
            started = time.perf_counter()
            # A failure starts the next attempt at once: no waiting for the long delay.
            conn = await port.module.open_connection("dual.test", 4242, happy_eyeballs_delay=30)
            elapsed = time.perf_counter() - started
            async with conn:
                assert tuple(conn.remote_address) == live.address
                loser, winner = conn.attempts
                assert_attempt(loser, ("::1", refused), "failed")
                assert loser.error.startswith("ConnectionRefusedError")
                assert_attempt(winner, live.address, "connected")
                assert winner.started_s >= loser.ended_s
            assert elapsed < SLACK

        port.run(main)


@pytest.mark.timeout(5)
def test_families_are_interleaved_starting_with_the_first(port: Port) -> None:
    with (
        refusing_port("::1") as v6a,
        refusing_port("::1") as v6b,
        refusing_port() as v4a,
        LoopbackServer("sink") as live,
    ):
        resolved = [("::1", v6a), ("::1", v6b), ("127.0.0.1", v4a), live.address]

        async def main() -> None:
            port.install_resolver({"many.test": resolved})
            async with await port.module.open_connection(
                "many.test", 4242, happy_eyeballs_delay=30
            ) as conn:
                order = [tuple(a.address[:2]) for a in conn.attempts]
                # RFC 8305 section 4: v6, v4, v6, v4 (resolver order within a family).
                assert order == [resolved[0], resolved[2], resolved[1], resolved[3]]
                assert [a.outcome for a in conn.attempts] == ["failed"] * 3 + ["connected"]

        port.run(main)


@pytest.mark.timeout(5)
def test_delay_none_tries_one_address_at_a_time(port: Port) -> None:
    with LoopbackServer("blackhole", "::1") as hole, LoopbackServer("sink") as live:

        async def main() -> None:
            port.install_resolver({"dual.test": [hole.address, live.address]})
            # The first attempt never answers, so with no delay the second never starts.
            async with port.move_on_after(0.5) as scope:
                await port.module.open_connection("dual.test", 4242, happy_eyeballs_delay=None)
            assert scope.cancelled_caught

        port.run(main)
        assert connections_before_one_more(port, live) == 0


@pytest.mark.timeout(5)
def test_delay_none_starts_the_next_attempt_when_one_fails(port: Port) -> None:
    with refusing_port("::1") as refused, LoopbackServer("sink") as live:

        async def main() -> None:
            port.install_resolver({"dual.test": [("::1", refused), live.address]})
            async with await port.module.open_connection(
                "dual.test", 4242, happy_eyeballs_delay=None
            ) as conn:
                first, second = conn.attempts
                assert (first.outcome, second.outcome) == ("failed", "connected")
                assert second.started_s >= first.ended_s

        port.run(main)


@pytest.mark.timeout(5)
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_local_address_is_bound(port: Port, host: str) -> None:
    with LoopbackServer("sink", host) as server:

        async def main() -> None:
            async with await port.module.open_connection(
                host, server.port, local_address=host
            ) as conn:
                assert conn.local_address[0] == host
                assert conn.local_address[1] != 0

        port.run(main)


@pytest.mark.timeout(5)
@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_ip_bind_address_no_port_is_set_on_linux_only(
    port: Port, platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Linux's option number means something else elsewhere (IP_RECVIF on Windows,
    # IP_RECVTTL on macOS): only Linux may be asked for it.
    levels: list[tuple[int, int]] = []
    real_setsockopt = socket.socket.setsockopt

    def setsockopt(sock: socket.socket, level: int, option: int, *value: object) -> None:
        levels.append((level, option))
        real_setsockopt(sock, level, option, *value)  # type: ignore[call-overload]

    with LoopbackServer("sink") as server:

        async def main() -> None:
            monkeypatch.setattr(socket.socket, "setsockopt", setsockopt)
            monkeypatch.setattr("sys.platform", platform)
            try:
                conn = await port.module.open_connection(*server.address, local_address=server.host)
            finally:
                monkeypatch.undo()
            await conn.aclose()

        port.run(main)
    no_port = [option for level, option in levels if level == socket.IPPROTO_IP]
    assert no_port == (
        [getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)] if platform == "linux" else []
    )


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("host", "local"), [("::1", "127.0.0.1"), ("127.0.0.1", "::1")])
def test_local_address_of_the_other_family_is_named_in_the_error(
    port: Port, host: str, local: str
) -> None:
    with LoopbackServer("sink", host) as server:

        async def main() -> None:
            with pytest.raises(port.module.ConnectError) as info:
                await port.module.open_connection(host, server.port, local_address=local)
            assert info.value.errno == errno.EAFNOSUPPORT
            (attempt,) = info.value.attempts
            assert attempt.outcome == "failed"
            assert f"local_address={local!r}" in (attempt.error or "")

        port.run(main)


@pytest.mark.timeout(5)
def test_connect_error_lists_every_attempt_in_start_order(port: Port) -> None:
    with refusing_port("::1") as v6, refusing_port() as v4:
        resolved = [("::1", v6), ("127.0.0.1", v4)]

        async def main() -> None:
            port.install_resolver({"down.test": resolved})
            with pytest.raises(port.module.ConnectError) as info:
                await port.module.open_connection("down.test", 4242)
            exc = info.value
            assert isinstance(exc, ConnectError)
            assert isinstance(exc, OSError)
            assert exc.errno == errno.ECONNREFUSED  # every attempt failed the same way
            assert [tuple(a.address[:2]) for a in exc.attempts] == resolved
            for attempt in exc.attempts:
                assert attempt.outcome == "failed"
                assert str(attempt.error).startswith("ConnectionRefusedError")
            assert str(v6) in str(exc) and str(v4) in str(exc)

        port.run(main)


@pytest.mark.timeout(5)
def test_connect_error_has_no_errno_when_the_errors_differ(port: Port) -> None:
    with refusing_port("::1") as v6, refusing_port() as v4:

        async def main() -> None:
            port.install_resolver({"down.test": [("::1", v6), ("127.0.0.1", v4)]})
            with pytest.raises(port.module.ConnectError) as info:
                # An IPv4 local address cannot be bound on the IPv6 attempt's socket.
                await port.module.open_connection("down.test", 4242, local_address="127.0.0.1")
            exc = info.value
            assert isinstance(exc, ConnectError)
            assert exc.errno is None
            v6_attempt, v4_attempt = exc.attempts
            assert v6_attempt.outcome == v4_attempt.outcome == "failed"
            assert str(v4_attempt.error).startswith("ConnectionRefusedError")
            assert not str(v6_attempt.error).startswith("ConnectionRefusedError")

        port.run(main)


@pytest.mark.timeout(5)
def test_a_name_that_does_not_resolve_is_a_connect_error(port: Port) -> None:
    async def main() -> None:
        port.install_resolver({})
        with pytest.raises(port.module.ConnectError) as info:
            await port.module.open_connection("nowhere.test", 4242)
        assert info.value.attempts == ()
        assert "nowhere.test" in str(info.value)

    port.run(main)


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    ("host", "bad_port", "kwargs", "error"),
    [
        ("", 1, {}, "TargetError"),
        ("127.0.0.1", 0, {}, "TargetError"),
        ("127.0.0.1", "http", {}, "TargetError"),
        ("bad host", 1, {}, "TargetError"),
        ("127.0.0.1", None, {"happy_eyeballs_delay": -1}, "ValueError"),
        ("127.0.0.1", None, {"happy_eyeballs_delay": float("nan")}, "ValueError"),
        ("127.0.0.1", None, {"local_address": "localhost"}, "ValueError"),
    ],
)
def test_arguments_are_checked_before_any_io(
    port: Port, host: str, bad_port: object, kwargs: dict[str, object], error: str
) -> None:
    expected = port.module.TargetError if error == "TargetError" else ValueError
    with LoopbackServer("sink") as server:

        async def main() -> None:
            port.install_resolver({})  # a resolver call would fail with ConnectError
            with pytest.raises(expected):
                await port.module.open_connection(
                    host, server.port if bad_port is None else bad_port, **kwargs
                )
            # One good connection: the server has seen every earlier one once it has this.
            async with await port.module.open_connection(*server.address) as conn:
                await conn.send_all(b"x")

        port.run(main)
        assert server.wait_bytes(1)
        assert server.connections == 1


@pytest.mark.timeout(5)
def test_cancelled_from_outside_mid_race_is_bare_and_closes_everything(port: Port) -> None:
    with LoopbackServer("blackhole", "::1") as v6, LoopbackServer("blackhole") as v4:

        async def main() -> None:
            port.install_resolver({"dark.test": [v6.address, v4.address]})
            outcome = await port.run_and_cancel(
                lambda: port.module.open_connection("dark.test", 4242, happy_eyeballs_delay=0.05),
                # Both attempts are pending by then; nothing tells from outside.
                lambda: port.sleep(0.2),
            )
            assert outcome.cancelled
            assert type(outcome.error) is port.Cancelled  # bare, not an exception group
            assert outcome.exit_s is not None and outcome.exit_s < 0.2

        port.run(main)


@pytest.mark.timeout(5)
def test_a_deadline_around_the_call_cancels_it(port: Port) -> None:
    with LoopbackServer("blackhole") as hole:

        async def main() -> None:
            started = time.perf_counter()
            async with port.move_on_after(0.2) as scope:
                await port.module.open_connection(*hole.address)
            assert scope.cancelled_caught
            assert time.perf_counter() - started < 0.2 + SLACK

        port.run(main)


@pytest.mark.timeout(5)
def test_two_live_addresses_raced_at_once_leave_exactly_one_socket(port: Port) -> None:
    with LoopbackServer("sink", "::1") as v6, LoopbackServer("sink") as v4:

        async def main() -> tuple[str, int]:
            port.install_resolver({"both.test": [v6.address, v4.address]})
            # No delay: both attempts start together and both may connect; the loser's
            # socket must be closed all the same (the fd check after the test sees it).
            async with await port.module.open_connection(
                "both.test", 4242, happy_eyeballs_delay=0
            ) as conn:
                outcomes = sorted(a.outcome for a in conn.attempts)
                assert outcomes == ["cancelled", "connected"]
                [winner] = [a for a in conn.attempts if a.outcome == "connected"]
                assert tuple(winner.address) == tuple(conn.remote_address)
                await conn.send_all(b"x")
                return tuple(conn.remote_address[:2])

        winner = port.run(main)
        server = v6 if winner == v6.address else v4
        assert server.wait_bytes(1)
