"""Spec: TLS (``tls=``, ``server_hostname=``), on every port, against loopback TLS servers.

The servers get their certificates from a throwaway CA made by ``trustme``; the clients
trust it through an ``ssl.SSLContext``. ``tls=True`` is the system's CA store, which has
never heard of that CA: that is the "unknown CA" case.
"""

from __future__ import annotations

import datetime
import io
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from conftest import Port
from test_spec_workflow import assert_json_ready, assert_phases_add_up

from trio_sockets.testing import LoopbackServer
from trio_sockets.testing.servers import tls_server_context

PAYLOAD = b"connect, check, send, over TLS\n" * 100
MARKED = PAYLOAD + b"END"  # the marker comes once, at the very end


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def client(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the test CA (and verifies host names)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def tls_sink(ca: trustme.CA) -> Iterator[LoopbackServer]:
    with LoopbackServer("sink", tls=tls_server_context(ca)) as server:
        yield server


@pytest.fixture
def tls_echo(ca: trustme.CA) -> Iterator[LoopbackServer]:
    with LoopbackServer("echo", tls=tls_server_context(ca)) as server:
        yield server


def assert_tls_reported(report: Any) -> None:
    assert report.tls_version in ("TLSv1.2", "TLSv1.3"), report
    assert report.tls_cipher, report
    assert report.tls_s > 0
    data = assert_json_ready(report)
    assert (data["tls_version"], data["tls_cipher"]) == (report.tls_version, report.tls_cipher)
    assert data["tls_s"] == report.tls_s


# --------------------------------------------------------------------------------------
# The handshake
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_workflow_over_tls(port: Port, ca: trustme.CA, client: ssl.SSLContext, host: str) -> None:
    with LoopbackServer("sink", host, tls=tls_server_context(ca)) as server:

        async def main() -> Any:
            return await port.module.connect_check_send(server.target, PAYLOAD, tls=client)

        report = port.run(main)
        assert server.wait_bytes(len(PAYLOAD))
        assert server.bytes_received == len(PAYLOAD)  # the plaintext, decrypted
    assert (report.status, report.error, report.bytes_sent) == ("ok", None, len(PAYLOAD))
    assert_tls_reported(report)
    assert_phases_add_up(report)


@pytest.mark.timeout(10)
def test_without_tls_nothing_is_reported_about_it(port: Port) -> None:
    with LoopbackServer("sink") as server:

        async def main() -> Any:
            return await port.module.connect_check_send(server.target, PAYLOAD)

        report = port.run(main)
    assert report.ok
    assert (report.tls_version, report.tls_cipher, report.tls_s) == (None, None, 0.0)


@pytest.mark.timeout(10)
def test_open_connection_over_tls(port: Port, tls_echo: LoopbackServer, client: Any) -> None:
    async def main() -> tuple[Any, ...]:
        conn = await port.module.open_connection(tls_echo.host, tls_echo.port, tls=client)
        async with conn:
            assert conn.tls_version in ("TLSv1.2", "TLSv1.3")
            assert conn.tls_cipher
            await conn.send_all(b"ping")
            await conn.send_eof()  # the echo server reads end of stream, replies, closes
            reply = b""
            while chunk := await conn.receive_some():
                reply += chunk
            return reply, conn.bytes_sent, conn.bytes_received

    assert port.run(main) == (b"ping", 4, 4)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("tls", [False, True])
def test_sending_after_send_eof_is_a_closed_error(
    port: Port, ca: trustme.CA, client: ssl.SSLContext, tls: bool
) -> None:
    server = LoopbackServer("echo", tls=tls_server_context(ca) if tls else None)
    options = {"tls": client} if tls else {}

    async def main() -> None:
        async with await port.module.open_connection(server.host, server.port, **options) as conn:
            await conn.send_eof()
            await conn.send_eof()  # twice is harmless
            with pytest.raises(port.ClosedError, match="send_eof"):
                await conn.send_all(b"more")
            with pytest.raises(port.ClosedError, match="send_eof"):
                await conn.send_file(io.BytesIO(b"more"))
            assert await conn.receive_some() == b""  # the echo server closed after ours

    with server:
        port.run(main)


@pytest.mark.timeout(10)
def test_a_plain_connection_has_no_tls(port: Port) -> None:
    with LoopbackServer("sink") as server:

        async def main() -> tuple[object, object]:
            async with await port.module.open_connection(server.host, server.port) as conn:
                return conn.tls_version, conn.tls_cipher

        assert port.run(main) == (None, None)


# --------------------------------------------------------------------------------------
# Verification failures: an "error" report naming the reason, no socket left open
# --------------------------------------------------------------------------------------

EXPIRED = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unknown CA", "unable to get local issuer certificate"),
        ("wrong host name", "Hostname mismatch"),
        ("expired certificate", "certificate has expired"),
    ],
)
def test_a_certificate_that_does_not_verify_is_an_error(
    port: Port, ca: trustme.CA, client: ssl.SSLContext, case: str, reason: str
) -> None:
    options: dict[str, Any] = {"tls": client}
    server_context = tls_server_context(ca)
    if case == "unknown CA":
        options = {"tls": True}  # the system's CA store: it does not know the test CA
    elif case == "wrong host name":
        options["server_hostname"] = "wrong.test"
    else:
        server_context = tls_server_context(ca, not_after=EXPIRED)
    with LoopbackServer("sink", tls=server_context) as server:

        async def workflow() -> Any:
            return await port.module.connect_check_send(server.target, PAYLOAD, **options)

        async def opening() -> Any:
            with pytest.raises(port.module.ConnectError) as caught:
                await port.module.open_connection(server.host, server.port, **options)
            return caught.value

        report = port.run(workflow)
        error = port.run(opening)
        assert server.bytes_received == 0
    assert (report.status, report.bytes_sent, report.tls_version) == ("error", 0, None)
    assert report.error.startswith("SSLCertVerificationError: ")
    assert reason in report.error
    assert report.tls_s > 0 and report.send_s == 0
    [attempt] = report.attempts
    assert attempt.outcome == "connected"  # TCP was fine; TLS was not
    assert_phases_add_up(report)
    assert reason in str(error)
    assert isinstance(error.errors[0], ssl.SSLCertVerificationError)
    assert error.errno is None
    assert [a.outcome for a in error.attempts] == ["connected"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("tls", [None, "yes", 1, ssl.Purpose.SERVER_AUTH])
def test_tls_of_the_wrong_type_is_a_type_error_before_any_io(port: Port, tls: object) -> None:
    with LoopbackServer("sink") as server:

        async def main() -> None:
            with pytest.raises(TypeError, match="tls must be"):
                await port.module.open_connection(server.host, server.port, tls=tls)
            with pytest.raises(TypeError, match="tls must be"):
                await port.module.connect_check_send(server.target, b"x", tls=tls)
            with pytest.raises(TypeError, match="tls must be"):
                await port.module.send_to_many([server.target], b"x", tls=tls)
            with pytest.raises(TypeError, match="server_hostname"):
                await port.module.connect_check_send(server.target, b"x", server_hostname=7)

        port.run(main)
        assert server.connections == 0


@pytest.mark.timeout(10)
def test_server_hostname_without_tls_is_a_value_error_before_any_io(port: Port) -> None:
    with LoopbackServer("sink") as server:

        async def main() -> None:
            with pytest.raises(ValueError, match="only meaningful with tls"):
                await port.module.open_connection(server.host, server.port, server_hostname="a")
            with pytest.raises(ValueError, match="only meaningful with tls"):
                await port.module.connect_check_send(server.target, b"x", server_hostname="a")

        port.run(main)
        assert server.connections == 0


# --------------------------------------------------------------------------------------
# bytes_sent stays honest: application bytes whose records the kernel took
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_a_large_payload_over_tls(port: Port, tls_sink: LoopbackServer, client: Any) -> None:
    payload = bytes(range(256)) * (6 * 4096)  # 6 MiB, in many records

    async def main() -> Any:
        return await port.module.connect_check_send(tls_sink.target, payload, tls=client)

    report = port.run(main)
    assert report.ok, report
    assert tls_sink.wait_bytes(len(payload))
    assert report.bytes_sent == tls_sink.bytes_received == len(payload)


@pytest.mark.timeout(20)
def test_a_file_payload_over_tls(
    port: Port, tls_echo: LoopbackServer, client: Any, tmp_path: Path
) -> None:
    # A regular file would go zero-copy (os.sendfile) without TLS; with TLS it must be
    # read and encrypted, record by record. The echo proves every byte went through.
    path = tmp_path / "payload.bin"
    content = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit
    path.write_bytes(content)

    async def main() -> Any:
        with path.open("rb") as file:
            return await port.module.connect_check_send(
                tls_echo.target, file, tls=client, read_reply=True, max_reply_bytes=2 << 20
            )

    report = port.run(main)
    assert (report.status, report.error, report.reply_end) == ("ok", None, "eof")
    assert report.bytes_sent == tls_echo.bytes_received == len(content)
    assert report.reply == content


@pytest.mark.timeout(20)
def test_bytes_sent_over_tls_after_a_deadline_never_exceeds_what_arrives(
    port: Port, ca: trustme.CA, client: ssl.SSLContext
) -> None:
    # The slow server lets the buffers fill, so the deadline strikes mid-send. Every byte
    # counted must be in a record the kernel took whole: the server reads them all,
    # however late, once the client has gone.
    payload = bytes(32 << 20)
    with LoopbackServer("slow", tls=tls_server_context(ca)) as server:

        async def main() -> Any:
            return await port.module.connect_check_send(
                server.target, payload, tls=client, timeout=0.5
            )

        report = port.run(main)
        assert report.status == "timeout" and "send" in report.error, report
        assert 0 < report.bytes_sent < len(payload)
        assert report.bytes_sent % 16384 == 0  # whole records only
        assert server.wait_bytes(report.bytes_sent, timeout=15)


@pytest.mark.timeout(20)
def test_a_send_cancelled_mid_record_breaks_the_session_cleanly(
    port: Port, ca: trustme.CA, client: ssl.SSLContext
) -> None:
    # A record cut short cannot be finished: the peer could decrypt nothing after it.
    # Like trio.SSLStream, the connection then refuses to send (SendError, no hang), and
    # still closes without trouble.
    with LoopbackServer("slow", tls=tls_server_context(ca)) as server:

        async def main() -> tuple[int, str]:
            conn = await port.module.open_connection(server.host, server.port, tls=client)
            async with conn:
                async with port.move_on_after(0.3) as scope:
                    await conn.send_all(bytes(32 << 20))
                assert scope.cancelled_caught
                sent = conn.bytes_sent
                with pytest.raises(port.module.SendError) as caught:
                    await conn.send_all(b"more")
                assert caught.value.bytes_sent == 0
                return sent, str(caught.value)

        sent, error = port.run(main)
    assert 0 < sent < 32 << 20 and sent % 16384 == 0
    assert "the TLS session broke earlier" in error


# --------------------------------------------------------------------------------------
# The reply over TLS, fan-out over TLS
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_the_reply_over_tls(port: Port, tls_echo: LoopbackServer, client: Any) -> None:
    payload = PAYLOAD * 50  # over 100 KiB: several records each way

    async def main() -> Any:
        return await port.module.connect_check_send(
            tls_echo.target, payload, tls=client, read_reply=True, max_reply_bytes=1 << 20
        )

    report = port.run(main)
    assert (report.status, report.error) == ("ok", None)
    assert report.reply == payload
    assert report.bytes_sent == len(payload)
    assert_tls_reported(report)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("options", "reply_end", "reply"),
    [
        ({}, "eof", MARKED),
        ({"max_reply_bytes": 100}, "limit", MARKED[:100]),
        ({"half_close": False, "reply_until": b"END"}, "until", MARKED),
        ({"half_close": False, "reply_idle_timeout": 0.2}, "idle", MARKED),
    ],
)
def test_the_reply_modes_over_tls(
    port: Port,
    tls_echo: LoopbackServer,
    client: ssl.SSLContext,
    options: dict[str, Any],
    reply_end: str,
    reply: bytes,
) -> None:
    async def main() -> Any:
        return await port.module.connect_check_send(
            tls_echo.target, MARKED, tls=client, read_reply=True, **options
        )

    report = port.run(main)
    assert (report.status, report.error, report.reply_end) == ("ok", None, reply_end)
    assert report.reply == reply
    assert report.bytes_sent == len(MARKED)
    assert_tls_reported(report)


