"""Fail-fast on asyncio: the first failure cancels the fan-out's TaskGroup.

Three blackholed targets hang in connect; the fourth refuses at once. With
``fail_fast=True`` that refusal cancels the hung attempts and the targets not yet
started. asyncio has no cancel scope: the port's own cancels the task that runs the
group and uncancels it after, so that a cancellation from outside is not swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib

from trio_sockets import asyncio_port
from trio_sockets.testing import LoopbackServer, refusing_socket


async def main(targets: list[str]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    reports = await asyncio_port.send_to_many(
        targets, b"hello\n", max_concurrency=4, timeout=5.0, fail_fast=True
    )
    for report in reports:
        print(f"{report.target}: {report.status}")
    print(f"stopped after {loop.time() - start:.3f} s, not 5 s")


if __name__ == "__main__":
    with contextlib.ExitStack() as stack, refusing_socket() as refusing:
        holes = [stack.enter_context(LoopbackServer("blackhole")).target for _ in range(3)]
        sinks = [stack.enter_context(LoopbackServer("sink")).target for _ in range(2)]
        asyncio.run(main([*holes, f"127.0.0.1:{refusing.getsockname()[1]}", *sinks]))
