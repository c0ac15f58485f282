"""Spec: ``connect_check_send`` and ``SendReport``, as documented: run on every port.

The workflow never raises for network trouble (it reports ``"ok"``, ``"error"`` or
``"timeout"``), raises for caller mistakes before any I/O, and lets a cancellation from
outside through.
"""

from __future__ import annotations

import json
import math
import socket
import time
from typing import Any

import pytest
from conftest import Port, connections_before_one_more, refusing_port

from trio_sockets._reports import PHASES
from trio_sockets.testing import LoopbackServer

PAYLOAD = b"connect, check, send\n" * 100
SLACK = 0.75  # seconds: how late a loaded CI machine may be


def assert_phases_add_up(report: Any) -> None:
    phases = [getattr(report, f"{phase}_s") for phase in PHASES]
    assert all(t >= 0 for t in phases), phases
    assert report.total_s > 0
    assert math.isclose(sum(phases), report.total_s, rel_tol=1e-6, abs_tol=1e-6), phases
    for attempt in report.attempts:
        assert 0 <= attempt.started_s <= attempt.ended_s <= report.total_s


def assert_json_ready(report: Any) -> dict[str, Any]:
    data: dict[str, Any] = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["status"] == report.status and data["ok"] == report.ok
    assert data["target"] == str(report.target)
    assert len(data["attempts"]) == len(report.attempts)
    return data


@pytest.mark.timeout(5)
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_ok_report(port: Port, host: str) -> None:
    with LoopbackServer("sink", host) as server:

        async def main() -> Any:
            return await port.module.connect_check_send(server.target, PAYLOAD)

        report = port.run(main)
        assert server.wait_bytes(len(PAYLOAD))
        assert server.bytes_received == len(PAYLOAD)
    assert (report.status, report.ok, report.error, report.reply) == ("ok", True, None, None)
    assert report.target == port.module.Target(host, server.port)
    assert tuple(report.address[:2]) == server.address
    assert report.bytes_sent == len(PAYLOAD)
    [attempt] = report.attempts
    assert attempt.outcome == "connected"
    assert attempt.family == (socket.AF_INET6 if ":" in host else socket.AF_INET)
    assert report.reply_s == 0
    assert_phases_add_up(report)
    assert_json_ready(report)


@pytest.mark.timeout(5)
def test_refused_is_an_error_report(port: Port) -> None:
    with refusing_port() as refused:

        async def main() -> Any:
            return await port.module.connect_check_send(("127.0.0.1", refused), PAYLOAD)

        report = port.run(main)
    assert (report.status, report.ok, report.address, report.bytes_sent) == (
        "error",
        False,
        None,
        0,
    )
    assert report.error.startswith("ConnectionRefusedError")
    [attempt] = report.attempts
    assert attempt.outcome == "failed"
    assert attempt.error.startswith("ConnectionRefusedError")
    assert_phases_add_up(report)
    assert_json_ready(report)


@pytest.mark.timeout(5)
def test_a_blackhole_is_a_timeout_report_after_the_timeout(port: Port) -> None:
    with LoopbackServer("blackhole") as hole:

        async def main() -> Any:
            return await port.module.connect_check_send(hole.target, PAYLOAD, timeout=0.3)

        started = time.perf_counter()
        report = port.run(main)
        elapsed = time.perf_counter() - started
    assert (report.status, report.ok, report.bytes_sent) == ("timeout", False, 0)
    assert report.error.startswith("TimeoutError") and "connect" in report.error
    assert 0.3 * 0.95 <= report.total_s <= 0.3 + SLACK
    assert 0.3 * 0.95 <= elapsed <= 0.3 + SLACK
    assert report.connect_s >= 0.25  # the phase it was stuck in
    [attempt] = report.attempts
    assert attempt.outcome == "cancelled"
    assert_phases_add_up(report)
    assert_json_ready(report)


