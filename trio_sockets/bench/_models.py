"""The models ``trio-sockets bench`` measures, and the child process that runs one.

Each model runs one scenario of the connect-check-send workflow against a sink and
returns the bytes it sent. The two ports are used the way their users use them
(``connect_check_send`` one at a time, ``send_to_many`` for many); the baselines are
written the idiomatic way for their framework, with nothing of ours in them.

A measurement is one (scenario, model) pair in a fresh process, so that no model inherits
another's warmed-up allocator, cached imports or leftover sockets::

    python -m trio_sockets.bench._models SCENARIO MODEL HOST PORT [options]

prints one JSON line: the seconds spent in the work itself (timed inside the event loop,
so interpreter and loop start-up are left out), the bytes sent and the peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import resource
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final, TypeAlias

import trio

from .. import asyncio_port, trio_port
from .._checks import DEFAULT_TIMEOUT
from ._peers import aiohappyeyeballs_one, anyio_one, asyncio_ssl_one, trio_ssl_one
from ._workload import SCENARIO_MODELS, SCENARIOS, Address, Measurement, Workload, runs_in

__all__ = [
    "MODELS",
    "SCENARIOS",
    "SCENARIO_MODELS",
    "Measurement",
    "Workload",
    "main",
    "measure",
    "runs_in",
]

# Scenarios of many targets, which the ports run with their fan-out.
MANY: Final = ("concurrent", "fan-out", "cost", "tls")


def _sum_reports(work: Workload, reports: Sequence[trio_port.SendReport]) -> int:
    if not work.tolerant:
        failed = [r.error for r in reports if not r.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} workflows failed, first: {failed[0]}")
    return sum(r.bytes_sent for r in reports)


async def _sum_stream(work: Workload, reports: AsyncIterator[trio_port.SendReport]) -> int:
    """Sum the bytes of a stream of reports, keeping none of them (scale)."""
    sent = failed = 0
    first = ""
    async for report in reports:
        sent += report.bytes_sent
        if not report.ok:
            failed += 1
            first = first or f"{report.target}: {report.error}"
    if failed:
        raise RuntimeError(f"{failed} workflows failed, first: {first}")
    return sent


def _deadline(work: Workload) -> float | None:
    """The baselines' deadline per target: fan-out's own; in cost, the ports' default."""
    if work.scenario == "cost":
        return DEFAULT_TIMEOUT
    return work.deadline if work.tolerant else None


def _tls(work: Workload) -> ssl.SSLContext | bool:
    """tls: a client context that trusts the sink's CA, and verifies as ``tls=True`` does."""
    return ssl.create_default_context(cafile=work.cafile) if work.scenario == "tls" else False


def _port_timeout(work: Workload) -> float | None:
    # The ports' own default deadline (their users get it without asking), except for
    # bulk, which must not be cut short on a slow machine; fan-out has its own.
    if work.scenario == "bulk":
        return None
    return work.deadline if work.tolerant else DEFAULT_TIMEOUT


# --------------------------------------------------------------------------------------
# Trio: trio_port, trio streams, raw trio.socket
# --------------------------------------------------------------------------------------


async def trio_sockets_trio(work: Workload, data: bytes) -> int:
    """``trio_sockets`` on Trio, as its users call it."""
    if work.scenario == "scale":
        many = trio_port.stream_to_many(work.iter_targets(), data, max_concurrency=work.concurrency)
        async with many as stream:
            return await _sum_stream(work, stream)
    if work.scenario in MANY:
        reports = await trio_port.send_to_many(
            work.targets,
            data,
            max_concurrency=work.concurrency,
            timeout=_port_timeout(work),
            tls=_tls(work),
        )
        return _sum_reports(work, reports)
    sent = 0
    for target in work.targets:
        report = await trio_port.connect_check_send(target, data, timeout=_port_timeout(work))
        sent += _sum_reports(work, [report])
    return sent


async def _trio_stream_one(target: Address, data: bytes) -> int:
    stream = await trio.open_tcp_stream(*target)
    async with stream:
        await stream.send_all(data)
    return len(data)


