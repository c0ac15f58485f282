"""The I/O-free core, continued: errors, attempts, reports, reply assembly; no event loop."""

from __future__ import annotations

import errno
import json
import socket
import tracemalloc

import pytest

from trio_sockets._checks import local_address_error
from trio_sockets._errors import (
    ConnectError,
    SendError,
    bare_exception,
    describe_error,
    resolve_error,
)
from trio_sockets._reply import ReplyBuffer
from trio_sockets._reports import (
    FAIL_FAST_TEXT,
    PHASES,
    Attempt,
    AttemptLog,
    ReportBuilder,
    SendReport,
    cancelled_report,
)
from trio_sockets._targets import Target

pytestmark = pytest.mark.timeout(30)

V4, V6 = socket.AF_INET, socket.AF_INET6


def refused() -> ConnectionRefusedError:
    return ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")


def unreachable() -> OSError:
    return OSError(errno.EHOSTUNREACH, "No route to host")


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def failed_log(errors: list[OSError]) -> tuple[AttemptLog, ConnectError]:
    log = AttemptLog(start=100.0)
    for n, exc in enumerate(errors):
        index = log.started((f"192.0.2.{n + 1}", 80), V4, 100.0 + n)
        log.ended(index, "failed", 100.5 + n, describe_error(exc))
    return log, log.connect_error(Target("example.test", 80), errors, 100.0 + len(errors))


def test_connect_error_with_a_common_errno() -> None:
    _, exc = failed_log([refused(), refused(), refused()])
    assert isinstance(exc, OSError)
    assert exc.errno == errno.ECONNREFUSED
    assert [a.address for a in exc.attempts] == [
        ("192.0.2.1", 80),
        ("192.0.2.2", 80),
        ("192.0.2.3", 80),
    ]
    assert [a.started_s for a in exc.attempts] == [0.0, 1.0, 2.0]
    assert [a.ended_s for a in exc.attempts] == [0.5, 1.5, 2.5]
    assert {a.outcome for a in exc.attempts} == {"failed"}
    assert len(exc.errors) == 3
    text = str(exc)
    assert text.startswith("all 3 connection attempts to example.test:80 failed: ")
    assert "[Errno" not in text.partition(":")[0]  # no "[Errno 111]" prefix of its own
    for n in (1, 2, 3):
        assert f"192.0.2.{n}:80: ConnectionRefusedError: [Errno 111] Connection refused" in text
    # Each attempt is listed in order.
    assert text.index("192.0.2.1:80") < text.index("192.0.2.2:80") < text.index("192.0.2.3:80")


def test_connect_error_with_mixed_errnos() -> None:
    _, exc = failed_log([refused(), unreachable()])
    assert exc.errno is None
    assert [a.error for a in exc.attempts] == [
        "ConnectionRefusedError: [Errno 111] Connection refused",
        "OSError: [Errno 113] No route to host",
    ]


def test_connect_error_without_errno() -> None:
    _, exc = failed_log([OSError("no errno"), OSError("none either")])
    assert exc.errno is None


def test_connect_error_single_attempt() -> None:
    _, exc = failed_log([refused()])
    assert exc.errno == errno.ECONNREFUSED
    assert str(exc) == (
        "connection to example.test:80 failed: "
        "192.0.2.1:80: ConnectionRefusedError: [Errno 111] Connection refused"
    )


def test_connect_error_closes_attempts_still_open() -> None:
    log = AttemptLog(start=0.0)
    first = log.started(("192.0.2.1", 80), V4, 0.0)
    log.started(("2001:db8::1", 80, 0, 0), V6, 0.25)
    log.ended(first, "failed", 0.5, "OSError: boom")
    exc = log.connect_error(Target("example.test", 80), [OSError("boom")], 0.75)
    assert [(a.outcome, a.ended_s) for a in exc.attempts] == [("failed", 0.5), ("cancelled", 0.75)]


def test_resolve_error() -> None:
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    exc = resolve_error(Target("nowhere.test", 80), gai)
    assert isinstance(exc, ConnectError)
    assert exc.attempts == ()
    assert exc.errors == (gai,)
    assert exc.errno is None  # no attempt, so no errno to share
    assert str(exc) == "could not resolve 'nowhere.test': [Errno -2] Name or service not known"


