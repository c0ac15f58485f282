"""Spec: many targets, random faults, random outside cancellation, on every port.

Each run scripts a fan-out over real loopback servers: targets that work, refuse, never
answer, reset right after the accept, reset in the middle of the payload, resolve
slowly, fail to resolve, or carry a name that IDNA refuses, and targets whose name races
a bad address against a good one. The seed picks the mix, the payload sizes, the
resolver's delays and whether and when the whole call is cancelled from outside.

Whatever happens, a run ends with one report per target in input order (or the bare
cancellation, when it was cancelled), each report's status is one its fault allows, the
sink read exactly what the reports say was sent to it, and nothing is left: no file
descriptor, no task, no timer (the suite's leak checks, conftest.py). A failure shows
its seed; ``TRIO_SOCKETS_SEED=N`` runs that seed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import selectors
import socket
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import idna
import pytest
import trio
from conftest import Port

from trio_sockets import Target
from trio_sockets.testing import LoopbackServer, addrinfo, refusing_socket

pytestmark = pytest.mark.timeout(30)

SEEDS = [int(os.environ["TRIO_SOCKETS_SEED"])] if "TRIO_SOCKETS_SEED" in os.environ else [1, 2]
TARGETS = 24
TIMEOUT = 2.0  # seconds for each target: what a blackholed one costs (and a loaded CI's margin)
DELAY = 0.05  # seconds: the happy-eyeballs delay
RESET_AFTER = 4096  # bytes a mid-send resetter reads before its RST


class AcceptAndReset:
    """A listener whose thread accepts each connection and resets it at once (RST)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                for _ in selector.select(0.02):
                    with contextlib.suppress(BlockingIOError, ConnectionAbortedError):
                        conn, _ = self.listener.accept()
                        linger = struct.pack("ii", 1, 0)  # close() sends RST, not FIN
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                        conn.close()

    def __enter__(self) -> AcceptAndReset:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.listener.close()


# (delay in seconds or None, then addresses, or an exception to raise) for each name.
Answer = tuple[float, Sequence[tuple[str, int]] | BaseException]


def install_resolver(port: Port, answers: Mapping[str, Answer]) -> None:
    """A resolver that waits, then answers or fails, per name (inside ``port.run``).

    Names are IDNA 2008 encoded first, as Trio does on every port: a name IDNA refuses
    fails there, with ``idna.IDNAError``.
    """

    def lookup(name: str) -> Answer:
        answer = answers.get(name)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known: {name!r}")
        return answer

    if port.name == "trio":

        class Resolver(trio.abc.HostnameResolver):
            async def getaddrinfo(self, host: Any, *args: Any, **kwargs: Any) -> Any:
                delay, result = lookup(host.decode("ascii"))
                await trio.sleep(delay)
                if isinstance(result, BaseException):
                    raise result
                return addrinfo(*result)

            async def getnameinfo(self, *args: Any) -> Any:
                raise NotImplementedError

        trio.socket.set_custom_hostname_resolver(Resolver())
        return

    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port_: Any, **kwargs: Any) -> Any:
        if host.replace(".", "").isdigit() or ":" in host:  # uvloop's sock_connect asks
            return await real(host, port_, **kwargs)
        delay, result = lookup(idna.encode(host, uts46=True).decode("ascii"))
        await asyncio.sleep(delay)
        if isinstance(result, BaseException):
            raise result
        return addrinfo(*result)

    setattr(loop, "getaddrinfo", getaddrinfo)  # noqa: B010 (this loop only)


@contextlib.contextmanager
def servers() -> Iterator[dict[str, Any]]:
    with (
        LoopbackServer("sink") as sink,
        LoopbackServer("blackhole") as hole,
        LoopbackServer("reset", reset_after=RESET_AFTER) as mid_send,
        AcceptAndReset() as at_once,
        refusing_socket() as refusing,
    ):
        yield {
            "sink": sink,
            "hole": hole.address,
            "mid_send": mid_send.address,
            "at_once": at_once.address,
            "refused": refusing.getsockname()[:2],
        }


