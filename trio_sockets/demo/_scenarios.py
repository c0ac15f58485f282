"""The demo's scenarios as the two ports meet them, written once against their shared API.

Each body is an async function of a :class:`Kit` (the framework: the port module, its
clock, a resolver override, a cancellation from outside) and a :class:`Net` (the run's
loopback servers). It returns a JSON-ready dict; the harness in :mod:`trio_sockets.demo`
adds what was left behind.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias

from .._addresses import format_address
from .._reports import SendReport
from ..testing.servers import tls_server_context
from ._kit import Kit, Net

Result: TypeAlias = dict[str, Any]
Body: TypeAlias = Callable[[Kit, Net], Awaitable[Result]]

STATUSES: Final = ("ok", "error", "timeout", "cancelled")
PHASES: Final = ("resolve", "connect", "tls", "check", "send", "reply")
PAYLOAD: Final = b"hello from trio-sockets\n"
HE_DELAY: Final = 0.250  # seconds: RFC 8305's recommended Connection Attempt Delay
HE_TIMEOUT: Final = 2.0  # seconds for the happy-eyeballs scenario
DEADLINE: Final = 0.5  # seconds, for the deadline scenario and each fan-out target
FAIL_FAST_TIMEOUT: Final = 2.0  # seconds for each fail-fast target
CANCEL_AFTER: Final = 0.2  # seconds before the cancel scenario cancels from outside
BIG_PAYLOAD: Final = 2 * 1024 * 1024  # bytes: enough to fill a slow reader's buffers
RESET_AFTER: Final = 65536  # bytes the reset server reads before its RST
BACKPRESSURE_PAYLOAD: Final = 1024 * 1024  # bytes sent to the slow reader
SMALL_SNDBUF: Final = 32768  # bytes: SO_SNDBUF of every socket in the backpressure scenario
TLS_TIMEOUT: Final = 5.0  # seconds for each workflow of the tls scenario
WRONG_NAME: Final = "other.demo"  # a name that resolves to the TLS server, not in its certificate


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate from a throwaway CA, and a client that trusts it.

    The certificate is for ``127.0.0.1``, ``::1`` and ``localhost``, not
    :data:`WRONG_NAME`. The CA comes from ``trustme`` (the ``tls`` extra), imported here:
    the command line skips the scenario without it.
    """
    import trustme

    ca = trustme.CA()
    client = ssl.create_default_context()  # verifies the certificate and the host name
    ca.configure_trust(client)
    return tls_server_context(ca), client


def refusal_reason(error: str | None) -> str | None:
    """Why a certificate was refused, as the error names it; None if it does not say."""
    found = re.search(r"certificate verify failed: ([^,(]+)", error or "")
    return found.group(1).strip().rstrip(".") if found else None


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


def _workflow(report: SendReport, offset: float) -> dict[str, Any]:
    """One workflow's span and phase times, from the scenario's start."""
    return {
        "target": str(report.target),
        "status": report.status,
        "started_s": offset,
        "ended_s": offset + report.total_s,
        "phases": {phase: getattr(report, f"{phase}_s") for phase in PHASES},
    }


def _single(kit: Kit, report: SendReport, start: float, expected: bool, detail: str) -> Result:
    offset = kit.now() - report.total_s - start
    if not expected:  # what happened, not what the scenario expected to happen
        tried = ", ".join(a.outcome for a in report.attempts) or "no attempt"
        detail = f"{report.status} in {report.total_s:.3f} s, attempts: {tried}"
        if report.error:
            detail += f"; {report.error}"
    return {
        "outcome": report.status,
        "time_s": report.total_s,
        "bytes_sent": report.bytes_sent,
        "attempts": _attempts(report, offset),
        "workflows": [_workflow(report, offset)],
        "error": report.error,
        "as_expected": expected,
        "detail": detail,
    }


class _Collector:
    """Gathers a fan-out's reports as they complete, with each workflow's start time."""

    def __init__(self, kit: Kit, start: float) -> None:
        self.kit, self.start = kit, start
        self.attempts: list[dict[str, Any]] = []
        self.workflows: list[dict[str, Any]] = []

    def __call__(self, report: SendReport) -> None:
        offset = self.kit.now() - self.start - report.total_s
        if report.attempts or report.total_s:  # a target cancelled before it started: none
            self.workflows.append(_workflow(report, offset))
        self.attempts.extend(_attempts(report, offset))

    def peak(self) -> int:
        """The most workflows that ran at once."""
        spans = [(w["started_s"], w["ended_s"]) for w in self.workflows]
        edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
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
        "workflows": sorted(collect.workflows, key=lambda w: w["started_s"]),
        "error": next((r.error for r in reports if r.error), None),
    }