@pytest.mark.timeout(10)
def test_send_to_many_over_tls(port: Port, tls_sink: LoopbackServer, client: Any) -> None:
    async def main() -> Any:
        return await port.module.send_to_many([tls_sink.target] * 5, PAYLOAD, tls=client)

    reports = port.run(main)
    assert [r.status for r in reports] == ["ok"] * 5
    assert all(r.tls_version and r.bytes_sent == len(PAYLOAD) for r in reports)
    assert tls_sink.wait_bytes(5 * len(PAYLOAD))


@pytest.mark.timeout(10)
def test_stream_to_many_over_tls(port: Port, ca: trustme.CA, client: ssl.SSLContext) -> None:
    # The second target's certificate is for another name: its own "error", the others ok.
    with (
        LoopbackServer("sink", tls=tls_server_context(ca)) as good,
        LoopbackServer("sink", tls=tls_server_context(ca, "other.test")) as wrong,
    ):
        targets = [good.target, wrong.target, good.target]

        async def main() -> list[Any]:
            got = []
            async with port.module.stream_to_many(targets, PAYLOAD, tls=client) as reports:
                async for report in reports:
                    got.append(report)
            return sorted(got, key=lambda report: report.index)

        reports = port.run(main)
        assert good.wait_bytes(2 * len(PAYLOAD))
    assert [r.status for r in reports] == ["ok", "error", "ok"]
    assert "IP address mismatch" in reports[1].error  # the target is an IP literal
    assert all(r.tls_version for r in (reports[0], reports[2]))