# fault: the statuses its report may have
FAULTS: dict[str, set[str]] = {
    "works": {"ok"},
    "refused": {"error"},
    "blackholed": {"timeout"},
    "reset after accept": {"error"},
    "reset mid-send": {"error"},
    "slow resolver": {"ok"},
    "resolver error": {"error"},
    "idna error": {"error"},
    "blackholed, then works": {"ok"},
    "refused, then works": {"ok"},
    # The RST may come before our getpeername() (a failed attempt: the race goes on)
    # or after it (the send or the reply fails).
    "reset after accept, then works": {"ok", "error"},
}


def plan(seed: int, where: dict[str, Any]) -> tuple[list[str], list[str], dict[str, Answer]]:
    """The targets of one run, the fault of each, and what the resolver answers."""
    rng = random.Random(seed)
    sink = where["sink"].address
    answers: dict[str, Answer] = {}
    targets: list[str] = []
    faults = [rng.choice(list(FAULTS)) for _ in range(TARGETS)]
    for i, fault in enumerate(faults):
        name = f"t{i}.test"
        quick = rng.choice([0.0, 0.001])
        if fault == "idna error":
            targets.append(f"☃{i}.net:80")  # IDNA 2003 takes it; IDNA 2008 does not
            continue
        choices: dict[str, Answer] = {
            "works": (quick, [sink]),
            "refused": (quick, [where["refused"]]),
            "blackholed": (quick, [where["hole"]]),
            "reset after accept": (quick, [where["at_once"]]),
            "reset mid-send": (quick, [where["mid_send"]]),
            "slow resolver": (rng.uniform(0.05, 0.3), [sink]),
            "resolver error": (quick, socket.gaierror(socket.EAI_AGAIN, "Temporary failure")),
            "blackholed, then works": (quick, [where["hole"], sink]),
            "refused, then works": (quick, [where["refused"], sink]),
            "reset after accept, then works": (quick, [where["at_once"], sink]),
        }
        answers[name] = choices[fault]
        targets.append(f"{name}:80")
    return targets, faults, answers


@pytest.mark.parametrize("seed", SEEDS)
def test_random_faults_and_cancellation(port: Port, seed: int) -> None:
    # One seed per port and run, derived from the test's seed: each port meets its mix.
    run_seed = seed * 1000 + ["trio", "asyncio", "uvloop"].index(port.name)
    rng = random.Random(run_seed)
    payload = os.urandom(rng.randrange(RESET_AFTER * 2, 200_000))
    cancel_after = rng.uniform(0.0, 0.8) if rng.random() < 0.4 else None
    print(f"seed {seed} (this port's run: {run_seed}); cancel after {cancel_after} s")

    with servers() as where:
        targets, faults, answers = plan(run_seed, where)
        sink: LoopbackServer = where["sink"]
        before = sink.bytes_received

        async def main() -> Any:
            install_resolver(port, answers)

            async def fan_out() -> Any:
                return await port.module.send_to_many(
                    targets,
                    payload,
                    max_concurrency=8,
                    timeout=TIMEOUT,
                    happy_eyeballs_delay=DELAY,
                    read_reply=True,
                )

            if cancel_after is None:
                return await fan_out()
            outcome = await port.run_and_cancel(fan_out, lambda: port.sleep(cancel_after))
            if outcome.cancelled:
                assert type(outcome.error) is port.Cancelled, (run_seed, outcome.error)
                return None
            assert outcome.error is None, (run_seed, outcome.error)
            return outcome.value

        reports = port.run(main)

    context = f"seed {seed}, run {run_seed}"
    if reports is None:
        return  # cancelled: bare, and the leak checks will have their say
    assert [r.target for r in reports] == [Target.parse(t) for t in targets], context
    sent_to_sink = 0
    for report, fault in zip(reports, faults, strict=True):
        assert report.status in FAULTS[fault], (context, fault, report)
        if report.ok:
            assert report.bytes_sent == len(payload), (context, fault, report)
            assert report.error is None and report.reply == b"", (context, fault, report)
        else:
            assert report.error, (context, fault, report)
        if report.address is not None and tuple(report.address[:2]) == sink.address:
            sent_to_sink += report.bytes_sent
    # What the reports say went to the sink is exactly what it read, no more, no less.
    assert sink.wait_bytes(before + sent_to_sink), context
    assert sink.bytes_received - before == sent_to_sink, context
