"""trio_sockets.asyncio_port.send_to_many against raw asyncio, on loopback.

Runs 3000 connections of 1 KiB at concurrency 200 per model, the models interleaved in
rounds, against a selectors-based accept-and-discard sink in its own process (its byte
count is checked at the end); prints the median time per connection and the ratio of
asyncio_port to raw asyncio (``loop.sock_connect`` + ``loop.sock_sendall`` in a
``TaskGroup`` with a ``Semaphore``).

Usage: python benchmarks/asyncio_vs_raw.py [--rounds N] [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from trio_sockets import asyncio_port

CONNECTIONS = 3000
CONCURRENCY = 200
PAYLOAD = b"x" * 1024

Model = Callable[[str, int], Coroutine[Any, Any, None]]


async def run_asyncio_port(host: str, port: int) -> None:
    reports = await asyncio_port.send_to_many(
        [(host, port)] * CONNECTIONS, PAYLOAD, max_concurrency=CONCURRENCY
    )
    assert all(r.ok for r in reports), [r.error for r in reports if not r.ok][:3]


async def run_asyncio_port_no_timeout(host: str, port: int) -> None:
    reports = await asyncio_port.send_to_many(
        [(host, port)] * CONNECTIONS, PAYLOAD, max_concurrency=CONCURRENCY, timeout=None
    )
    assert all(r.ok for r in reports), [r.error for r in reports if not r.ok][:3]


async def run_raw(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with semaphore:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, (host, port))
                await loop.sock_sendall(sock, PAYLOAD)
            finally:
                sock.close()

    async with asyncio.TaskGroup() as tg:
        for _ in range(CONNECTIONS):
            tg.create_task(one())


MODELS: dict[str, Model] = {
    "raw asyncio": run_raw,
    "asyncio_port": run_asyncio_port,
    "asyncio_port timeout=None": run_asyncio_port_no_timeout,
}

# Accept everything, read and discard, count the bytes; print the count when stdin closes.
SINK = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(4096)
srv.setblocking(False)
sel.register(srv, selectors.EVENT_READ, "accept")
sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
print(srv.getsockname()[1], flush=True)
total = 0
while True:
    for key, _ in sel.select():
        if key.data == "accept":
            while True:
                try:
                    conn, _ = srv.accept()
                except BlockingIOError:
                    break
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, "conn")
        elif key.data == "conn":
            try:
                data = key.fileobj.recv(65536)
            except ConnectionError:
                data = b""
            total += len(data)
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
        else:
            sys.stdin.read()
            print(total, flush=True)
            sys.exit()
"""


def _runner(loop_name: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    if loop_name == "uvloop":
        import uvloop

        return lambda coro: uvloop.run(coro)
    return asyncio.run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    run = _runner(args.loop)
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None and sink.stdin is not None
    port = int(sink.stdout.readline())
    times: dict[str, list[float]] = {name: [] for name in MODELS}
    for _ in range(args.rounds):
        for name, model in MODELS.items():
            start = time.perf_counter()
            run(model("127.0.0.1", port))
            times[name].append(time.perf_counter() - start)
    sink.stdin.close()
    received = int(sink.stdout.readline())
    sink.wait()
    expected = args.rounds * len(MODELS) * CONNECTIONS * len(PAYLOAD)
    print(f"loop {args.loop}: sink received {received} of {expected} bytes")
    assert received == expected, "the sink did not receive every byte"
    base = statistics.median(times["raw asyncio"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"{name:26} median {median * 1e6 / CONNECTIONS:6.1f} us/conn "
            f"(min {min(samples) * 1e6 / CONNECTIONS:6.1f}, "
            f"max {max(samples) * 1e6 / CONNECTIONS:6.1f})  {median / base:.3f}x raw"
        )


if __name__ == "__main__":
    main()