def test_send_error() -> None:
    exc = SendError(errno.ECONNRESET, "send failed after 3 of 10 bytes", bytes_sent=3)
    assert isinstance(exc, OSError)
    assert (exc.errno, exc.bytes_sent) == (errno.ECONNRESET, 3)
    plain = SendError(None, "boom", bytes_sent=0)
    assert (plain.errno, str(plain), plain.bytes_sent) == (None, "boom", 0)


def noted(exc: BaseException, note: str) -> BaseException:
    exc.add_note(note)
    return exc


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (refused(), "ConnectionRefusedError: [Errno 111] Connection refused"),
        (ValueError("bad"), "ValueError: bad"),
        (TimeoutError(), "TimeoutError"),
        # Each framework's wording of a refused connect: one text on every port.
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Error connecting to ('::1', 1): x"),
            "ConnectionRefusedError: [Errno 111] Connection refused",
        ),
        (
            OSError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 1)"),
            "ConnectionRefusedError: [Errno 111] Connection refused",
        ),
        (
            noted(OSError(errno.EADDRINUSE, "x"), "mine"),
            "OSError: [Errno 98] Address already in use (mine)",
        ),
        # Our own errors and the resolver's keep their words.
        (
            SendError(errno.EPIPE, "send failed after 1 of 2 bytes", bytes_sent=1),
            "SendError: [Errno 32] send failed after 1 of 2 bytes",
        ),
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "gaierror: [Errno -2] Name or service not known",
        ),
        (UnicodeError("label too long"), "UnicodeError: label too long"),
        (
            failed_log([refused(), refused()])[1],
            "ConnectionRefusedError: [Errno 111] Connection refused",
        ),
    ],
)
def test_describe_error(exc: BaseException, text: str) -> None:
    assert describe_error(exc) == text


def test_resolve_error_for_a_name_the_encoder_refuses() -> None:
    bad = UnicodeError("Codepoint U+2603 not allowed")
    exc = resolve_error(Target("x.test", 80), bad)
    assert (exc.attempts, exc.errors, exc.errno) == ((), (bad,), None)
    assert str(exc) == "could not resolve 'x.test': UnicodeError: Codepoint U+2603 not allowed"


def test_bare_exception_picks_the_one_that_ended_the_group() -> None:
    class Cancelled(BaseException):
        pass

    bug, interrupt = RuntimeError("bug"), KeyboardInterrupt()
    nested = BaseExceptionGroup("outer", [Cancelled(), BaseExceptionGroup("inner", [bug])])
    assert bare_exception(nested, Cancelled) is bug
    both = BaseExceptionGroup("g", [Cancelled(), bug, interrupt])
    assert bare_exception(both, Cancelled) is interrupt
    first = Cancelled()
    assert bare_exception(BaseExceptionGroup("g", [first, Cancelled()]), Cancelled) is first


def test_describe_error_of_a_name_that_did_not_resolve_names_it() -> None:
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    text = describe_error(resolve_error(Target("nowhere.test", 80), gai))
    assert (
        text == "gaierror: could not resolve 'nowhere.test': [Errno -2] Name or service not known"
    )
    idna = describe_error(resolve_error(Target("x.test", 80), UnicodeError("label empty")))
    assert idna == "ConnectError: could not resolve 'x.test': UnicodeError: label empty"


def test_describe_error_keeps_the_summary_of_mixed_failures() -> None:
    _, exc = failed_log([refused(), unreachable()])
    assert describe_error(exc) == f"ConnectError: {exc}"
    assert describe_error(exc).startswith("ConnectError: all 2 connection attempts")


# --------------------------------------------------------------------------------------
# Attempts, reports and the report builder
# --------------------------------------------------------------------------------------


