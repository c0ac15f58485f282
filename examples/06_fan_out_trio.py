"""Fan-out over mixed targets on Trio: a nursery paced by a CapacityLimiter.

Eight targets, three at a time, half a second each at most: live sinks, an echo, a
slow reader, one port that refuses and one that is blackholed. Each failure costs only
its own slot; ``on_report`` sees the reports as they finish, the result keeps input order.
"""

from __future__ import annotations

import contextlib

import trio

from trio_sockets import SendReport, trio_port
from trio_sockets.testing import LoopbackServer, refusing_socket


def progress(report: SendReport) -> None:
    print(f"  done: {report.target} {report.status}")


async def main(targets: list[str]) -> None:
    reports = await trio_port.send_to_many(
        targets, b"hello\n", max_concurrency=3, timeout=0.5, on_report=progress
    )
    for report in reports:
        print(f"{report.target}: {report.status} ({report.total_s:.3f} s)")
    print(f"{sum(r.ok for r in reports)} of {len(reports)} ok")


if __name__ == "__main__":
    with contextlib.ExitStack() as stack, refusing_socket() as refusing:
        servers = [
            stack.enter_context(LoopbackServer(mode))
            for mode in ("blackhole", "sink", "sink", "echo", "slow", "sink", "sink")
        ]
        targets = [s.target for s in servers]
        targets.insert(3, f"127.0.0.1:{refusing.getsockname()[1]}")
        trio.run(main, targets)