async def tls(kit: Kit, net: Net) -> Result:
    server_context, client = tls_contexts()
    server = net.server("sink", tls=server_context)
    start = kit.now()
    report = await kit.port.connect_check_send(
        server.target, PAYLOAD, tls=client, timeout=TLS_TIMEOUT
    )
    offset = kit.now() - report.total_s - start
    net.roles[(WRONG_NAME, server.port)] = f"{WRONG_NAME}, not in the certificate"
    with kit.resolver({WRONG_NAME: [server.address]}):
        wrong = await kit.port.connect_check_send(
            f"{WRONG_NAME}:{server.port}", PAYLOAD, tls=client, timeout=TLS_TIMEOUT
        )
    wrong_offset = kit.now() - wrong.total_s - start
    reason = refusal_reason(wrong.error) if wrong.status == "error" else None
    good = report.ok and report.bytes_sent == len(PAYLOAD) and report.tls_version is not None
    good = good and reason is not None
    if good:
        detail = (
            f"{report.tls_version} {report.tls_cipher}, handshake {report.tls_s:.3f} s; "
            f"{WRONG_NAME} refused: {reason}"
        )
    elif not report.ok:  # what happened, not what the scenario expected to happen
        detail = f"the handshake to the right name: {report.status}, {report.error}"
    elif wrong.status != "error":
        detail = f"{WRONG_NAME} was not refused: {wrong.status}"
    else:
        detail = f"the refusal does not say why: {wrong.error}"
    return {
        "outcome": f"{report.status}, {'refused' if wrong.status == 'error' else wrong.status}",
        "time_s": kit.now() - start,
        "bytes_sent": report.bytes_sent,
        "handshake_s": report.tls_s,
        "tls_version": report.tls_version,
        "tls_cipher": report.tls_cipher,
        "refusal": reason,
        "attempts": _attempts(report, offset) + _attempts(wrong, wrong_offset),
        "workflows": [_workflow(report, offset), _workflow(wrong, wrong_offset)],
        "error": wrong.error,
        "as_expected": good,
        "detail": detail,
    }


async def happy_eyeballs(kit: Kit, net: Net) -> Result:
    addrs, live, v6 = net.blackhole_then_sink()
    start = kit.now()
    with kit.resolver({"dual.demo": addrs}):
        report = await kit.port.connect_check_send(
            f"dual.demo:{live.port}", PAYLOAD, timeout=HE_TIMEOUT, happy_eyeballs_delay=HE_DELAY
        )
    outcomes = [a.outcome for a in report.attempts]
    good = report.ok and outcomes == ["cancelled", "connected"]
    detail = ""  # what happened, if not as expected: _single says
    if good:  # measured, not the delay asked for
        gap = report.attempts[1].started_s - report.attempts[0].started_s
        detail = f"the {'IPv6' if v6 else 'first'} attempt hung; IPv4 started after {gap:.2f} s"
    return _single(kit, report, start, good, detail)


async def all_refused(kit: Kit, net: Net) -> Result:
    addrs = net.refusing_addresses()
    start = kit.now()
    with kit.resolver({"refused.demo": addrs}):
        report = await kit.port.connect_check_send("refused.demo:9", PAYLOAD, timeout=5.0)
    good = report.status == "error" and all(a.outcome == "failed" for a in report.attempts)
    good = good and report.total_s < HE_DELAY  # each refusal started the next at once
    detail = f"{len(report.attempts)} addresses, each refusal started the next at once"
    return _single(kit, report, start, good, detail)


async def deadline(kit: Kit, net: Net) -> Result:
    holes = [net.server("blackhole"), net.server("blackhole")]
    start = kit.now()
    with kit.resolver({"hung.demo": [hole.address for hole in holes]}):
        report = await kit.port.connect_check_send(
            f"hung.demo:{holes[0].port}", PAYLOAD, timeout=DEADLINE
        )
    outcomes = [a.outcome for a in report.attempts]
    good = report.status == "timeout" and outcomes == ["cancelled", "cancelled"]
    detail = f"both addresses tried, both connects cancelled at the {DEADLINE} s deadline"
    return _single(kit, report, start, good, detail)


async def backpressure(kit: Kit, net: Net) -> Result:
    # Every socket gets a small send buffer (the harness sets SMALL_SNDBUF before each
    # connect): loopback's own buffers take megabytes and would hide the backpressure.
    slow = net.server("slow")
    start = kit.now()
    report = await kit.port.connect_check_send(
        slow.target, bytes(BACKPRESSURE_PAYLOAD), timeout=5.0
    )
    good = report.ok and report.bytes_sent == BACKPRESSURE_PAYLOAD and report.send_s > 0.05
    rate = report.bytes_sent / max(report.send_s, 1e-9) / 1e6
    detail = (
        f"check {report.check_s:.3f} s, send {report.send_s:.3f} s at {rate:.1f} MB/s: "
        "the reader set the pace"
    )
    return _single(kit, report, start, good, detail)


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
    if not result["as_expected"]:
        result["detail"] = f"statuses: {', '.join(statuses)}; " + result["detail"]
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
        timeout=FAIL_FAST_TIMEOUT,
        fail_fast=True,
        on_report=collect,
    )
    result = _many(kit, reports, start, collect)
    statuses = [r.status for r in reports]
    good = statuses == ["cancelled"] * 3 + ["error"] + ["cancelled"] * 2
    result["as_expected"] = good and result["time_s"] < 1.0
    result["detail"] = "the refusal cancelled three hung connects and two unstarted targets"
    if not result["as_expected"]:  # what happened instead
        result["detail"] = f"statuses: {', '.join(statuses)}, in {result['time_s']:.3f} s"
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
        "workflows": [],
        "error": None,
        "as_expected": cancelled,
        "detail": f"cancelled after {CANCEL_AFTER} s: 2 hung connects, 2 sends mid-way "
        f"({read} B read so far)"
        if cancelled
        else f"the fan-out finished before the cancellation at {CANCEL_AFTER} s",
    }