# --------------------------------------------------------------------------------------
# A handshake that never ends: cancelled or timed out, with no socket left open
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_cancelled_mid_handshake_leaves_no_socket(port: Port, client: ssl.SSLContext) -> None:
    # A plain sink accepts and reads the ClientHello, and never answers it.
    with LoopbackServer("sink") as server:

        async def opening() -> Any:
            return await port.module.open_connection(server.host, server.port, tls=client)

        async def handshake_started() -> None:
            assert await port.to_thread(server.wait_bytes, 1)

        async def main() -> Any:
            return await port.run_and_cancel(opening, handshake_started)

        outcome = port.run(main)
    assert outcome.cancelled
    assert isinstance(outcome.error, port.Cancelled)
    # The fd check of every spec test proves the socket was closed.


@pytest.mark.timeout(10)
def test_a_handshake_past_the_deadline_is_a_timeout_report(
    port: Port, client: ssl.SSLContext
) -> None:
    with LoopbackServer("sink") as server:

        async def main() -> Any:
            return await port.module.connect_check_send(
                server.target, PAYLOAD, tls=client, timeout=0.3
            )

        report = port.run(main)
    assert (report.status, report.bytes_sent) == ("timeout", 0)
    assert report.error == "TimeoutError: deadline of 0.3 s passed during tls"
    assert report.tls_s >= 0.2
    assert_phases_add_up(report)
