"""Spec: with ``read_reply``, the reply is read while the payload is sent, on every port.

Reading only after sending deadlocks on an echoing server once the payload outgrows the
buffers between the two (the server stops reading while nobody reads its echo), and
loses the reply of a server that answers and closes before the payload is out. netcat
reads while it sends; so does the workflow.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from conftest import Port

from trio_sockets.testing import LoopbackServer
from trio_sockets.testing.servers import tls_server_context

# Far more than an echo server holds for a client plus what the kernel buffers hold on
# loopback (a few MB each way): reading only after sending deadlocks on it.
# About 32 MiB with one newline, the last byte: every other byte value repeats, so that
# reply_until=b"\n" can only stop at the end, however the receives split the reply.
BIG = bytes(b for b in range(256) if b != ord("\n")) * (32 * 4096) + b"\n"
SLACK = 0.75  # seconds: how late a loaded CI machine may be


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=["plain", "tls"])
def tls(request: pytest.FixtureRequest, ca: trustme.CA) -> Iterator[ssl.SSLContext | None]:
    """Each test over plain TCP (None) and over TLS (a client context trusting the CA)."""
    if request.param == "plain":
        yield None
        return
    client = ssl.create_default_context()
    ca.configure_trust(client)
    yield client


def server_context(ca: trustme.CA, client: ssl.SSLContext | None) -> ssl.SSLContext | None:
    return None if client is None else tls_server_context(ca)


def _same(reply: bytes | None, expected: bytes) -> bool:
    # Compared by length and digest: a failing 32 MiB comparison would print megabytes.
    return reply is not None and (len(reply), hashlib.sha256(reply).digest()) == (
        len(expected),
        hashlib.sha256(expected).digest(),
    )


def run_workflow(port: Port, target: str, payload: bytes, **options: Any) -> Any:
    async def main() -> Any:
        return await port.module.connect_check_send(target, payload, read_reply=True, **options)

    return port.run(main)


# --------------------------------------------------------------------------------------
# An echoing server with backpressure: no deadlock, however large the payload
# --------------------------------------------------------------------------------------

ENDS = [
    pytest.param({"half_close": True}, "eof", id="eof"),
    pytest.param({"half_close": False, "reply_until": b"\n"}, "until", id="until"),
    pytest.param({"half_close": False, "reply_idle_timeout": 0.3}, "idle", id="idle"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("options", "end"), ENDS)
def test_a_large_payload_to_an_echo_server(port: Port, options: dict[str, Any], end: str) -> None:
    with LoopbackServer("echo") as server:
        report = run_workflow(port, server.target, BIG, max_reply_bytes=len(BIG) + 1, **options)
    assert report.status == "ok", report.error
    assert (report.bytes_sent, report.reply_end) == (len(BIG), end)
    assert _same(report.reply, BIG)


@pytest.mark.timeout(30)
def test_a_large_payload_to_an_echo_server_over_tls(port: Port, ca: trustme.CA) -> None:
    client = ssl.create_default_context()
    ca.configure_trust(client)
    with LoopbackServer("echo", tls=tls_server_context(ca)) as server:
        report = run_workflow(port, server.target, BIG, max_reply_bytes=len(BIG) + 1, tls=client)
    assert report.status == "ok", report.error
    assert (report.bytes_sent, report.reply_end) == (len(BIG), "eof")
    assert _same(report.reply, BIG)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("half_close", [True, False])
def test_a_reply_that_ends_first_lets_the_payload_finish(
    port: Port, ca: trustme.CA, tls: ssl.SSLContext | None, half_close: bool
) -> None:
    # The limit ends the reply long before the payload is out: the rest of the echo is
    # read and dropped meanwhile, or the server would stop reading and the send stall.
    limit = 100_000
    with LoopbackServer("echo", tls=server_context(ca, tls)) as server:
        report = run_workflow(
            port, server.target, BIG, max_reply_bytes=limit, half_close=half_close, tls=tls or False
        )
    assert report.status == "ok", report.error
    assert (report.bytes_sent, report.reply, report.reply_end) == (len(BIG), BIG[:limit], "limit")
    # The phases: the send lasts until the payload is out, the reply only after it.
    assert report.send_s > report.reply_s


# --------------------------------------------------------------------------------------
# A server that answers and closes before the payload is out
# --------------------------------------------------------------------------------------

ANSWER = b"-ERR Protocol error: too big inline request\r\n"


@contextlib.contextmanager
def answering_server(read_first: int, keep_reading: bool) -> Iterator[str]:
    """A server that reads ``read_first`` bytes, answers ``ANSWER`` and shuts its side.

    Then it either reads on to the client's end of stream (the send goes through) or
    closes at once with the payload unread, which resets the connection, as Redis does
    with a request that is too big.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            received = 0
            while received < read_first:
                received += len(conn.recv(read_first - received))
            conn.sendall(ANSWER)
            conn.shutdown(socket.SHUT_WR)
            while keep_reading and conn.recv(1 << 20):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        thread.join(10)
        listener.close()


