"""Spec: ``send_to_many``, as documented: run on every port.

One report per target in input order, failures kept apart, at most ``max_concurrency``
workflows at once (measured at the server), ``fail_fast``, ``on_report``, targets
checked before any I/O, and a cancellation from outside that gets out promptly.
"""

from __future__ import annotations

import functools
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Port, connections_before_one_more, refusing_port

from trio_sockets._reports import FAIL_FAST_TEXT
from trio_sockets.testing import LoopbackServer

PAYLOAD = b"fan-out\n" * 16
SLACK = 0.75  # seconds: how late a loaded CI machine may be


class HoldServer:
    """Reads each connection to its end, holds it ``hold`` seconds, then closes it.

    It counts the connections open at once (``peak``): a client that reads the reply
    (``read_reply=True``) is busy until this server closes, so the peak here is never
    above the number of workflows running at once in the client.
    """

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.open = self.peak = self.served = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.target = f"127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> HoldServer:
        self._threads.append(threading.Thread(target=self._accept, daemon=True))
        self._threads[0].start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                self.open += 1
                self.peak = max(self.peak, self.open)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5.0)
            while conn.recv(65536):
                pass
            self._stop.wait(self.hold)
            with self._lock:
                self.open -= 1
                self.served += 1


@pytest.fixture
def refused() -> Iterator[str]:
    with refusing_port() as number:
        yield f"127.0.0.1:{number}"


def statuses(reports: list[Any]) -> list[str]:
    return [report.status for report in reports]


def assert_json_ready(reports: list[Any]) -> None:
    data = [report.to_dict() for report in reports]
    assert json.loads(json.dumps(data)) == data


@pytest.mark.timeout(5)
def test_one_report_per_target_in_input_order(port: Port, refused: str) -> None:
    with LoopbackServer("sink") as v4, LoopbackServer("sink", "::1") as v6:
        targets: list[object] = [
            v6.target,
            refused,
            ("127.0.0.1", v4.port),
            port.module.Target("::1", v6.port),
            v4.target,
        ]
        seen: list[Any] = []

        async def main() -> Any:
            return await port.module.send_to_many(targets, PAYLOAD, on_report=seen.append)

        reports = port.run(main)
        assert v4.wait_bytes(2 * len(PAYLOAD)) and v6.wait_bytes(2 * len(PAYLOAD))
        assert v4.bytes_received == v6.bytes_received == 2 * len(PAYLOAD)
    assert [r.target for r in reports] == [port.module.Target.parse(t) for t in targets]
    assert statuses(reports) == ["ok", "error", "ok", "ok", "ok"]
    # on_report saw each report once, as it completed.
    assert sorted(map(id, seen)) == sorted(map(id, reports))
    assert_json_ready(reports)


@pytest.mark.timeout(5)
def test_no_targets_no_reports(port: Port) -> None:
    async def main() -> Any:
        return await port.module.send_to_many([], PAYLOAD)

    assert port.run(main) == []


