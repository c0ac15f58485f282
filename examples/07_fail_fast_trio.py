"""Fail-fast on Trio: the first failure cancels one CancelScope around the nursery.

Three blackholed targets hang in connect; the fourth refuses at once. With
``fail_fast=True`` that refusal cancels the hung attempts and the targets not yet
started; every report still comes back, the cancelled ones saying so.
"""

from __future__ import annotations

import contextlib

import trio

from trio_sockets import trio_port
from trio_sockets.testing import LoopbackServer, refusing_socket


async def main(targets: list[str]) -> None:
    start = trio.current_time()
    reports = await trio_port.send_to_many(
        targets, b"hello\n", max_concurrency=4, timeout=5.0, fail_fast=True
    )
    for report in reports:
        print(f"{report.target}: {report.status}")
    print(f"stopped after {trio.current_time() - start:.3f} s, not 5 s")


if __name__ == "__main__":
    with contextlib.ExitStack() as stack, refusing_socket() as refusing:
        holes = [stack.enter_context(LoopbackServer("blackhole")).target for _ in range(3)]
        sinks = [stack.enter_context(LoopbackServer("sink")).target for _ in range(2)]
        trio.run(main, [*holes, f"127.0.0.1:{refusing.getsockname()[1]}", *sinks])
