"""Trio only: ``stream_to_many`` over the fake network, at scale and in exact virtual time.

A generator of 100,000 targets runs in memory bounded by ``max_concurrency``, every
report carrying its index; a consumer that dawdles holds the workflows back, and
leaving the block cancels what runs, at once.
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing

import trio_sockets
from trio_sockets.testing import FakeNetwork, FakeSocket, PeerScript
from trio_sockets.trio_port import _ReportStream

pytestmark = pytest.mark.timeout(30)

PORT = 80


# --------------------------------------------------------------------------------------
# stream_to_many over the fake network: scale, laziness, exact times
# --------------------------------------------------------------------------------------


class _OpenSocketsOnly(FakeNetwork):
    """A fake network that forgets each socket soon after it is closed.

    :class:`FakeNetwork` records every socket it makes, which is what most tests want
    and what a test of memory at scale cannot afford. This one drops the closed ones
    every 64 sockets, and counts them all.
    """

    def __init__(self) -> None:
        super().__init__()
        self.made = 0
        self.peak_open = 0  # sampled every 64 sockets

    def socket(self, *args: Any, **kwargs: Any) -> FakeSocket:
        sock = super().socket(*args, **kwargs)
        self.made += 1
        if self.made % 64 == 0:
            self.sockets = self.open_sockets()
            self.peak_open = max(self.peak_open, len(self.sockets))
        return sock


@pytest.mark.timeout(120)  # about 10 s on an idle machine; CI machines are shared
async def test_stream_to_many_of_100_000_targets_from_a_generator_in_bounded_memory(
    autojump_clock: trio.testing.MockClock,
) -> None:
    count, limit = 100_000, 50
    window = count - 5_000  # tracemalloc slows everything fivefold: trace the end only

    def targets() -> Iterator[str]:
        for n in range(count):
            # Every 7th refuses (unscripted), the rest connect and take the payload.
            yield f"192.0.2.{n % 7}:80" if n % 7 == 0 else f"198.51.100.{n % 250}:80"

    with _OpenSocketsOnly() as net:
        for n in range(250):
            net.script((f"198.51.100.{n}", PORT), reply=b"")
        seen = bytearray(count)  # one byte per index: how often its report came
        blocks: list[int] = []  # the interpreter's allocated blocks, now and then
        taken = 0
        try:
            async with trio_sockets.stream_to_many(
                targets(), b"x", max_concurrency=limit
            ) as reports:
                async for report in reports:
                    assert report.index is not None
                    seen[report.index] += 1
                    expected = "error" if report.index % 7 == 0 else "ok"
                    assert report.status == expected, report
                    taken += 1
                    if taken % 5_000 == 0:
                        blocks.append(sys.getallocatedblocks())
                    if taken == window:
                        tracemalloc.start()
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert seen == bytearray([1]) * count  # every index once, none twice
        assert net.made == count and net.open_sockets() == []
        assert net.peak_open <= limit
    # Bounded by the limit, not by the count. Keeping each report (about 0.85 KiB) or
    # even one object per target would show: 4 MiB over the traced 5,000, and 90,000
    # blocks between the 10,000th report and the last.
    assert peak < 1024 * 1024, (current, peak)
    assert max(blocks[1:]) - blocks[1] < 20_000, blocks


async def test_stream_to_many_slow_consumer_and_early_exit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    read = 0

    def targets() -> Iterator[str]:
        nonlocal read
        for n in range(1000):
            read += 1
            yield f"192.0.2.{n % 200}:80"

    with FakeNetwork() as net:
        net.default = PeerScript(delay=0.5)
        async with trio_sockets.stream_to_many(targets(), b"x", max_concurrency=3) as reports:
            first = await reports.__anext__()
            assert trio.current_time() == 0.5 and first.ok
            await trio.sleep(100)  # the consumer dawdles: the workflows wait for it
            assert read == 1 + 3 + trio_sockets.trio_port._REPORT_BUFFER + 1
            second = await reports.__anext__()
            assert second.ok and second.total_s == 0.5  # it ended long ago, and waited
            blocked_at = trio.current_time()
        # Leaving the block cancelled the workflows then running, at once.
        assert trio.current_time() == blocked_at
        assert net.open_sockets() == []


async def test_reports_already_buffered_are_taken_without_a_schedule_point() -> None:
    # A schedule point per report kept the run loop from ever sleeping in epoll_wait
    # while reports came in: one loop turn per report, and 15 % more CPU per TLS
    # workflow. A task that becomes runnable meanwhile must not run before the
    # buffered reports are taken; a cancellation still raises.
    send, receive = trio.open_memory_channel[Any](3)
    for number in range(3):
        send.send_nowait(number)
    stream = _ReportStream(receive, {})
    other_ran = False

    async def other() -> None:
        nonlocal other_ran
        other_ran = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        taken = [await stream.__anext__() for _ in range(3)]
        assert not other_ran
    assert [int(str(number)) for number in taken] == [0, 1, 2] and other_ran
    send.send_nowait(3)
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await stream.__anext__()
    send.close()
    assert str(await stream.__anext__()) == "3"
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