async def _trio_socket_one(target: Address, data: bytes) -> int:
    family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    with trio.socket.socket(family) as sock:
        await sock.connect(target)
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                sent += await sock.send(view[sent:])
    return sent


async def _trio_driver(
    work: Workload, data: bytes, one: Callable[[Address, bytes], Awaitable[int]]
) -> int:
    """Run ``one`` per target: in a row, or in a nursery under a ``CapacityLimiter``.

    Fan-out and cost give each target a deadline (a timeout in cost leaves the byte
    count short, and the run fails); fan-out tolerates failures.
    """
    sent = 0
    deadline = _deadline(work)

    async def guarded(target: Address) -> None:
        nonlocal sent
        n = 0
        if deadline is None:  # no deadline, no cancel scope: the leanest idiomatic code
            n = await one(target, data)
        elif work.tolerant:
            with trio.move_on_after(deadline), contextlib.suppress(OSError):
                n = await one(target, data)
        else:
            with trio.move_on_after(deadline):
                n = await one(target, data)
        sent += n  # not `sent += await ...`: that reads `sent` before the await

    if work.scenario in ("sequential", "bulk"):
        for target in work.targets:
            await guarded(target)
        return sent
    limiter = trio.CapacityLimiter(work.concurrency)

    async def limited(target: Address) -> None:
        async with limiter:
            await guarded(target)

    async with trio.open_nursery() as nursery:
        for target in work.targets:
            nursery.start_soon(limited, target)
    return sent


async def trio_streams(work: Workload, data: bytes) -> int:
    """``trio.open_tcp_stream`` + ``send_all`` (tls: ``trio.open_ssl_over_tcp_stream``)."""
    context = _tls(work)
    if isinstance(context, ssl.SSLContext):
        return await _trio_driver(work, data, trio_ssl_one(context))
    return await _trio_driver(work, data, _trio_stream_one)


async def trio_socket_raw(work: Workload, data: bytes) -> int:
    """Raw ``trio.socket``: ``connect`` + ``send`` in a loop."""
    return await _trio_driver(work, data, _trio_socket_one)


# --------------------------------------------------------------------------------------
# asyncio: asyncio_port, asyncio streams, raw loop.sock_*
# --------------------------------------------------------------------------------------


async def trio_sockets_asyncio(work: Workload, data: bytes) -> int:
    """``trio_sockets.asyncio_port``, as its users call it (any event loop)."""
    if work.scenario == "scale":
        many = asyncio_port.stream_to_many(
            work.iter_targets(), data, max_concurrency=work.concurrency
        )
        async with many as stream:
            return await _sum_stream(work, stream)
    if work.scenario in MANY:
        reports = await asyncio_port.send_to_many(
            work.targets,
            data,
            max_concurrency=work.concurrency,
            timeout=_port_timeout(work),
            tls=_tls(work),
        )
        return _sum_reports(work, reports)
    sent = 0
    for target in work.targets:
        report = await asyncio_port.connect_check_send(target, data, timeout=_port_timeout(work))
        sent += _sum_reports(work, [report])
    return sent


async def _asyncio_stream_one(target: Address, data: bytes) -> int:
    _, writer = await asyncio.open_connection(*target)
    try:
        writer.write(data)
        await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()  # after the transport flushed what drain() left
    return len(data)


async def _asyncio_raw_one(target: Address, data: bytes) -> int:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, target)
        await loop.sock_sendall(sock, data)
    return len(data)


