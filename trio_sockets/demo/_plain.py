"""The scenarios as the two plain contestants meet them: unstructured asyncio, and threads.

The contestants (:mod:`.unstructured`, :mod:`.threads`) keep no report: a call returns the
bytes it sent or raises. So the harness measures from outside what the ports report from
inside: the time, the connects (seen by an audit hook), and what is still running after
the call returns. Each body here runs in an asyncio event loop; the threaded contestant is
called from a thread of its own, so that a caller that gives up can be seen to leave its
threads behind.

Each result has a ``flaw``: ``None`` when the contestant did as well as the ports, or one
line saying what went worse and why, computed from what was measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final, TypeVar

from . import threads, unstructured
from ._kit import AsyncioKit, Net, SockAddr, fake_getaddrinfo
from ._scenarios import (
    BACKPRESSURE_PAYLOAD,
    BIG_PAYLOAD,
    CANCEL_AFTER,
    DEADLINE,
    FAIL_FAST_TIMEOUT,
    HE_DELAY,
    HE_TIMEOUT,
    PAYLOAD,
    RESET_AFTER,
    STATUSES,
    TLS_TIMEOUT,
    WRONG_NAME,
    Result,
    refusal_reason,
    tls_contexts,
)

__all__ = ["PLAIN_BODIES", "PLAIN_KITS", "Plain", "ThreadsKit", "UnstructuredKit"]

T = TypeVar("T")
Outcome = int | BaseException
Target = tuple[str, int]


class Plain(AsyncioKit):
    """A plain contestant behind the calls that the bodies make (run in an asyncio loop)."""

    label: str
    why_left: str  # why this contestant can leave work running after it returns

    async def connect_check_send(
        self, target: Target, payload: bytes, timeout: float, tls: ssl.SSLContext | None = None
    ) -> int:
        raise NotImplementedError

    async def send_to_many(
        self,
        targets: list[Target],
        payload: bytes,
        *,
        max_concurrency: int,
        timeout: float,
        fail_fast: bool = False,
    ) -> list[Outcome]:
        raise NotImplementedError


class UnstructuredKit(Plain):
    label = "asyncio, unstructured"
    why_left = "gather() raises the first error and lets the other tasks run on"

    async def connect_check_send(
        self, target: Target, payload: bytes, timeout: float, tls: ssl.SSLContext | None = None
    ) -> int:
        return await unstructured.connect_check_send(*target, payload, timeout, tls)

    async def send_to_many(
        self,
        targets: list[Target],
        payload: bytes,
        *,
        max_concurrency: int,
        timeout: float,
        fail_fast: bool = False,
    ) -> list[Outcome]:
        return await unstructured.send_to_many(
            targets, payload, max_concurrency=max_concurrency, timeout=timeout, fail_fast=fail_fast
        )


class ThreadsKit(Plain):
    label = "threads"
    why_left = "a running thread cannot be cancelled; its caller can only stop waiting"

    @contextlib.contextmanager
    def resolver(self, table: dict[str, list[SockAddr]]) -> Iterator[None]:
        # socket.create_connection asks the socket module's getaddrinfo.
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host in table:
                return fake_getaddrinfo(table, host)
            return real(host, *args, **kwargs)

        socket.getaddrinfo = getaddrinfo
        try:
            yield
        finally:
            socket.getaddrinfo = real

    async def connect_check_send(
        self, target: Target, payload: bytes, timeout: float, tls: ssl.SSLContext | None = None
    ) -> int:
        return await _in_thread(threads.connect_check_send, *target, payload, timeout, tls)

    async def send_to_many(
        self,
        targets: list[Target],
        payload: bytes,
        *,
        max_concurrency: int,
        timeout: float,
        fail_fast: bool = False,
    ) -> list[Outcome]:
        def call() -> list[Outcome]:
            return threads.send_to_many(
                targets,
                payload,
                max_concurrency=max_concurrency,
                timeout=timeout,
                fail_fast=fail_fast,
            )

        return await _in_thread(call)


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn(*args)`` in a new thread and wait for it; a cancelled wait leaves it running.

    Not ``asyncio.to_thread``: its pool keeps idle threads, which would count as left behind.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, failed: bool) -> None:
        if not future.done():
            future.set_exception(value) if failed else future.set_result(value)

    def call() -> None:
        try:
            result: Any = fn(*args)
            failed = False
        except BaseException as exc:
            result, failed = exc, True
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, result, failed)

    thread = threading.Thread(target=call, name="the caller", daemon=True)
    thread.start()
    try:
        return await future
    finally:
        if not future.cancelled():
            thread.join()  # it has handed over its result: it ends at once


PLAIN_KITS: Final[dict[str, type[Plain]]] = {
    "asyncio-unstructured": UnstructuredKit,
    "threads": ThreadsKit,
}


# --------------------------------------------------------------------------------------
# The bodies
# --------------------------------------------------------------------------------------


def _status(outcome: Outcome) -> str:
    if isinstance(outcome, TimeoutError):  # before OSError: a TimeoutError is an OSError
        return "timeout"
    if isinstance(outcome, asyncio.CancelledError):
        return "cancelled"
    return "error" if isinstance(outcome, BaseException) else "ok"


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _one(kit: Plain, work: Awaitable[int], started: float) -> Result:
    try:
        outcome: Outcome = await work
    except OSError as exc:  # not CancelledError: that is Ctrl+C, and must go on out
        outcome = exc
    return {
        "outcome": _status(outcome),
        "time_s": kit.now() - started,
        "bytes_sent": None if isinstance(outcome, BaseException) else outcome,
        "attempts": [],
        "workflows": [],
        "error": _error(outcome) if isinstance(outcome, BaseException) else None,
    }


async def _fan_out(kit: Plain, targets: list[Target], started: float, **options: Any) -> Result:
    try:
        outcomes = await kit.send_to_many(targets, PAYLOAD, **options)
    except OSError as exc:  # fail_fast: the first failure, and nothing else
        return {**await _one(kit, _raise(exc), started), "statuses": None}
    statuses = [_status(o) for o in outcomes]
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    return {
        "outcome": ", ".join(f"{statuses.count(s)} {s}" for s in STATUSES if s in statuses),
        "statuses": statuses,
        "time_s": kit.now() - started,
        "bytes_sent": sum(o for o in outcomes if not isinstance(o, BaseException)),
        "attempts": [],
        "workflows": [],
        "error": _error(errors[0]) if errors else None,
    }


async def _raise(exc: BaseException) -> int:
    raise exc


def _target(address: tuple[Any, ...]) -> Target:
    return str(address[0]), int(address[1])


async def happy_eyeballs(kit: Plain, net: Net) -> Result:
    addrs, live, v6 = net.blackhole_then_sink()
    start = kit.now()
    with kit.resolver({"dual.demo": addrs}):
        result = await _one(
            kit, kit.connect_check_send(("dual.demo", live.port), PAYLOAD, HE_TIMEOUT), start
        )
    first = "the blackholed IPv6 address" if v6 else "the blackholed first address"
    if result["time_s"] < HE_DELAY * 2:
        result["detail"], result["flaw"] = f"connected in {result['time_s']:.3f} s", None
    elif result["outcome"] == "ok":
        result["detail"] = f"connected to the second address after {result['time_s']:.1f} s"
        result["flaw"] = (
            f"tries one address at a time: {result['time_s']:.1f} s lost on {first} "
            "(its own timeout) before the next"
        )
    else:
        result["detail"] = f"{result['outcome']} after {result['time_s']:.1f} s"
        result["flaw"] = (
            f"tries one address at a time: {first} took the whole {HE_TIMEOUT} s deadline"
        )
    return result


async def all_refused(kit: Plain, net: Net) -> Result:
    addrs = net.refusing_addresses()
    start = kit.now()
    with kit.resolver({"refused.demo": addrs}):
        result = await _one(kit, kit.connect_check_send(("refused.demo", 9), PAYLOAD, 5.0), start)
    named = sum(re.search(rf"\b{a[1]}\b", result["error"] or "") is not None for a in addrs)
    result["detail"] = f"one {(result['error'] or '').split(':')[0]} naming {named} of {len(addrs)}"
    result["flaw"] = (
        None
        if named == len(addrs)
        else f"the error names {named} of the {len(addrs)} addresses that refused"
    )
    return result


async def deadline(kit: Plain, net: Net) -> Result:
    holes = [net.server("blackhole"), net.server("blackhole")]
    start = kit.now()
    with kit.resolver({"hung.demo": [hole.address for hole in holes]}):
        work = kit.connect_check_send(("hung.demo", holes[0].port), PAYLOAD, DEADLINE)
        result = await _one(kit, work, start)
    late = result["time_s"] - DEADLINE
    result["detail"] = f"{result['outcome']} after {result['time_s']:.3f} s"
    # A socket timeout bounds each blocking call; create_connection makes one per address.
    why = ": the timeout bounds each address's connect, not the call" if late > 0.1 else ""
    result["flaw"] = f"overran the {DEADLINE} s deadline by {late:.2f} s{why}" if why else None
    return result


async def backpressure(kit: Plain, net: Net) -> Result:
    slow = net.server("slow")
    start = kit.now()
    work = kit.connect_check_send(_target(slow.address), bytes(BACKPRESSURE_PAYLOAD), 5.0)
    result = await _one(kit, work, start)
    rate = (result["bytes_sent"] or 0) / max(result["time_s"], 1e-9) / 1e6
    result["detail"] = f"{result['time_s']:.3f} s at {rate:.1f} MB/s: the reader set the pace"
    result["flaw"] = None if result["bytes_sent"] == BACKPRESSURE_PAYLOAD else result["error"]
    return result


async def reset(kit: Plain, net: Net) -> Result:
    server = net.server("reset", reset_after=RESET_AFTER)
    start = kit.now()
    work = kit.connect_check_send(_target(server.address), bytes(16 * BIG_PAYLOAD), 5.0)
    result = await _one(kit, work, start)
    result["detail"] = f"server read {server.bytes_received} B, then RST; {result['error']}"
    result["flaw"] = (
        "lost the byte count: the exception does not say how much the kernel took"
        if result["bytes_sent"] is None
        else None
    )
    return result


async def fan_out(kit: Plain, net: Net) -> Result:
    targets = [
        _target(net.server("blackhole").address),
        *(_target(net.server("sink").address) for _ in range(3)),
        _target(net.closed_port()),
        _target(net.server("echo").address),
        _target(net.server("slow").address),
        _target(net.server("sink").address),
    ]
    start = kit.now()
    result = await _fan_out(kit, targets, start, max_concurrency=3, timeout=DEADLINE)
    late = result["time_s"] - 2 * DEADLINE  # a hung target costs one slot for one deadline
    result["detail"] = f"{len(targets)} targets, limit 3, in {result['time_s']:.3f} s"
    result["flaw"] = f"took {late:.2f} s longer than its deadlines allow" if late > 0.2 else None
    return result


async def fail_fast(kit: Plain, net: Net) -> Result:
    holes = [_target(net.server("blackhole").address) for _ in range(3)]
    refused = _target(net.closed_port())
    sinks = [_target(net.server("sink").address) for _ in range(2)]
    start = kit.now()
    result = await _fan_out(
        kit,
        [*holes, refused, *sinks],
        start,
        max_concurrency=4,
        timeout=FAIL_FAST_TIMEOUT,
        fail_fast=True,
    )
    result["detail"] = (
        f"raised {(result['error'] or '').split(':')[0]} after {result['time_s']:.3f} s"
    )
    result["flaw"] = (
        f"took {result['time_s']:.1f} s to fail fast: it waited for the hung connects"
        if result["time_s"] > 0.5
        else None
    )
    return result


async def cancel(kit: Plain, net: Net) -> Result:
    holes = [_target(net.server("blackhole").address) for _ in range(2)]
    slow = [net.server("slow") for _ in range(2)]
    targets = holes + [_target(s.address) for s in slow]
    start = kit.now()

    async def work() -> None:
        await kit.send_to_many(targets, bytes(4 * BIG_PAYLOAD), max_concurrency=100, timeout=5.0)

    cancelled = await kit.cancel_after(CANCEL_AFTER, work)
    read = sum(s.bytes_received for s in slow)
    elapsed = kit.now() - start
    late = elapsed - CANCEL_AFTER
    # asyncio's transport.close() sends what write() buffered before it closes, and the
    # tasks' `finally: await writer.wait_closed()` waits for it, cancelled or not.
    why = "close() sends all that write() buffered" if isinstance(kit, UnstructuredKit) else ""
    return {
        "outcome": "cancelled" if cancelled else "finished",
        "time_s": elapsed,
        "bytes_sent": None,
        "attempts": [],
        "workflows": [],
        "error": None,
        "detail": f"cancelled after {CANCEL_AFTER} s, returned after {elapsed:.3f} s "
        f"({read} B read so far)",
        "flaw": f"returned {late:.1f} s after it was cancelled: {why}" if late > 0.1 else None,
    }


async def tls(kit: Plain, net: Net) -> Result:
    server_context, client = tls_contexts()
    server = net.server("sink", tls=server_context)
    start = kit.now()
    work = kit.connect_check_send(_target(server.address), PAYLOAD, TLS_TIMEOUT, tls=client)
    result = await _one(kit, work, start)
    with kit.resolver({WRONG_NAME: [server.address]}):
        wrong_work = kit.connect_check_send((WRONG_NAME, server.port), PAYLOAD, TLS_TIMEOUT, client)
        wrong = await _one(kit, wrong_work, kit.now())
    took, first_error = result["time_s"], result["error"]
    reason = refusal_reason(wrong["error"]) if wrong["outcome"] == "error" else None
    refused = "refused" if wrong["outcome"] == "error" else wrong["outcome"]
    result.update(
        outcome=f"{result['outcome']}, {refused}",
        time_s=kit.now() - start,
        handshake_s=None,  # inside the call: only the ports time it
        tls_version=None,
        tls_cipher=None,
        refusal=reason,
        error=wrong["error"],
    )
    result["detail"] = f"handshake and send in {took:.3f} s; {WRONG_NAME} refused: {reason}"
    if result["bytes_sent"] != len(PAYLOAD):
        result["flaw"] = f"the handshake to the right name: {first_error}"
    elif wrong["outcome"] != "error":
        result["flaw"] = f"{WRONG_NAME} was not refused: {wrong['outcome']}"
    elif reason is None:
        result["flaw"] = f"the refusal does not say why: {wrong['error']}"
    else:
        result["flaw"] = None
    return result


PLAIN_BODIES: Final[dict[str, Callable[[Plain, Net], Awaitable[Result]]]] = {
    "happy-eyeballs": happy_eyeballs,
    "all-refused": all_refused,
    "deadline": deadline,
    "backpressure": backpressure,
    "reset": reset,
    "fan-out": fan_out,
    "fail-fast": fail_fast,
    "cancel": cancel,
    "tls": tls,
}