@pytest.mark.timeout(5)
def test_a_reset_mid_send_is_an_error_report_with_the_bytes_sent(port: Port) -> None:
    payload = bytes(16 << 20)
    with LoopbackServer("reset", reset_after=65536) as server:

        async def main() -> Any:
            return await port.module.connect_check_send(server.target, payload)

        report = port.run(main)
        assert server.wait_bytes(65536)
        assert report.status == "error"
        assert report.error.startswith(("ConnectionResetError", "BrokenPipeError", "SendError"))
        assert server.bytes_received <= report.bytes_sent < len(payload)
        assert tuple(report.address[:2]) == server.address
        assert_phases_add_up(report)


@pytest.mark.timeout(5)
def test_a_name_that_does_not_resolve_is_an_error_report(port: Port) -> None:
    async def main() -> Any:
        port.install_resolver({})
        return await port.module.connect_check_send("nowhere.test:4242", PAYLOAD)

    report = port.run(main)
    assert report.status == "error" and "nowhere.test" in report.error
    assert report.attempts == ()


@pytest.mark.timeout(5)
def test_happy_eyeballs_inside_the_workflow(port: Port) -> None:
    with LoopbackServer("blackhole", "::1") as hole, LoopbackServer("sink") as live:

        async def main() -> Any:
            port.install_resolver({"dual.test": [hole.address, live.address]})
            return await port.module.connect_check_send(
                "dual.test:4242", PAYLOAD, happy_eyeballs_delay=0.1
            )

        report = port.run(main)
        assert live.wait_bytes(len(PAYLOAD))
        assert live.bytes_received == len(PAYLOAD)
    assert report.ok and tuple(report.address) == live.address
    assert [a.outcome for a in report.attempts] == ["cancelled", "connected"]
    assert 0.1 * 0.9 <= report.connect_s <= 0.1 + SLACK
    assert report.resolve_s < report.connect_s
    assert_phases_add_up(report)
    data = assert_json_ready(report)
    assert [a["family"] for a in data["attempts"]] == ["AF_INET6", "AF_INET"]


@pytest.mark.timeout(5)
@pytest.mark.parametrize("timeout", [None, 5.0])
def test_read_reply_reads_until_end_of_stream(port: Port, timeout: float | None) -> None:
    with LoopbackServer("echo") as server:

        async def main() -> Any:
            return await port.module.connect_check_send(
                server.target, PAYLOAD, read_reply=True, timeout=timeout
            )

        report = port.run(main)
    assert report.ok and report.reply == PAYLOAD
    assert report.bytes_sent == len(PAYLOAD)
    assert_phases_add_up(report)
    assert assert_json_ready(report)["reply"] == PAYLOAD.decode()


@pytest.mark.timeout(5)
def test_max_reply_bytes_truncates_the_reply(port: Port) -> None:
    payload = bytes(range(255, -1, -1)) * 4  # not UTF-8: the JSON reply is hex
    with LoopbackServer("echo") as server:

        async def main() -> Any:
            return await port.module.connect_check_send(
                server.target, payload, read_reply=True, max_reply_bytes=100
            )

        report = port.run(main)
    assert report.ok and report.reply == payload[:100]
    data = assert_json_ready(report)
    assert (data["reply"], data["reply_encoding"]) == (payload[:100].hex(), "hex")