def test_attempt_log_keeps_start_order_and_relative_times() -> None:
    log = AttemptLog(start=10.0)
    a = log.started(("2001:db8::1", 80, 0, 0), V6, 10.0)
    b = log.started(("192.0.2.1", 80), V4, 10.25)
    log.ended(b, "connected", 10.5)  # the later attempt ends first
    log.ended(a, "cancelled", 10.5)
    assert log.attempts == [
        Attempt(("2001:db8::1", 80, 0, 0), V6, 0.0, 0.5, "cancelled"),
        Attempt(("192.0.2.1", 80), V4, 0.25, 0.5, "connected"),
    ]
    # close_all only touches attempts still open.
    assert log.close_all(99.0) == tuple(log.attempts)


def test_report_builder_phases() -> None:
    report = ReportBuilder(Target("example.test", 80), start=50.0)
    assert report.phase == "resolve"
    index = report.started(("192.0.2.1", 80), V4, 50.5)
    report.connect_at = 50.5
    report.ended(index, "connected", 51.0)
    report.address = ("192.0.2.1", 80)
    report.check_at = 51.0
    report.send_at = 51.25
    report.bytes_sent = 7
    report.reply_at = 52.0
    report.reply = b"pong"
    result = report.finish("ok", 54.0)
    assert result == SendReport(
        target=Target("example.test", 80),
        status="ok",
        address=("192.0.2.1", 80),
        bytes_sent=7,
        reply=b"pong",
        error=None,
        attempts=(Attempt(("192.0.2.1", 80), V4, 0.5, 1.0, "connected"),),
        resolve_s=0.5,
        connect_s=0.5,
        check_s=0.25,
        send_s=0.75,
        reply_s=2.0,
        total_s=4.0,
    )
    assert result.ok
    phase_sum = sum(getattr(result, f"{phase}_s") for phase in PHASES)
    assert phase_sum == result.total_s


def test_report_builder_timeout_mid_connect() -> None:
    report = ReportBuilder(Target("example.test", 80), start=0.0)
    report.connect_at = 0.125
    report.started(("2001:db8::1", 80, 0, 0), V6, 0.125)
    report.started(("192.0.2.1", 80), V4, 0.375)
    assert report.timeout_text(1.5) == "TimeoutError: deadline of 1.5 s passed during connect"
    result = report.finish("timeout", 1.5, report.timeout_text(1.5))
    assert (result.status, result.ok, result.address, result.bytes_sent) == (
        "timeout",
        False,
        None,
        0,
    )
    assert (result.resolve_s, result.connect_s, result.total_s) == (0.125, 1.375, 1.5)
    assert (result.check_s, result.send_s, result.reply_s) == (0.0, 0.0, 0.0)
    assert [(a.started_s, a.ended_s, a.outcome) for a in result.attempts] == [
        (0.125, 1.5, "cancelled"),
        (0.375, 1.5, "cancelled"),
    ]


def test_report_builder_error_in_first_phase() -> None:
    report = ReportBuilder(Target("nowhere.test", 80), start=2.0)
    result = report.finish("error", 2.25, "ConnectError: could not resolve")
    assert (result.status, result.error, result.resolve_s, result.total_s) == (
        "error",
        "ConnectError: could not resolve",
        0.25,
        0.25,
    )
    assert result.attempts == ()
    assert result.reply is None


def test_cancelled_report() -> None:
    report = cancelled_report(Target("a.test", 1), FAIL_FAST_TEXT)
    assert (report.status, report.ok, report.error, report.attempts, report.total_s) == (
        "cancelled",
        False,
        FAIL_FAST_TEXT,
        (),
        0.0,
    )


def full_report(reply: bytes | None) -> SendReport:
    return SendReport(
        target=Target("2001:db8::1", 443),
        status="ok",
        address=("2001:db8::1", 443, 0, 0),
        bytes_sent=3,
        reply=reply,
        reply_end="eof",
        attempts=(
            Attempt(("2001:db8::1", 443, 0, 0), V6, 0.0, 0.5, "connected"),
            Attempt(("192.0.2.1", 443), V4, 0.25, 0.5, "cancelled", "lost the race"),
        ),
        resolve_s=0.125,
        connect_s=0.5,
        total_s=0.75,
    )