async def _asyncio_driver(
    work: Workload,
    data: bytes,
    one: Callable[[Address, bytes], Awaitable[int]],
    deadline: float | None = None,
) -> int:
    """Run ``one`` per target: in a row, or in a ``TaskGroup`` under a ``Semaphore``.

    Fan-out gives each target its deadline and tolerates failures; elsewhere, a
    ``deadline`` (cost's, or the one given) wraps each target in an ``asyncio.timeout``
    and nothing more.
    """
    sent = 0
    if deadline is None:
        deadline = _deadline(work)

    async def guarded(target: Address) -> None:
        nonlocal sent
        if work.tolerant:
            n = 0
            try:
                async with asyncio.timeout(work.deadline):
                    n = await one(target, data)
            except (OSError, TimeoutError):  # TimeoutError is an OSError; said for the reader
                pass
        elif deadline is not None:
            async with asyncio.timeout(deadline):
                n = await one(target, data)
        else:  # no deadline, no timeout: the leanest idiomatic code
            n = await one(target, data)
        sent += n  # not `sent += await ...`: that reads `sent` before the await

    if work.scenario in ("sequential", "bulk"):
        for target in work.targets:
            await guarded(target)
        return sent
    semaphore = asyncio.Semaphore(work.concurrency)

    async def limited(target: Address) -> None:
        async with semaphore:
            await guarded(target)

    async with asyncio.TaskGroup() as tg:
        for target in work.targets:
            tg.create_task(limited(target))
    return sent


async def asyncio_streams(work: Workload, data: bytes) -> int:
    """``asyncio.open_connection`` + ``write`` + ``drain`` (tls: with ``ssl=``)."""
    context = _tls(work)
    if isinstance(context, ssl.SSLContext):
        return await _asyncio_driver(work, data, asyncio_ssl_one(context))
    return await _asyncio_driver(work, data, _asyncio_stream_one)


async def asyncio_raw(work: Workload, data: bytes) -> int:
    """Raw asyncio: ``loop.sock_connect`` + ``loop.sock_sendall``."""
    return await _asyncio_driver(work, data, _asyncio_raw_one)


async def asyncio_raw_deadline(work: Workload, data: bytes) -> int:
    """Raw asyncio with the ports' deadline: one ``asyncio.timeout`` per connection.

    Not an idiom of its own: it measures what that one ``asyncio.timeout`` costs, which
    ``asyncio_port`` pays on every target (its per-target ``timeout``).
    """
    return await _asyncio_driver(work, data, _asyncio_raw_one, _port_timeout(work))


async def anyio_streams(work: Workload, data: bytes) -> int:
    """``anyio.connect_tcp`` + ``send`` (on asyncio), driven as the asyncio baselines are."""
    return await _asyncio_driver(work, data, anyio_one)


async def aiohappyeyeballs_raw(work: Workload, data: bytes) -> int:
    """``aiohappyeyeballs.start_connection`` + ``loop.sock_sendall``: raw code, one address."""
    return await _asyncio_driver(work, data, aiohappyeyeballs_one)


# --------------------------------------------------------------------------------------
# Blocking sockets: one at a time, or a thread pool for many
# --------------------------------------------------------------------------------------


def _blocking_one(target: Address, data: bytes, deadline: float | None, tolerant: bool) -> int:
    try:
        # A blocking socket's timeout is per operation; a connect to a blackhole is the
        # one that waits, so this is the per-target deadline in all but name.
        with socket.create_connection(target, timeout=deadline) as sock:
            sock.sendall(data)
    except OSError:
        if not tolerant:
            raise
        return 0
    return len(data)


def blocking(work: Workload, data: bytes) -> int:
    """Blocking ``socket.create_connection`` + ``sendall``; a thread pool for many."""
    deadline = _deadline(work)
    targets = work.targets
    if work.scenario in ("sequential", "bulk"):
        return sum(_blocking_one(t, data, deadline, work.tolerant) for t in targets)
    with concurrent.futures.ThreadPoolExecutor(max_workers=work.concurrency) as pool:
        sent = pool.map(
            _blocking_one,
            targets,
            [data] * len(targets),
            [deadline] * len(targets),
            [work.tolerant] * len(targets),
        )
        return sum(sent)


# --------------------------------------------------------------------------------------
# The models, and how each is run and timed
# --------------------------------------------------------------------------------------

AsyncModel: TypeAlias = Callable[[Workload, bytes], Awaitable[int]]


# (wall seconds, CPU seconds of this process, bytes sent). The CPU time is less
# disturbed by the neighbours of a shared machine than the wall time is.
Timed: TypeAlias = tuple[float, float, int]


async def _timed(model: AsyncModel, work: Workload, data: bytes) -> Timed:
    start, cpu = time.perf_counter(), time.process_time()
    sent = await model(work, data)
    return time.perf_counter() - start, time.process_time() - cpu, sent