TARGET_ERRORS: list[tuple[object, str]] = [
    # (target, text the message must name); "{port}" is the sink's port
    ("127.0.0.1", "'127.0.0.1'"),
    ("127.0.0.1:http", "'127.0.0.1:http'"),
    ("127.0.0.1:0", "'127.0.0.1:0'"),
    (":{port}", "':{port}'"),
    ("127.0.0.1 :{port}", "'127.0.0.1 '"),  # the host is what is wrong
    ((b"127.0.0.1", "{port}"), "b'127.0.0.1'"),
    (12345, "12345"),
]
OTHER_ERRORS: list[tuple[object, dict[str, object], type[Exception]]] = [
    # (payload, options, error) for the sink's own target
    ("text", {}, TypeError),
    (None, {}, TypeError),
    (PAYLOAD, {"timeout": -1}, ValueError),
    (PAYLOAD, {"timeout": math.nan}, ValueError),
    (PAYLOAD, {"happy_eyeballs_delay": -0.5}, ValueError),
    (PAYLOAD, {"max_reply_bytes": 0}, ValueError),
    (PAYLOAD, {"max_reply_bytes": -1}, ValueError),
]


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("target", "named"), TARGET_ERRORS)
def test_a_bad_target_raises_before_any_io(port: Port, target: object, named: str) -> None:
    with LoopbackServer("sink") as server:
        if isinstance(target, str):
            target = target.format(port=server.port)
        elif isinstance(target, tuple):
            target = (target[0], int(target[1].format(port=server.port)))

        async def main() -> None:
            port.install_resolver({})
            with pytest.raises(port.module.TargetError) as info:
                await port.module.connect_check_send(target, PAYLOAD)
            assert named.format(port=server.port) in str(info.value)

        port.run(main)
        assert connections_before_one_more(port, server) == 0


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("payload", "kwargs", "error"), OTHER_ERRORS)
def test_a_bad_payload_or_option_raises_before_any_io(
    port: Port, payload: object, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with LoopbackServer("sink") as server:

        async def main() -> None:
            with pytest.raises(error):
                await port.module.connect_check_send(
                    server.target, payload, read_reply=True, **kwargs
                )

        port.run(main)
        assert connections_before_one_more(port, server) == 0


@pytest.mark.timeout(5)
@pytest.mark.parametrize("idle", [0, 0.0])
def test_a_zero_reply_idle_timeout_is_refused_before_any_io(port: Port, idle: float) -> None:
    # A reply that may never pause would end before its first byte: a zero idle timeout
    # means nothing (and Trio and asyncio would not even read the same bytes with it).
    with LoopbackServer("sink") as server:

        async def main() -> None:
            with pytest.raises(ValueError, match=r"reply_idle_timeout .*got 0") as info:
                await port.module.connect_check_send(
                    server.target, PAYLOAD, read_reply=True, reply_idle_timeout=idle
                )
            assert not isinstance(info.value, OSError)
            with pytest.raises(ValueError, match="reply_idle_timeout"):
                await port.module.send_to_many([server.target], PAYLOAD, reply_idle_timeout=idle)

        port.run(main)
        assert connections_before_one_more(port, server) == 0


@pytest.mark.timeout(5)
@pytest.mark.parametrize("timeout", [None, 10.0])
def test_cancelled_from_outside_while_connecting_propagates(
    port: Port, timeout: float | None
) -> None:
    with LoopbackServer("blackhole") as hole:

        async def main() -> None:
            outcome = await port.run_and_cancel(
                lambda: port.module.connect_check_send(hole.target, PAYLOAD, timeout=timeout),
                lambda: port.sleep(0.2),  # nothing to wait on: a blackhole never answers
            )
            assert outcome.cancelled and outcome.value is None  # no "timeout" report
            assert type(outcome.error) is port.Cancelled
            assert outcome.exit_s is not None and outcome.exit_s < 0.2

        port.run(main)


@pytest.mark.timeout(5)
def test_cancelled_from_outside_while_sending_propagates(port: Port) -> None:
    with LoopbackServer("slow") as server:

        async def main() -> None:
            outcome = await port.run_and_cancel(
                lambda: port.module.connect_check_send(server.target, bytes(64 << 20)),
                lambda: port.to_thread(server.wait_bytes, 65536, 2.0),
            )
            assert outcome.cancelled and outcome.value is None
            assert type(outcome.error) is port.Cancelled
            assert outcome.exit_s is not None and outcome.exit_s < 0.2

        port.run(main)


@pytest.mark.timeout(5)
def test_a_deadline_mid_send_reports_the_exact_bytes_sent(port: Port) -> None:
    payload = bytes(64 << 20)  # a 16 MB/s reader needs four seconds for it
    with LoopbackServer("slow") as server:

        async def main() -> Any:
            return await port.module.connect_check_send(server.target, payload, timeout=0.3)

        report = port.run(main)
        assert report.status == "timeout" and "send" in report.error
        assert 0 < report.bytes_sent < len(payload)
        # The workflow closed the connection; the kernel delivers what it had accepted.
        assert server.wait_bytes(report.bytes_sent)
        assert server.bytes_received == report.bytes_sent
    assert report.send_s > 0 and tuple(report.address[:2]) == server.address
    assert_phases_add_up(report)