@pytest.mark.timeout(10)
def test_300_mixed_targets_keep_their_failures_to_themselves(port: Port, refused: str) -> None:
    with LoopbackServer("sink") as sink, LoopbackServer("blackhole") as hole:
        kinds = [(sink.target, "ok"), (refused, "error"), (hole.target, "timeout")]
        targets = [kinds[i % 3][0] for i in range(300)]

        async def main() -> Any:
            return await port.module.send_to_many(
                targets, PAYLOAD, timeout=0.3, max_concurrency=300
            )

        started = time.perf_counter()
        reports = port.run(main)
        elapsed = time.perf_counter() - started
        assert sink.wait_bytes(100 * len(PAYLOAD))
        assert sink.bytes_received == 100 * len(PAYLOAD)
        assert sink.connections == 100
    assert statuses(reports) == [kinds[i % 3][1] for i in range(300)]
    assert all(r.bytes_sent == (len(PAYLOAD) if r.ok else 0) for r in reports)
    assert all(r.error.startswith("ConnectionRefusedError") for r in reports[1::3])
    assert 0.3 * 0.95 <= elapsed <= 0.3 + 2 * SLACK  # the timeouts ran side by side


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("limit", "count"), [(1, 5), (4, 16)])
def test_max_concurrency_is_honoured(port: Port, limit: int, count: int) -> None:
    with HoldServer(hold=0.05) as server:

        async def main() -> Any:
            return await port.module.send_to_many(
                [server.target] * count, PAYLOAD, max_concurrency=limit, read_reply=True
            )

        started = time.perf_counter()
        reports = port.run(main)
        elapsed = time.perf_counter() - started
    assert statuses(reports) == ["ok"] * count
    assert server.served == count
    assert server.peak <= limit
    assert server.peak == 1 if limit == 1 else server.peak > 1
    assert elapsed >= (count // limit) * 0.05 * 0.9


@pytest.mark.timeout(10)
def test_the_timeout_applies_to_each_target(port: Port) -> None:
    with LoopbackServer("blackhole") as hole:

        async def main() -> Any:
            return await port.module.send_to_many(
                [hole.target] * 3, PAYLOAD, timeout=0.2, max_concurrency=1
            )

        started = time.perf_counter()
        reports = port.run(main)
        elapsed = time.perf_counter() - started
    assert statuses(reports) == ["timeout"] * 3
    assert all(0.2 * 0.95 <= r.total_s <= 0.2 + SLACK for r in reports)
    assert 3 * 0.2 * 0.95 <= elapsed <= 3 * 0.2 + 2 * SLACK


@pytest.mark.timeout(5)
def test_fail_fast_cancels_the_targets_not_yet_started(port: Port, refused: str) -> None:
    with LoopbackServer("sink") as sink:
        targets = [sink.target, refused, sink.target, sink.target]
        seen: list[Any] = []

        async def main() -> Any:
            return await port.module.send_to_many(
                targets, PAYLOAD, max_concurrency=1, fail_fast=True, on_report=seen.append
            )

        reports = port.run(main)
        assert connections_before_one_more(port, sink) == 1  # nothing after the failure
        assert sink.bytes_received == len(PAYLOAD) + 1  # (+ the probe's byte)
    assert statuses(reports) == ["ok", "error", "cancelled", "cancelled"]
    for report in reports[2:]:
        assert not report.ok
        assert (report.error, report.bytes_sent, report.attempts) == (FAIL_FAST_TEXT, 0, ())
    assert sorted(map(id, seen)) == sorted(map(id, reports))
    assert_json_ready(reports)


@pytest.mark.timeout(5)
def test_fail_fast_cancels_the_running_targets_promptly(port: Port, refused: str) -> None:
    with LoopbackServer("blackhole") as hole:
        targets = [hole.target] * 4 + [refused]
        seen: list[Any] = []

        async def main() -> Any:
            return await port.module.send_to_many(
                targets, PAYLOAD, timeout=10, fail_fast=True, on_report=seen.append
            )

        started = time.perf_counter()
        reports = port.run(main)
        elapsed = time.perf_counter() - started
    assert statuses(reports) == ["cancelled"] * 4 + ["error"]
    for report in reports[:4]:  # they were connecting when they were cancelled
        [attempt] = report.attempts
        assert attempt.outcome == "cancelled"
    assert elapsed < SLACK
    assert seen[0] is reports[4] and len(seen) == 5
    assert sorted(map(id, seen)) == sorted(map(id, reports))
    assert_json_ready(reports)


@pytest.mark.timeout(5)
def test_fail_fast_with_no_failure_sends_everything(port: Port) -> None:
    with LoopbackServer("sink") as sink:

        async def main() -> Any:
            return await port.module.send_to_many([sink.target] * 5, PAYLOAD, fail_fast=True)

        assert statuses(port.run(main)) == ["ok"] * 5
        assert sink.wait_bytes(5 * len(PAYLOAD))


@pytest.mark.timeout(5)
def test_on_report_is_called_as_each_report_completes(port: Port) -> None:
    with LoopbackServer("blackhole") as hole, LoopbackServer("sink") as sink:
        seen: list[Any] = []

        async def main() -> Any:
            return await port.module.send_to_many(
                [hole.target, sink.target], PAYLOAD, timeout=0.3, on_report=seen.append
            )

        reports = port.run(main)
    assert statuses(reports) == ["timeout", "ok"]
    assert [r.status for r in seen] == ["ok", "timeout"]  # completion order


async def _async_on_report(report: object) -> None:
    pass


class _AsyncCallable:
    async def __call__(self, report: object) -> None:
        pass

    def __repr__(self) -> str:
        return "<_AsyncCallable>"


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"targets": ["{sink}", "no-port", "{sink}"]}, "TargetError"),
        ({"targets": ["{sink}", ("127.0.0.1", 0)]}, "TargetError"),
        ({"targets": "{sink}"}, "TargetError"),
        ({"payload": "text"}, "TypeError"),
        ({"max_concurrency": 0}, "ValueError"),
        ({"max_concurrency": 2.5}, "TypeError"),
        ({"timeout": -1.0}, "ValueError"),
        ({"on_report": "print"}, "TypeError"),
        ({"on_report": _async_on_report}, "TypeError"),
        ({"on_report": functools.partial(_async_on_report)}, "TypeError"),
        ({"on_report": _AsyncCallable()}, "TypeError"),
        ({"fail_fast": "no"}, "TypeError"),
        ({"fail_fast": 1}, "TypeError"),
        ({"targets": 5}, "TypeError"),
        ({"max_concurrency": True}, "TypeError"),
    ],
)
def test_caller_mistakes_raise_before_anything_is_sent(
    port: Port, bad: dict[str, Any], error: str
) -> None:
    expected = {"TargetError": port.module.TargetError, "TypeError": TypeError}.get(
        error, ValueError
    )
    bad = dict(bad)  # (the parameter is shared by the ports)
    with LoopbackServer("sink") as sink:
        targets = bad.pop("targets", ["{sink}"] * 3)
        if isinstance(targets, str):
            targets = targets.format(sink=sink.target)
        elif isinstance(targets, list):
            targets = [t.format(sink=sink.target) if isinstance(t, str) else t for t in targets]
        payload = bad.pop("payload", PAYLOAD)

        async def main() -> None:
            with pytest.raises(expected) as info:
                await port.module.send_to_many(targets, payload, **bad)
            if error == "TargetError" and isinstance(targets, list):
                assert "targets[1]: " in str(info.value)  # the bad one is the second
            for name, value in bad.items():  # the message names the argument and value
                assert name in str(info.value) and repr(value)[:40] in str(info.value)
            if "targets" in bad and not isinstance(targets, (list, str)):
                assert repr(targets) in str(info.value)

        port.run(main)
        assert connections_before_one_more(port, sink) == 0