def test_send_report_to_dict_shape() -> None:
    data = full_report(b"pong").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "target": "[2001:db8::1]:443",
        "status": "ok",
        "ok": True,
        "address": ["2001:db8::1", 443, 0, 0],
        "tls_version": None,
        "tls_cipher": None,
        "bytes_sent": 3,
        "reply": "pong",
        "reply_encoding": "utf-8",
        "reply_tail_hex": None,
        "reply_end": "eof",
        "error": None,
        "attempts": [
            {
                "address": ["2001:db8::1", 443, 0, 0],
                "family": "AF_INET6",
                "started_s": 0.0,
                "ended_s": 0.5,
                "outcome": "connected",
                "error": None,
            },
            {
                "address": ["192.0.2.1", 443],
                "family": "AF_INET",
                "started_s": 0.25,
                "ended_s": 0.5,
                "outcome": "cancelled",
                "error": "lost the race",
            },
        ],
        "resolve_s": 0.125,
        "connect_s": 0.5,
        "tls_s": 0.0,
        "check_s": 0.0,
        "send_s": 0.0,
        "reply_s": 0.0,
        "total_s": 0.75,
        "index": None,
    }


@pytest.mark.parametrize(
    ("reply", "text", "encoding", "tail"),
    [
        (None, None, None, None),
        (b"", "", "utf-8", None),
        ("héllo".encode(), "héllo", "utf-8", None),
        (b"\xff\x00\x10", "ff0010", "hex", None),
        # Cut inside a character (the reply limit fell there): still text.
        ("hé".encode()[:-1], "h", "utf-8", "c3"),
        ("a€".encode()[:-1], "a", "utf-8", "e282"),
        ("😀".encode()[:-1], "", "utf-8", "f09f98"),
        # Not a cut: an invalid byte before the end, or a bad byte at the end.
        (b"\xc3(ok\xc3", "c3286f6bc3", "hex", None),
        (b"ok\xff", "6f6bff", "hex", None),
    ],
)
def test_send_report_reply_encoding(
    reply: bytes | None, text: str | None, encoding: str | None, tail: str | None
) -> None:
    data = full_report(reply).to_dict()
    assert (data["reply"], data["reply_encoding"], data["reply_tail_hex"]) == (
        text,
        encoding,
        tail,
    )
    json.dumps(data)


def test_minimal_report_to_dict_is_json() -> None:
    data = cancelled_report(Target("a.test", 1), FAIL_FAST_TEXT).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert (data["address"], data["attempts"], data["ok"]) == (None, [], False)


def test_attempt_to_dict_with_an_unknown_family() -> None:
    data = Attempt(("x", 1), 12345, 0.0, 0.0, "failed", "E").to_dict()
    assert data["family"] == "12345"
    json.dumps(data)


# --------------------------------------------------------------------------------------
# Reply assembly
# --------------------------------------------------------------------------------------


def test_reply_buffer() -> None:
    buffer = ReplyBuffer(10)
    assert (buffer.room, buffer.value(), buffer.end) == (10, b"", None)
    assert buffer.add(b"abc") is None
    buffer.add(b"")
    buffer.add(b"defg")
    assert (buffer.room, buffer.value()) == (3, b"abcdefg")
    with pytest.raises(ValueError, match=r"^chunk of 4 bytes exceeds the 3 bytes left$"):
        buffer.add(b"hijk")
    assert buffer.value() == b"abcdefg"  # a refused chunk leaves no trace
    assert buffer.add(b"hij") == "limit"
    assert (buffer.room, buffer.value(), buffer.end) == (0, b"abcdefghij", "limit")
    with pytest.raises(RuntimeError, match="the reply has ended"):
        buffer.free()


def test_reply_buffer_receives_into_its_free_space() -> None:
    buffer = ReplyBuffer(100_000)
    with buffer.free() as space:
        assert len(space) == 65536  # the first capacity, not the whole limit
        space[:2] = b"hi"
    assert buffer.received(2) is None
    assert buffer.received(0) == "eof"
    assert (buffer.value(), buffer.end) == (b"hi", "eof")
    with pytest.raises(ValueError, match="received 70000 bytes"):
        ReplyBuffer(100_000).received(70_000)


