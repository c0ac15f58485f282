"""Spec: ``stream_to_many``, run on every port.

Reports as they complete, each with its ``index``; targets read lazily from any
iterable or async iterable; a consumer that stops reading holds the workflows back;
leaving the block early cancels and closes everything; a bad target met mid-stream is
its own error report; cancellation from outside, and errors from the consumer or from
the caller's own iterator, come out bare.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from conftest import Port, refusing_port

from trio_sockets.testing import LoopbackServer

PAYLOAD = b"stream\n" * 8
SLACK = 0.75  # seconds: how late a loaded CI machine may be


@pytest.fixture
def refused() -> Iterator[str]:
    with refusing_port() as number:
        yield f"127.0.0.1:{number}"


class Counted:
    """A lazy iterable of targets that counts how far it has been read."""

    def __init__(self, targets: list[Any]) -> None:
        self.targets = targets
        self.read = 0

    def __iter__(self) -> Iterator[Any]:
        for target in self.targets:
            self.read += 1
            yield target


@pytest.mark.timeout(10)
def test_reports_come_as_they_complete_each_with_its_index(port: Port, refused: str) -> None:
    with LoopbackServer("sink") as sink:
        kinds = [(sink.target, "ok"), (refused, "error")]
        targets = Counted([kinds[i % 2][0] for i in range(300)])

        async def main() -> list[Any]:
            async with port.module.stream_to_many(targets, PAYLOAD, max_concurrency=7) as reports:
                return [report async for report in reports]

        reports = port.run(main)
        assert sink.wait_bytes(150 * len(PAYLOAD))
    assert sorted(r.index for r in reports) == list(range(300))
    for report in reports:
        assert report.status == kinds[report.index % 2][1]
        assert report.target == port.module.Target.parse(targets.targets[report.index])
        assert report.to_dict()["index"] == report.index


@pytest.mark.timeout(10)
def test_targets_are_read_lazily_as_slots_free_up(port: Port) -> None:
    limit = 5
    with LoopbackServer("sink") as sink:
        targets = Counted([sink.target] * 200)
        gaps: list[int] = []

        async def main() -> int:
            taken = 0
            async with port.module.stream_to_many(
                targets, PAYLOAD, max_concurrency=limit
            ) as reports:
                async for _ in reports:
                    taken += 1
                    gaps.append(targets.read - taken)
            return taken

        assert port.run(main) == 200
    # Never more read ahead than the workflows running, the buffered reports, and the
    # one target waiting for a slot.
    assert max(gaps) <= limit + port.module._REPORT_BUFFER + 1


@pytest.mark.timeout(10)
def test_a_consumer_that_stops_reading_holds_the_workflows_back(port: Port) -> None:
    limit = 4
    bound = limit + port.module._REPORT_BUFFER + 1  # running + buffered + one waiting
    with LoopbackServer("sink") as sink:
        targets = Counted([sink.target] * 100)
        stalled = port.Event()

        class Watched(Counted):
            def __iter__(self) -> Iterator[Any]:
                for target in super().__iter__():
                    if self.read == bound + 1:  # the one taken freed one slot
                        stalled.set()
                    yield target

        targets = Watched(targets.targets)

        async def main() -> list[int]:
            async with port.module.stream_to_many(
                targets, PAYLOAD, max_concurrency=limit
            ) as reports:
                first = await reports.__anext__()
                await stalled.wait()
                # The fan-out is now full: give it time to overrun, if it would.
                await port.sleep(0.2)
                read_while_stalled = targets.read
                rest = [r async for r in reports]
            return [first.index, read_while_stalled, len(rest)]

        first, read_while_stalled, rest = port.run(main)
        assert sink.wait_bytes(100 * len(PAYLOAD))
        connections = sink.connections
    assert read_while_stalled == bound + 1
    assert rest == 99 and targets.read == 100
    assert connections == 100 and first is not None


@pytest.mark.timeout(10)
def test_leaving_the_block_early_cancels_and_closes_everything(port: Port) -> None:
    with LoopbackServer("sink") as sink, LoopbackServer("blackhole") as hole:
        targets = Counted([sink.target] + [hole.target] * 30 + [sink.target] * 100)

        async def main() -> Any:
            async with port.module.stream_to_many(
                targets, PAYLOAD, max_concurrency=40, timeout=10
            ) as reports:
                async for report in reports:  # noqa: B007  # (kept after the loop)
                    break
            return report

        started = time.perf_counter()
        first = port.run(main)
        elapsed = time.perf_counter() - started
    assert first.ok and first.index in {0, *range(31, 131)}
    assert elapsed < SLACK  # the 30 blackholed workflows did not run to their timeout
    assert targets.read <= 40 + port.module._REPORT_BUFFER + 2
    # (port.run checks that no socket was left open, and asyncio that no task was.)


@pytest.mark.timeout(10)
def test_a_bad_target_mid_stream_is_its_own_error_report(port: Port) -> None:
    with LoopbackServer("sink") as sink:
        targets = [sink.target, "no-port", ("127.0.0.1", 0), 5, "bad host:80", sink.target]

        async def main() -> list[Any]:
            async with port.module.stream_to_many(iter(targets), PAYLOAD) as reports:
                return sorted([r async for r in reports], key=lambda r: r.index)

        reports = port.run(main)
    assert [r.status for r in reports] == ["ok", "error", "error", "error", "error", "ok"]
    assert [r.index for r in reports] == list(range(6))
    assert reports[1].target == "no-port"
    assert reports[2].target == "('127.0.0.1', 0)"
    assert reports[3].target == "5"
    for report in reports[1:5]:
        assert report.error.startswith("TargetError: ")
        assert report.attempts == () and report.bytes_sent == 0
        assert report.to_dict()["target"] == report.target
    assert "'no-port'" in reports[1].error and "'bad host:80'" in reports[4].error


@pytest.mark.timeout(10)
def test_an_async_iterable_of_targets(port: Port, refused: str) -> None:
    with LoopbackServer("sink") as sink:
        targets = [sink.target, refused] * 10

        async def produce() -> AsyncIterator[str]:
            for target in targets:
                await port.sleep(0)
                yield target

        async def main() -> list[Any]:
            async with port.module.stream_to_many(produce(), PAYLOAD, max_concurrency=3) as reports:
                return sorted([r async for r in reports], key=lambda r: r.index)

        reports = port.run(main)
    assert [r.index for r in reports] == list(range(20))
    assert [r.status for r in reports] == ["ok", "error"] * 10


@pytest.mark.timeout(10)
def test_no_targets_no_reports(port: Port) -> None:
    async def main() -> list[Any]:
        async with port.module.stream_to_many(iter(()), PAYLOAD) as reports:
            return [r async for r in reports]

    assert port.run(main) == []


@pytest.mark.timeout(10)
def test_cancelled_from_outside_promptly_and_bare(port: Port) -> None:
    with LoopbackServer("blackhole") as hole, LoopbackServer("slow") as slow:
        targets = [hole.target, slow.target] * 20
        seen: list[Any] = []

        async def consume() -> None:
            async with port.module.stream_to_many(
                targets, bytes(8 << 20), max_concurrency=30
            ) as reports:
                async for report in reports:
                    seen.append(report)

        async def main() -> None:
            outcome = await port.run_and_cancel(
                consume, lambda: port.to_thread(slow.wait_bytes, 65536, 2.0)
            )
            assert outcome.cancelled
            assert type(outcome.error) is port.Cancelled
            assert outcome.exit_s is not None and outcome.exit_s < 0.5

        port.run(main)
    assert seen == []


@pytest.mark.timeout(10)
def test_an_error_in_the_block_cancels_the_rest_and_comes_out_bare(port: Port) -> None:
    with LoopbackServer("sink") as sink, LoopbackServer("blackhole") as hole:
        targets = [sink.target] + [hole.target] * 10

        async def main() -> None:
            started = 0.0
            with pytest.raises(LookupError, match="consumer") as info:
                async with port.module.stream_to_many(targets, PAYLOAD, timeout=10) as reports:
                    async for _ in reports:
                        started = time.perf_counter()
                        raise LookupError("consumer")
            assert type(info.value) is LookupError
            assert time.perf_counter() - started < SLACK

        port.run(main)


@pytest.mark.timeout(10)
def test_an_error_from_the_targets_iterator_comes_out_bare(port: Port) -> None:
    with LoopbackServer("sink") as sink, LoopbackServer("blackhole") as hole:

        def targets() -> Iterator[str]:
            yield sink.target
            yield hole.target
            raise LookupError("the caller's own iterator")

        async def main() -> None:
            with pytest.raises(LookupError, match="own iterator") as info:
                async with port.module.stream_to_many(targets(), PAYLOAD, timeout=10) as reports:
                    async for _ in reports:
                        pass
            assert type(info.value) is LookupError

        port.run(main)


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    ("bad", "error", "named"),
    [
        ({"targets": 5}, TypeError, "5"),
        ({"targets": None}, TypeError, "None"),
        ({"targets": "127.0.0.1:80"}, "TargetError", "127.0.0.1:80"),
        ({"payload": "text"}, TypeError, "text"),
        ({"max_concurrency": 0}, ValueError, "0"),
        ({"max_concurrency": True}, TypeError, "True"),
        ({"timeout": -1.0}, ValueError, "-1.0"),
    ],
)
def test_caller_mistakes_raise_at_the_call(
    port: Port, bad: dict[str, Any], error: Any, named: str
) -> None:
    expected = port.module.TargetError if error == "TargetError" else error
    arguments: dict[str, Any] = {"targets": ["127.0.0.1:80"], "payload": PAYLOAD, **bad}
    targets, payload = arguments.pop("targets"), arguments.pop("payload")
    # Raised by the call itself: nothing has been entered, no loop is even running.
    with pytest.raises(expected) as info:
        port.module.stream_to_many(targets, payload, **arguments)
    assert named in str(info.value)


@pytest.mark.timeout(10)
def test_a_huge_max_concurrency_is_fine(port: Port) -> None:
    with LoopbackServer("sink") as sink:

        async def main() -> list[Any]:
            async with port.module.stream_to_many(
                [sink.target] * 3, PAYLOAD, max_concurrency=10**18
            ) as reports:
                return [r.status async for r in reports]

        assert port.run(main) == ["ok"] * 3


@pytest.mark.timeout(10)
def test_the_reply_options_apply_to_each_target(port: Port) -> None:
    with LoopbackServer("echo") as echo:

        async def main() -> tuple[list[Any], list[Any]]:
            options: dict[str, Any] = {
                "read_reply": True,
                "half_close": False,  # the echo server answers, and keeps its side open
                "reply_until": b"\n",
                "timeout": 5,
            }
            async with port.module.stream_to_many(
                [echo.target] * 3, b"ping\n", **options
            ) as reports:
                streamed = [r async for r in reports]
            gathered = await port.module.send_to_many([echo.target] * 2, b"pong\n", **options)
            return streamed, gathered

        streamed, gathered = port.run(main)
    assert [(r.reply, r.reply_end) for r in streamed] == [(b"ping\n", "until")] * 3
    assert [(r.reply, r.reply_end) for r in gathered] == [(b"pong\n", "until")] * 2


@pytest.mark.timeout(10)
def test_a_payload_file_is_sent_to_every_target_from_where_it_stood(
    port: Port, tmp_path: Any
) -> None:
    path = tmp_path / "payload.bin"
    path.write_bytes(b"skip" + bytes(range(256)) * 400)  # 102,400 bytes after the skip
    with LoopbackServer("sink") as sink, open(path, "rb") as file:
        file.seek(4)

        async def main() -> tuple[list[Any], list[Any]]:
            async with port.module.stream_to_many(
                [sink.target] * 5, file, max_concurrency=5
            ) as reports:
                streamed = [r async for r in reports]
            gathered = await port.module.send_to_many([sink.target] * 3, file)
            return streamed, gathered

        streamed, gathered = port.run(main)
        assert sink.wait_bytes(8 * 102_400)
        assert file.tell() == 4  # where it stood: the targets share it
    assert [r.bytes_sent for r in streamed + gathered] == [102_400] * 8
    assert sink.bytes_received == 8 * 102_400


def test_a_payload_file_that_cannot_seek_is_refused(port: Port) -> None:
    read, write = os.pipe()
    with open(read, "rb") as pipe, open(write, "wb"):
        with pytest.raises(TypeError, match="seekable"):
            port.module.stream_to_many(["127.0.0.1:9"], pipe)

        async def main() -> None:
            with pytest.raises(TypeError, match="seekable"):
                await port.module.send_to_many(["127.0.0.1:9"], pipe)

        port.run(main)


@pytest.mark.timeout(10)
def test_the_reports_end_once_the_block_is_left(port: Port) -> None:
    # An iterator kept past its block gives what was left over, then ends; it never
    # waits for workflows that were cancelled.
    with LoopbackServer("sink") as sink, LoopbackServer("blackhole") as hole:

        async def main() -> list[Any]:
            targets = [sink.target] + [hole.target] * 5
            async with port.module.stream_to_many(targets, PAYLOAD, timeout=10) as reports:
                async for first in reports:
                    assert first.ok
                    break
            async with port.fail_after(2):
                return [r async for r in reports]

        assert port.run(main) == []