@pytest.mark.timeout(5)
def test_cancelled_from_outside_promptly_with_nothing_left_open(port: Port) -> None:
    with LoopbackServer("blackhole") as hole, LoopbackServer("slow") as slow:
        targets = [hole.target, slow.target] * 20
        seen: list[Any] = []

        async def main() -> None:
            outcome = await port.run_and_cancel(
                lambda: port.module.send_to_many(
                    targets, bytes(8 << 20), max_concurrency=30, on_report=seen.append
                ),
                # Some workflows are sending by then (8 MiB each, far more than the
                # kernel buffers hold), the others still connecting.
                lambda: port.to_thread(slow.wait_bytes, 65536, 2.0),
            )
            assert outcome.cancelled and outcome.value is None
            assert type(outcome.error) is port.Cancelled
            assert outcome.exit_s is not None and outcome.exit_s < 0.5

        port.run(main)
    assert seen == []  # a cancellation from outside is nobody's report


@pytest.mark.timeout(5)
@pytest.mark.parametrize("error", [LookupError, KeyboardInterrupt])
def test_a_raising_on_report_cancels_the_rest_and_propagates_bare(
    port: Port, error: type[BaseException]
) -> None:
    # KeyboardInterrupt stands for Ctrl+C arriving in the consumer's code.
    with LoopbackServer("sink") as sink, LoopbackServer("blackhole") as hole:
        targets = [sink.target] + [hole.target] * 10 + [sink.target] * 20
        seen: list[Any] = []

        def on_report(report: Any) -> None:
            seen.append(report)
            raise error("from on_report")

        async def main() -> None:
            started = time.perf_counter()
            with pytest.raises(error, match="from on_report") as info:
                await port.module.send_to_many(
                    targets, PAYLOAD, timeout=10, max_concurrency=12, on_report=on_report
                )
            assert type(info.value) is error  # bare, not in an exception group
            assert time.perf_counter() - started < SLACK  # the blackholes were cancelled

        port.run(main)  # (and no socket is left open)
    assert len(seen) == 1 and seen[0].ok


@pytest.mark.timeout(5)
def test_an_on_report_that_returns_an_awaitable_is_refused(port: Port) -> None:
    with LoopbackServer("sink") as sink:

        async def main() -> None:
            with pytest.raises(TypeError, match="on_report must be a plain callable"):
                await port.module.send_to_many(
                    [sink.target] * 3, PAYLOAD, on_report=lambda report: port.sleep(0)
                )

        port.run(main)  # the coroutine was closed: no "never awaited" warning


@pytest.mark.timeout(5)
def test_a_huge_max_concurrency_is_fine(port: Port) -> None:
    with LoopbackServer("sink") as sink:

        async def main() -> Any:
            return await port.module.send_to_many(
                [sink.target] * 3, PAYLOAD, max_concurrency=10**18
            )

        assert statuses(port.run(main)) == ["ok"] * 3


@pytest.mark.timeout(5)
def test_reports_carry_their_index(port: Port, refused: str) -> None:
    with LoopbackServer("sink") as sink:

        async def main() -> Any:
            return await port.module.send_to_many([refused, sink.target] * 3, PAYLOAD)

        reports = port.run(main)
    assert [r.index for r in reports] == list(range(6))
    assert [r.to_dict()["index"] for r in reports] == list(range(6))