@pytest.mark.timeout(20)
def test_a_reply_sent_before_a_reset_is_kept(port: Port) -> None:
    with answering_server(1000, keep_reading=False) as target:
        report = run_workflow(port, target, BIG)
    assert report.status == "error", report
    assert report.error.startswith(("BrokenPipeError", "ConnectionResetError", "SendError"))
    assert report.reply == ANSWER
    assert 1000 <= report.bytes_sent < len(BIG)


@pytest.mark.timeout(20)
def test_a_reply_that_ends_before_the_payload_does_not_cut_it(port: Port) -> None:
    with answering_server(1000, keep_reading=True) as target:
        report = run_workflow(port, target, BIG)
    assert (report.status, report.reply, report.reply_end) == ("ok", ANSWER, "eof")
    assert report.bytes_sent == len(BIG)


# --------------------------------------------------------------------------------------
# The idle timeout counts only once the payload is out
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_a_slow_upload_is_not_idleness(
    port: Port, ca: trustme.CA, tls: ssl.SSLContext | None
) -> None:
    # The slow server reads a few MB/s through a small buffer and never answers: the
    # upload takes well over the idle timeout, and the reply still ends only once the
    # payload is out.
    payload = BIG[: 3 << 20]
    idle = 0.1
    slow = LoopbackServer("slow", slow_interval=0.005, tls=server_context(ca, tls))
    with slow as server:
        start = time.monotonic()
        report = run_workflow(
            port,
            server.target,
            payload,
            half_close=False,
            reply_idle_timeout=idle,
            tls=tls or False,
        )
        elapsed = time.monotonic() - start
    assert (report.status, report.reply, report.reply_end) == ("ok", b"", "idle"), report.error
    assert report.bytes_sent == len(payload)
    assert report.send_s > 3 * idle  # slow indeed, or the test proves nothing
    assert idle <= report.reply_s < idle + SLACK
    assert elapsed >= report.send_s + idle


# --------------------------------------------------------------------------------------
# Cancellation in the middle: nothing left behind
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", ["slow", "echo"])
def test_cancelled_while_sending_and_reading(
    port: Port, ca: trustme.CA, tls: ssl.SSLContext | None, mode: Any
) -> None:
    # A slow server is cancelled while the payload is still going out; an echo server
    # that never ends the reply (no half-close), while the reply comes in. The leak
    # checks of every spec test (file descriptors, asyncio tasks and timers) see that
    # the sender and the reader both ended and the socket was closed.
    with LoopbackServer(mode, tls=server_context(ca, tls)) as server:

        async def main() -> None:
            outcome = await port.run_and_cancel(
                lambda: port.module.connect_check_send(
                    server.target,
                    BIG,
                    read_reply=True,
                    max_reply_bytes=len(BIG) + 1,
                    half_close=False,
                    tls=tls or False,
                ),
                lambda: port.to_thread(server.wait_bytes, 65536, 10.0),
            )
            assert outcome.cancelled and outcome.value is None
            assert type(outcome.error) is port.Cancelled
            assert outcome.exit_s is not None and outcome.exit_s < SLACK

        port.run(main)
