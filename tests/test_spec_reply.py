"""Spec: the reply of ``connect_check_send``, run on every port.

Reading stops at the first of: the peer's end of stream (``"eof"``), ``max_reply_bytes``
(``"limit"``), the reply ending with ``reply_until`` (``"until"``), and
``reply_idle_timeout`` seconds without a byte (``"idle"``). With ``half_close=False``
our sending side stays open, as netcat's does by default.
"""

from __future__ import annotations

import errno
import math
import mmap
import os
import time
import tracemalloc
from typing import Any

import pytest
from conftest import Port, connections_before_one_more

from trio_sockets._checks import MAX_BYTES
from trio_sockets.testing import LoopbackServer

LINE = b"x" * 99_999 + b"\n"  # the only newline is the last byte
SLACK = 0.75  # seconds: how late a loaded CI machine may be


def run_workflow(port: Port, server: LoopbackServer, payload: bytes, **options: Any) -> Any:
    options.setdefault("max_reply_bytes", 1 << 20)

    async def main() -> Any:
        return await port.module.connect_check_send(
            server.target, payload, read_reply=True, **options
        )

    return port.run(main)


@pytest.mark.timeout(5)
def test_eof_a_server_that_closes_after_our_half_close(port: Port) -> None:
    with LoopbackServer("echo") as server:
        report = run_workflow(port, server, LINE)
    assert (report.status, report.reply, report.reply_end) == ("ok", LINE, "eof")
    assert report.to_dict()["reply_end"] == "eof"


@pytest.mark.timeout(5)
def test_limit(port: Port) -> None:
    with LoopbackServer("echo") as server:
        report = run_workflow(port, server, LINE, max_reply_bytes=1000)
    assert (report.status, report.reply, report.reply_end) == ("ok", LINE[:1000], "limit")


@pytest.mark.timeout(5)
@pytest.mark.parametrize("half_close", [True, False])
def test_until_a_server_that_never_closes(port: Port, half_close: bool) -> None:
    with LoopbackServer("hold") as server:
        start = time.monotonic()
        report = run_workflow(port, server, LINE, half_close=half_close, reply_until=b"\n")
        elapsed = time.monotonic() - start
    assert (report.status, report.reply, report.reply_end) == ("ok", LINE, "until")
    assert elapsed < 1 + SLACK  # not the workflow's 10 s timeout


@pytest.mark.timeout(5)
def test_until_split_across_receives(port: Port) -> None:
    # A trickling server sends the two-byte marker in two sends.
    payload = b"+OK" * 100 + b"\r\n"
    with LoopbackServer("trickle", slow_interval=0.0002) as server:
        report = run_workflow(port, server, payload, half_close=False, reply_until=b"\r\n")
    assert (report.status, report.reply, report.reply_end) == ("ok", payload, "until")


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("mode", "half_close"), [("hold", True), ("echo", False)])
def test_idle_a_server_that_never_closes(port: Port, mode: Any, half_close: bool) -> None:
    # The echo server closes only after our end of stream: with half_close=False it never
    # does, like a server that waits for the next request.
    with LoopbackServer(mode) as server:
        start = time.monotonic()
        report = run_workflow(port, server, LINE, half_close=half_close, reply_idle_timeout=0.2)
        elapsed = time.monotonic() - start
    assert (report.status, report.reply, report.reply_end) == ("ok", LINE, "idle")
    assert report.bytes_sent == len(LINE) and report.error is None
    assert 0.2 * 0.9 <= report.reply_s < 0.2 + SLACK  # uvloop counts in whole ms
    assert elapsed < 0.2 + SLACK


@pytest.mark.timeout(5)
def test_without_an_end_the_deadline_ends_the_workflow(port: Port) -> None:
    # Nothing ends the reply but the workflow's own deadline: "timeout", with the reply
    # read so far, and no reply_end.
    with LoopbackServer("echo") as server:
        report = run_workflow(port, server, LINE, half_close=False, timeout=0.3)
    assert report.status == "timeout" and "during reply" in report.error
    assert (report.reply, report.reply_end) == (LINE, None)


