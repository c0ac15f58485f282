"""trio_sockets.send_to_many against trio streams and raw trio.socket, on loopback.

Runs 3000 connections of 1 KiB at concurrency 200 per model, the models interleaved in
rounds, against a sink in its own process; prints the median time per connection and the
ratio of each model to trio_sockets. Usage: python benchmarks/trio_vs_streams.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import trio

import trio_sockets

CONNECTIONS = 3000
CONCURRENCY = 200
PAYLOAD = b"x" * 1024


async def run_trio_sockets(host: str, port: int) -> None:
    reports = await trio_sockets.send_to_many(
        [(host, port)] * CONNECTIONS, PAYLOAD, max_concurrency=CONCURRENCY
    )
    assert all(r.ok for r in reports), [r.error for r in reports if not r.ok][:3]


async def run_streams(host: str, port: int) -> None:
    limiter = trio.CapacityLimiter(CONCURRENCY)

    async def one() -> None:
        async with limiter:
            stream = await trio.open_tcp_stream(host, port)
            await stream.send_all(PAYLOAD)
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        for _ in range(CONNECTIONS):
            nursery.start_soon(one)


async def run_raw(host: str, port: int) -> None:
    limiter = trio.CapacityLimiter(CONCURRENCY)

    async def one() -> None:
        async with limiter:
            sock = trio.socket.socket()
            try:
                await sock.connect((host, port))
                await sock.send(PAYLOAD)
            finally:
                sock.close()

    async with trio.open_nursery() as nursery:
        for _ in range(CONNECTIONS):
            nursery.start_soon(one)


MODELS: dict[str, Callable[[str, int], Awaitable[None]]] = {
    "trio_sockets.trio": run_trio_sockets,
    "trio streams": run_streams,
    "raw trio.socket": run_raw,
}

SINK = """
import sys
from trio_sockets.servers import LoopbackServer
server = LoopbackServer("sink").start()
print(server.port, flush=True)
sys.stdin.read()
print(server.bytes_received, flush=True)
server.close()
"""


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None and sink.stdin is not None
    port = int(sink.stdout.readline())
    times: dict[str, list[float]] = {name: [] for name in MODELS}
    for _ in range(rounds):
        for name, model in MODELS.items():
            start = time.perf_counter()
            trio.run(model, "127.0.0.1", port)
            times[name].append(time.perf_counter() - start)
    sink.stdin.close()
    received = int(sink.stdout.readline())
    sink.wait()
    expected = rounds * len(MODELS) * CONNECTIONS * len(PAYLOAD)
    print(f"sink received {received} of {expected} bytes")
    base = statistics.median(times["trio_sockets.trio"])
    for name, samples in times.items():
        median, low, high = (
            x * 1e6 / CONNECTIONS for x in (statistics.median(samples), min(samples), max(samples))
        )
        print(
            f"{name:20} median {median:7.1f} us/conn (min {low:.1f}, max {high:.1f})"
            f"  {median * CONNECTIONS / 1e6 / base:.2f}x trio_sockets"
        )


if __name__ == "__main__":
    main()
