"""The demo scenarios: the same network trouble, met by the Trio port and the asyncio port.

Each :class:`Scenario` is one async function written against the public API that both
ports share (:class:`Port`), plus a :class:`Kit` per framework for the few things a
scenario needs from the framework itself: its clock, a resolver override, a cancellation
from outside, and counting its tasks. The servers are :class:`LoopbackServer` threads, on
loopback only, started fresh for every run so that the two ports never share state.

A run returns a framework-neutral, JSON-ready dict (see :func:`run_scenario`).
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeAlias

from .._addresses import format_address
from .._reports import SendReport
from ..testing.servers import ipv6_loopback
from ._kit import KITS, Kit, Net, PortName, open_fds, run_on

__all__ = [
    "PORTS",
    "PORTS_ON_UVLOOP",
    "SCENARIOS",
    "Kit",
    "Scenario",
    "run_scenario",
    "scenario_names",
]

PORTS: Final[tuple[str, ...]] = ("trio", "asyncio")
# demo --uvloop: the asyncio port runs on uvloop instead of asyncio's own loop.
PORTS_ON_UVLOOP: Final[tuple[str, ...]] = ("trio", "asyncio+uvloop")
Result: TypeAlias = dict[str, Any]

STATUSES: Final = ("ok", "error", "timeout", "cancelled")
PAYLOAD: Final = b"hello from trio-sockets\n"
HE_DELAY: Final = 0.250  # seconds: RFC 8305's recommended Connection Attempt Delay
DEADLINE: Final = 0.5  # seconds, for the deadline scenario and each fan-out target
CANCEL_AFTER: Final = 0.2  # seconds before the cancel scenario cancels from outside
BIG_PAYLOAD: Final = 2 * 1024 * 1024  # bytes: enough to fill a slow reader's buffers
RESET_AFTER: Final = 65536  # bytes the reset server reads before its RST
BACKPRESSURE_PAYLOAD: Final = 1024 * 1024  # bytes sent to the slow reader
SMALL_SNDBUF: Final = 32768  # bytes: SO_SNDBUF asked for in the backpressure scenario


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------

Body: TypeAlias = Callable[[Kit, Net], Awaitable[Result]]


@dataclasses.dataclass(frozen=True, slots=True)
class Scenario:
    """A named piece of network trouble, its lesson, and the async body that meets it."""

    name: str
    title: str
    lesson: str
    body: Body


def _attempts(report: SendReport, offset: float) -> list[dict[str, Any]]:
    # Attempt times are relative to their workflow; shift them to the scenario's start.
    rows = []
    for attempt in report.attempts:
        row = attempt.to_dict()
        row["started_s"] += offset
        row["ended_s"] += offset
        row["target"] = str(report.target)
        rows.append(row)
    return rows


def _single(kit: Kit, report: SendReport, start: float, expected: bool, detail: str) -> Result:
    offset = kit.now() - report.total_s - start
    return {
        "outcome": report.status,
        "time_s": report.total_s,
        "bytes_sent": report.bytes_sent,
        "attempts": _attempts(report, offset),
        "error": report.error,
        "as_expected": expected,
        "detail": detail,
    }


class _Collector:
    """Gathers a fan-out's reports as they complete, with each workflow's start time."""

    def __init__(self, kit: Kit, start: float) -> None:
        self.kit, self.start = kit, start
        self.attempts: list[dict[str, Any]] = []
        self.spans: list[tuple[float, float]] = []

    def __call__(self, report: SendReport) -> None:
        end = self.kit.now() - self.start
        if report.attempts or report.total_s:
            self.spans.append((end - report.total_s, end))
        self.attempts.extend(_attempts(report, end - report.total_s))

    def peak(self) -> int:
        """The most workflows that ran at once."""
        edges = sorted([(a, 1) for a, _ in self.spans] + [(b, -1) for _, b in self.spans])
        level = best = 0
        for _, step in edges:
            level += step
            best = max(best, level)
        return best


def _many(kit: Kit, reports: list[SendReport], start: float, collect: _Collector) -> Result:
    statuses = [report.status for report in reports]
    counts = [f"{statuses.count(s)} {s}" for s in STATUSES if s in statuses]
    return {
        "outcome": ", ".join(counts),
        "statuses": statuses,
        "time_s": kit.now() - start,
        "bytes_sent": sum(r.bytes_sent for r in reports),
        "attempts": sorted(collect.attempts, key=lambda a: a["started_s"]),
        "error": next((r.error for r in reports if r.error), None),
    }


async def happy_eyeballs(kit: Kit, net: Net) -> Result:
    v6 = ipv6_loopback()
    hole = net.server("blackhole", "::1" if v6 else "127.0.0.1")
    live = net.server("sink")
    hole_addr = (hole.host, hole.port, 0, 0) if v6 else hole.address
    start = kit.now()
    with kit.resolver({"dual.demo": [hole_addr, live.address]}):
        report = await kit.port.connect_check_send(
            f"dual.demo:{live.port}", PAYLOAD, timeout=5.0, happy_eyeballs_delay=HE_DELAY
        )
    outcomes = [a.outcome for a in report.attempts]
    good = report.ok and outcomes == ["cancelled", "connected"]
    detail = f"the {'IPv6' if v6 else 'first'} attempt hung; IPv4 started after {HE_DELAY} s"
    return _single(kit, report, start, good, detail)


async def all_refused(kit: Kit, net: Net) -> Result:
    addrs = [net.closed_port("127.0.0.1"), net.closed_port("127.0.0.1")]
    if ipv6_loopback():
        addrs.insert(0, (*net.closed_port("::1")[:2], 0, 0))
    start = kit.now()
    with kit.resolver({"refused.demo": addrs}):
        report = await kit.port.connect_check_send("refused.demo:9", PAYLOAD, timeout=5.0)
    good = report.status == "error" and all(a.outcome == "failed" for a in report.attempts)
    good = good and report.total_s < HE_DELAY  # each refusal started the next at once
    detail = f"{len(report.attempts)} addresses, each refusal started the next at once"
    return _single(kit, report, start, good, detail)


async def deadline(kit: Kit, net: Net) -> Result:
    hole = net.server("blackhole")
    start = kit.now()
    report = await kit.port.connect_check_send(hole.target, PAYLOAD, timeout=DEADLINE)
    good = report.status == "timeout" and [a.outcome for a in report.attempts] == ["cancelled"]
    return _single(kit, report, start, good, f"connect cancelled at the {DEADLINE} s deadline")


async def backpressure(kit: Kit, net: Net) -> Result:
    slow = net.server("slow")
    start = kit.now()
    # The lower-level API this time, to shrink the kernel's send buffer: loopback's own
    # buffers take megabytes, which would hide the backpressure from a short demo.
    conn = await kit.port.open_connection(slow.host, slow.port)
    async with conn:
        conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_SNDBUF)
        checked = kit.now()
        await conn.wait_writable()
        sending = kit.now()
        await conn.send_all(bytes(BACKPRESSURE_PAYLOAD))
        sent = conn.bytes_sent
    elapsed = kit.now() - start
    good = sent == BACKPRESSURE_PAYLOAD and kit.now() - sending > 0.05
    rate = sent / max(kit.now() - sending, 1e-9) / 1e6
    return {
        "outcome": "ok" if sent == BACKPRESSURE_PAYLOAD else "error",
        "time_s": elapsed,
        "bytes_sent": sent,
        "attempts": [a.to_dict() | {"target": slow.target} for a in conn.attempts],
        "error": None,
        "as_expected": good,
        "detail": f"check {sending - checked:.3f} s, send {elapsed - (sending - start):.3f} s "
        f"at {rate:.1f} MB/s: the reader set the pace",
    }


async def reset(kit: Kit, net: Net) -> Result:
    server = net.server("reset", reset_after=RESET_AFTER)
    start = kit.now()
    report = await kit.port.connect_check_send(server.target, bytes(16 * BIG_PAYLOAD), timeout=5.0)
    error = report.error or ""
    good = report.status == "error" and "SendError" in error
    good = good and RESET_AFTER <= report.bytes_sent < 16 * BIG_PAYLOAD
    detail = (
        f"server read {server.bytes_received} B, then RST; the kernel had accepted exactly "
        f"{report.bytes_sent} B"
    )
    return _single(kit, report, start, good, detail)


async def fan_out(kit: Kit, net: Net) -> Result:
    targets = [
        net.server("blackhole").target,
        *(net.server("sink").target for _ in range(3)),
        format_address(net.closed_port()),
        net.server("echo").target,
        net.server("slow").target,
        net.server("sink").target,
    ]
    start = kit.now()
    collect = _Collector(kit, start)
    reports = await kit.port.send_to_many(
        targets, PAYLOAD, max_concurrency=3, timeout=DEADLINE, on_report=collect
    )
    result = _many(kit, reports, start, collect)
    statuses = [r.status for r in reports]
    expected = ["timeout", "ok", "ok", "ok", "error", "ok", "ok", "ok"]
    result["as_expected"] = statuses == expected and collect.peak() <= 3
    result["detail"] = f"{len(targets)} targets, at most {collect.peak()} at once (limit 3)"
    return result


async def fail_fast(kit: Kit, net: Net) -> Result:
    holes = [net.server("blackhole").target for _ in range(3)]
    refused = format_address(net.closed_port())
    sinks = [net.server("sink").target for _ in range(2)]
    start = kit.now()
    collect = _Collector(kit, start)
    reports = await kit.port.send_to_many(
        [*holes, refused, *sinks],
        PAYLOAD,
        max_concurrency=4,
        timeout=5.0,
        fail_fast=True,
        on_report=collect,
    )
    result = _many(kit, reports, start, collect)
    statuses = [r.status for r in reports]
    good = statuses == ["cancelled"] * 3 + ["error"] + ["cancelled"] * 2
    result["as_expected"] = good and result["time_s"] < 1.0
    result["detail"] = "the refusal cancelled three hung connects and two unstarted targets"
    return result


async def cancel(kit: Kit, net: Net) -> Result:
    targets = [net.server("blackhole").target for _ in range(2)]
    slow = [net.server("slow") for _ in range(2)]
    start = kit.now()

    async def work() -> None:
        await kit.port.send_to_many(
            targets + [s.target for s in slow], bytes(4 * BIG_PAYLOAD), timeout=5.0
        )

    cancelled = await kit.cancel_after(CANCEL_AFTER, work)
    read = sum(s.bytes_received for s in slow)
    return {
        "outcome": "cancelled" if cancelled else "finished",
        "time_s": kit.now() - start,
        "bytes_sent": None,
        "attempts": [],
        "error": None,
        "as_expected": cancelled,
        "detail": f"cancelled after {CANCEL_AFTER} s: 2 hung connects, 2 sends mid-way "
        f"({read} B read so far)",
    }


SCENARIOS: Final[tuple[Scenario, ...]] = (
    Scenario(
        "happy-eyeballs",
        "Happy eyeballs: blackholed IPv6, live IPv4",
        "Both race the addresses as a staircase; the first to connect cancels the rest. "
        "Trio's winner cancels the nursery's scope; asyncio's TaskGroup has no such scope, "
        "so the port keeps the sibling tasks and cancels them one by one.",
        happy_eyeballs,
    ),
    Scenario(
        "all-refused",
        "Every address refused",
        "A refusal starts the next attempt at once instead of waiting out the delay, and "
        "the caller gets one ConnectError listing every attempt. Trio's nursery would group "
        "the failures; both ports collect them so the error is the same.",
        all_refused,
    ),
    Scenario(
        "deadline",
        "A deadline on a blackholed host",
        "The timeout is a cancel scope around the whole workflow: trio.move_on_after, and on "
        "asyncio a move_on_after built on asyncio.timeout. The hung connect is cancelled, "
        "its socket closed, and the report says which phase ran out of time.",
        deadline,
    ),
    Scenario(
        "backpressure",
        "Backpressure from a slow reader",
        "send_all waits for writability whenever the kernel buffer is full. In Trio every "
        "such wait is a checkpoint; asyncio's port waits on the loop's writer callback "
        "itself, so that a cancelled wait never loses count of the bytes sent.",
        backpressure,
    ),
    Scenario(
        "reset",
        "A reset mid-send",
        "The peer resets after 64 KiB; the SendError carries bytes_sent, exactly what the "
        "kernel accepted, in both models. That is more than the peer read: only an "
        "application-level acknowledgement can tell what arrived.",
        reset,
    ),
    Scenario(
        "fan-out",
        "Fan-out over mixed targets, 3 at a time",
        "A CapacityLimiter (Trio) or a semaphore-backed limiter (asyncio) keeps three "
        "workflows in flight; a refused or hung target only costs its own slot, and the "
        "reports come back in input order.",
        fan_out,
    ),
    Scenario(
        "fail-fast",
        "Fail-fast",
        "The first failure cancels the rest: one CancelScope around Trio's nursery; asyncio "
        "needs a hand-made scope that cancels the task and uncancels it afterwards, so that a "
        "cancellation from outside is not swallowed.",
        fail_fast,
    ),
    Scenario(
        "cancel",
        "Cancellation from outside",
        "The caller cancels mid-flight: Trio's cancel scope reaches every task of the "
        "fan-out; asyncio's Task.cancel() reaches the TaskGroup, which cancels and awaits its "
        "children. Either way no socket and no task outlives the call.",
        cancel,
    ),
)


def scenario_names() -> list[str]:
    return [s.name for s in SCENARIOS]


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


async def _measured(kit: Kit, scenario: Scenario, net: Net) -> Result:
    fds, tasks = open_fds(), kit.task_count()
    result = await scenario.body(kit, net)
    result["left_behind"] = {"fds": net.left_behind(fds), "tasks": kit.task_count() - tasks}
    return result


def run_scenario(scenario: Scenario, port: str) -> Result:
    """Run ``scenario`` on one port, with fresh servers; return a JSON-ready dict.

    ``port`` is ``"trio"``, ``"asyncio"`` or ``"asyncio+uvloop"`` (the asyncio port on
    uvloop's event loop, which must be installed).

    The dict holds ``outcome``, ``time_s``, ``bytes_sent`` (``None`` when unknown),
    ``attempts`` (``Attempt.to_dict()`` rows, times from the scenario's start, each with
    its ``target``), ``error``, ``as_expected``, ``detail`` and ``left_behind``
    (``{"fds": n, "tasks": n}``).
    """
    name: PortName = "trio" if port == "trio" else "asyncio"
    kit = KITS[name]()
    wall = time.perf_counter()
    with Net() as net:
        result = run_on(port, lambda: _measured(kit, scenario, net))
    result["wall_s"] = time.perf_counter() - wall
    return result


def select(names: Iterable[str]) -> list[Scenario]:
    """The scenarios named (all of them for none), in the order given.

    Raises:
        KeyError: a name that is not a scenario (the argument is that name).
    """
    by_name = {s.name: s for s in SCENARIOS}
    chosen = [by_name[n] if n in by_name else _unknown(n) for n in names]
    return chosen or list(SCENARIOS)


def _unknown(name: str) -> Scenario:
    raise KeyError(name)