@pytest.mark.timeout(5)
def test_the_deadline_beats_a_longer_idle_timeout(port: Port) -> None:
    with LoopbackServer("hold") as server:
        report = run_workflow(port, server, LINE, timeout=0.3, reply_idle_timeout=60)
    assert (report.status, report.reply_end) == ("timeout", None)


@pytest.mark.timeout(5)
def test_an_idle_timeout_with_no_reply_at_all(port: Port) -> None:
    with LoopbackServer("sink") as server:  # reads, never answers, closes after our EOF
        report = run_workflow(port, server, b"ping", half_close=False, reply_idle_timeout=0.05)
    assert (report.status, report.reply, report.reply_end) == ("ok", b"", "idle")


@pytest.mark.timeout(5)
def test_no_reply_read_means_no_reply_end(port: Port) -> None:
    with LoopbackServer("echo") as server:

        async def main() -> Any:
            return await port.module.connect_check_send(server.target, b"ping")

        report = port.run(main)
    assert (report.reply, report.reply_end) == (None, None)
    assert report.to_dict()["reply_end"] is None


def peak_memory(port: Port, server: LoopbackServer, payload: bytes, **options: Any) -> Any:
    """(report, peak bytes traced) of one workflow."""
    tracemalloc.start()
    try:
        report = run_workflow(port, server, payload, **options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return report, peak


@pytest.mark.timeout(10)
def test_a_trickled_reply_costs_no_memory_per_receive(port: Port) -> None:
    # One byte per send: the reply arrives in thousands of receives. Gathering a bytes
    # object per receive cost 55-62 bytes of memory per reply byte; one buffer costs ~1.
    payload = bytes(range(256)) * 64  # 16 KiB
    with LoopbackServer("trickle", slow_interval=0) as server:
        peak_memory(port, server, b"", max_reply_bytes=65536)  # warm every cache
        quiet, baseline = peak_memory(port, server, b"", max_reply_bytes=65536)
        report, peak = peak_memory(port, server, payload, max_reply_bytes=65536)
    assert (quiet.reply_end, quiet.reply) == ("eof", b"")
    assert (report.status, report.reply, report.reply_end) == ("ok", payload, "eof")
    # The reply's share: the 64 KiB buffer was there in the baseline too; the rest is
    # the reply's final copy (16 KiB), with room for the framework's own noise.
    assert peak - baseline < 2 * len(payload) + 50_000, (peak, baseline)


@pytest.mark.timeout(5)
def test_a_cut_inside_a_character_stays_text(port: Port) -> None:
    text = "é" * 100  # two bytes each: 101 bytes cut the 51st character
    with LoopbackServer("echo") as server:
        report = run_workflow(port, server, text.encode(), max_reply_bytes=101)
    data = report.to_dict()
    assert (data["reply"], data["reply_encoding"], data["reply_tail_hex"]) == (
        text[:50],
        "utf-8",
        "c3",
    )
    assert data["reply_end"] == "limit"


@pytest.mark.timeout(5)
def test_cancelled_from_outside_while_reading_propagates(port: Port) -> None:
    with LoopbackServer("hold") as server:

        async def main() -> None:
            outcome = await port.run_and_cancel(
                lambda: port.module.connect_check_send(
                    server.target, b"ping", read_reply=True, reply_idle_timeout=30
                ),
                lambda: port.to_thread(server.wait_bytes, 4, 2.0),
            )
            assert outcome.cancelled and outcome.value is None
            assert type(outcome.error) is port.Cancelled

        port.run(main)


# --------------------------------------------------------------------------------------
# Argument checks: before any I/O, naming the value
# --------------------------------------------------------------------------------------


def closed_mmap() -> mmap.mmap:
    m = mmap.mmap(-1, 16)
    m.close()
    return m


def released_view() -> memoryview:
    view = memoryview(b"abc")
    view.release()
    return view


BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"max_reply_bytes": 2**40}, ValueError, f"max_reply_bytes must be at most {MAX_BYTES}"),
    ({"max_reply_bytes": 2**63}, ValueError, str(2**63)),
    ({"max_reply_bytes": MAX_BYTES + 1}, ValueError, "at most"),
    ({"timeout": 10**400}, ValueError, "timeout is too large"),
    ({"happy_eyeballs_delay": 10**400}, ValueError, "happy_eyeballs_delay is too large"),
    ({"reply_idle_timeout": 10**400}, ValueError, "reply_idle_timeout is too large"),
    ({"reply_idle_timeout": -1}, ValueError, "reply_idle_timeout"),
    ({"reply_idle_timeout": math.nan}, ValueError, "reply_idle_timeout"),
    ({"reply_idle_timeout": "1"}, TypeError, "reply_idle_timeout"),
    ({"read_reply": "no"}, TypeError, "read_reply must be True or False, got 'no'"),
    ({"read_reply": 1}, TypeError, "read_reply must be True or False, got 1"),
    ({"half_close": "no"}, TypeError, "half_close must be True or False, got 'no'"),
    ({"half_close": None}, TypeError, "half_close"),
    ({"reply_until": "\r\n"}, TypeError, "reply_until must be bytes or None, got '\\r\\n'"),
    ({"reply_until": b""}, ValueError, "reply_until must not be empty"),
    ({"reply_until": 10}, TypeError, "reply_until"),
]


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("options", "error", "named"), BAD_OPTIONS, ids=repr)
def test_a_bad_option_raises_before_any_io(
    port: Port, options: dict[str, Any], error: type[Exception], named: str
) -> None:
    options = {"read_reply": True, **options}
    with LoopbackServer("sink") as server:

        async def main() -> None:
            with pytest.raises(error) as info:
                await port.module.connect_check_send(server.target, b"x", **options)
            assert named in str(info.value)

        port.run(main)
        assert connections_before_one_more(port, server) == 0


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    ("make", "named"),
    [(closed_mmap, "mmap closed"), (released_view, "released memoryview")],
    ids=["closed-mmap", "released-memoryview"],
)
def test_an_unreadable_payload_raises_before_any_io(port: Port, make: Any, named: str) -> None:
    with LoopbackServer("sink") as server:

        async def main() -> None:
            payload = make()
            with pytest.raises(ValueError, match="payload cannot be read") as info:
                await port.module.connect_check_send(server.target, payload)
            assert named in str(info.value) and repr(payload)[:20] in str(info.value)

        port.run(main)
        assert connections_before_one_more(port, server) == 0


@pytest.mark.timeout(5)
@pytest.mark.parametrize("size", [2**63, MAX_BYTES + 1, 0])
def test_receive_some_checks_its_size(port: Port, size: int) -> None:
    with LoopbackServer("echo") as server:

        async def main() -> None:
            async with await port.module.open_connection(*server.address) as conn:
                with pytest.raises(ValueError, match=f"max_bytes must .*, got {size}"):
                    await conn.receive_some(size)

        port.run(main)


@pytest.mark.timeout(5)
def test_the_kernels_timeout_is_an_error_not_idle_nor_the_deadline(
    port: Port, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ETIMEDOUT from a receive is a TimeoutError, which is also what asyncio's deadlines
    # raise: it must be reported as the error it is.
    async def timed_out(self: Any, buffer: memoryview) -> int:
        raise TimeoutError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT))

    monkeypatch.setattr(port.module.Connection, "_receive_into", timed_out)
    with LoopbackServer("echo") as server:
        report = run_workflow(port, server, b"ping", timeout=5, reply_idle_timeout=5)
    assert (report.status, report.reply_end, report.reply) == ("error", None, b"")
    assert report.error == f"TimeoutError: [Errno {errno.ETIMEDOUT}] Connection timed out"