def test_reply_buffer_grows_up_to_the_limit_only() -> None:
    buffer = ReplyBuffer(100_000)
    sizes = []
    while buffer.end is None:
        with buffer.free() as space:
            sizes.append(len(space))
            space[:] = b"x" * len(space)
            count = len(space)
        buffer.received(count)
    assert sizes == [65536, 100_000 - 65536]
    assert (buffer.end, len(buffer.value())) == ("limit", 100_000)


@pytest.mark.parametrize(
    ("chunks", "end", "value"),
    [
        ([b"+OK\r\n"], "until", b"+OK\r\n"),
        ([b"+OK\r", b"\n"], "until", b"+OK\r\n"),  # the marker split across receives
        ([b"+OK", b"\r", b"\n"], "until", b"+OK\r\n"),
        ([b"a\r\nb", b"c"], None, b"a\r\nbc"),  # the reply must end with it
        ([b"\r"], None, b"\r"),
        ([b"\r\n" * 3], "until", b"\r\n" * 3),
    ],
)
def test_reply_buffer_until(chunks: list[bytes], end: str | None, value: bytes) -> None:
    buffer = ReplyBuffer(100, until=b"\r\n")
    for chunk in chunks:
        buffer.add(chunk)
    assert (buffer.end, buffer.value()) == (end, value)


def test_reply_buffer_until_wins_over_the_limit_when_both_arrive() -> None:
    buffer = ReplyBuffer(4, until=b"\n")
    assert buffer.add(b"abc\n") == "until"


def test_reply_buffer_idle() -> None:
    buffer = ReplyBuffer(10)
    buffer.add(b"ab")
    buffer.idle()
    assert (buffer.end, buffer.value()) == ("idle", b"ab")


def test_reply_buffer_memory_is_bounded_however_the_peer_splits_it() -> None:
    # A peer that trickles one byte per receive costs no object per byte.
    tracemalloc.start()
    try:
        buffer = ReplyBuffer(65536)
        while buffer.end is None:
            with buffer.free() as space:
                space[0] = 120
            buffer.received(1)
        value = buffer.value()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(value) == 65536
    assert peak < 3 * 65536, peak


def test_local_address_error_names_the_address_and_the_peer() -> None:
    assert local_address_error("127.0.0.1", socket.AF_INET, ("192.0.2.1", 80)) is None
    assert local_address_error("::1", socket.AF_INET6, ("2001:db8::1", 80, 0, 0)) is None
    exc = local_address_error("127.0.0.1", socket.AF_INET6, ("2001:db8::1", 80, 0, 0))
    assert exc is not None and exc.errno == errno.EAFNOSUPPORT
    # The OS's wording, and ours as a note, as a report describes it.
    assert describe_error(exc) == (
        "OSError: [Errno 97] Address family not supported by protocol (local_address="
        "'127.0.0.1' is an IPv4 address; it cannot reach [2001:db8::1]:80)"
    )
    exc = local_address_error("::1", socket.AF_INET, ("192.0.2.1", 80))
    assert exc is not None
    assert "is an IPv6 address; it cannot reach 192.0.2.1:80" in describe_error(exc)


def test_an_attempt_that_connected_too_late_can_be_ended_again() -> None:
    # Two attempts connect in the same tick: the loser's "connected" becomes "cancelled",
    # keeping where and when it started.
    log = AttemptLog(start=0.0)
    index = log.started(("192.0.2.1", 80), V4, 0.25)
    log.ended(index, "connected", 0.5)
    log.ended(index, "cancelled", 0.5, "another attempt connected first")
    assert log.close_all(1.0) == (
        Attempt(("192.0.2.1", 80), V4, 0.25, 0.5, "cancelled", "another attempt connected first"),
    )


def test_report_builder_phase_follows_the_marks() -> None:
    report = ReportBuilder(Target("example.test", 80), start=0.0)
    phases = [report.phase]
    for name in ("connect", "tls", "check", "send", "reply"):
        setattr(report, f"{name}_at", 1.0)
        phases.append(report.phase)
    assert phases == list(PHASES)