def _on_trio(model: AsyncModel) -> Callable[[Workload, bytes], Timed]:
    return lambda work, data: trio.run(_timed, model, work, data)


def _on_asyncio(model: AsyncModel) -> Callable[[Workload, bytes], Timed]:
    return lambda work, data: asyncio.run(_timed(model, work, data))


def _on_uvloop(model: AsyncModel) -> Callable[[Workload, bytes], Timed]:
    def run(work: Workload, data: bytes) -> Timed:
        import uvloop

        result: Timed = uvloop.run(_timed(model, work, data))
        return result

    return run


def _on_threads(
    model: Callable[[Workload, bytes], int],
) -> Callable[[Workload, bytes], Timed]:
    def run(work: Workload, data: bytes) -> Timed:
        start, cpu = time.perf_counter(), time.process_time()
        sent = model(work, data)
        return time.perf_counter() - start, time.process_time() - cpu, sent

    return run


MODELS: Final[dict[str, Callable[[Workload, bytes], Timed]]] = {
    "trio_port": _on_trio(trio_sockets_trio),
    "asyncio_port": _on_asyncio(trio_sockets_asyncio),
    "asyncio_port+uvloop": _on_uvloop(trio_sockets_asyncio),
    "trio-streams": _on_trio(trio_streams),
    "trio.socket": _on_trio(trio_socket_raw),
    "asyncio-streams": _on_asyncio(asyncio_streams),
    "asyncio-raw": _on_asyncio(asyncio_raw),
    "asyncio-raw+deadline": _on_asyncio(asyncio_raw_deadline),
    "asyncio-raw+uvloop": _on_uvloop(asyncio_raw),
    "blocking": _on_threads(blocking),
    "anyio": _on_asyncio(anyio_streams),
    "aiohappyeyeballs": _on_asyncio(aiohappyeyeballs_raw),
}


def measure(work: Workload, model: str) -> Measurement:
    """Run ``model`` on ``work`` in this process and measure it."""
    data = work.data  # built before the clock starts: a bulk payload is hundreds of MiB
    elapsed, cpu, sent = MODELS[model](work, data)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return Measurement(work.scenario, model, elapsed, sent, rss, cpu)


def child_command(work: Workload, model: str) -> list[str]:
    """The command line that measures ``model`` on ``work`` in a fresh interpreter."""
    return [
        sys.executable, "-m", "trio_sockets.bench._models",
        work.scenario, model, work.host, str(work.port),
        f"--connections={work.connections}", f"--concurrency={work.concurrency}",
        f"--payload-bytes={work.payload_bytes}", f"--bulk-bytes={work.bulk_bytes}",
        f"--refused-port={work.refused_port}", f"--blackhole-port={work.blackhole_port}",
        f"--deadline={work.deadline!r}",
        f"--more-ports={','.join(map(str, work.more_ports))}", f"--cafile={work.cafile}",
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trio_sockets.bench._models",
        description="Measure one (scenario, model) pair; prints one JSON line.",
    )
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("model", choices=list(MODELS))
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    for name in ("connections", "concurrency", "payload-bytes", "bulk-bytes"):
        parser.add_argument(f"--{name}", type=int, default=1)
    parser.add_argument("--refused-port", type=int, default=0)
    parser.add_argument("--blackhole-port", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=1.0)
    parser.add_argument("--more-ports", default="")
    parser.add_argument("--cafile", default="")
    args = parser.parse_args(argv)
    work = Workload(
        scenario=args.scenario,
        host=args.host,
        port=args.port,
        connections=args.connections,
        concurrency=args.concurrency,
        payload_bytes=args.payload_bytes,
        bulk_bytes=args.bulk_bytes,
        refused_port=args.refused_port,
        blackhole_port=args.blackhole_port,
        deadline=args.deadline,
        more_ports=tuple(int(p) for p in args.more_ports.split(",") if p),
        cafile=args.cafile,
    )
    result = measure(work, args.model)
    print(json.dumps(dataclasses.asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
