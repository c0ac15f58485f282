"""``trio-sockets send``: streamed payloads, replies shown and saved, messages, exit codes.

In-process through ``main`` where the output is enough, as a subprocess where the test
needs a real standard input or a standard output whose reader goes away. Every
behaviour runs on every backend. Loopback servers only.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import BACKENDS, cli_process, command, refusing_target, run

from trio_sockets.cli import main
from trio_sockets.testing import LoopbackServer

MiB = 1 << 20


def assert_fits_80_columns(text: str) -> None:
    assert all(len(line) <= 80 for line in text.splitlines()), text


@contextlib.contextmanager
def text_server(reply: bytes) -> Iterator[str]:
    """A one-shot server that sends ``reply`` once it has read the request, then closes."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        import threading

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(reply)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield f"127.0.0.1:{port}"
        thread.join(10)


# --------------------------------------------------------------------------------------
# Streaming: stdin as it arrives, files and endless sources in bounded memory
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_stdin_is_sent_as_it_arrives_after_connecting(backend: str) -> None:
    # (printf 'PING\r\n'; sleep ...) | trio-sockets send: PING goes out at once, while
    # standard input is still open, as netcat does it.
    with LoopbackServer("sink") as server:
        argv = ("send", server.target, "--backend", backend, "--json")
        with cli_process(*argv, stdin=subprocess.PIPE) as proc:
            assert proc.stdin is not None
            proc.stdin.write("PING\r\n")
            proc.stdin.flush()
            assert server.wait_bytes(6, timeout=20), "nothing arrived while stdin was open"
            assert proc.poll() is None  # still sending: stdin is not at its end
            out, err = proc.communicate("MORE\r\n", timeout=20)  # then end of file
        assert server.wait_bytes(12)
    assert proc.returncode == 0, err
    assert json.loads(out)["bytes_sent"] == 12


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_large_file_streams_in_bounded_memory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, backend: str
) -> None:
    size = 128 * MiB
    path = tmp_path / "sparse.bin"
    with path.open("wb") as file:
        file.truncate(size)  # sparse: costs no disk
    with LoopbackServer("sink") as server:
        tracemalloc.start()
        try:
            status, out, _ = run(capsys, "send", server.target, "--file", str(path),
                                 "--backend", backend, "--json", "--timeout", "50")  # fmt: skip
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert server.wait_bytes(size)
    assert status == 0, out
    assert json.loads(out)["bytes_sent"] == size
    assert peak < 4 * MiB, f"peak {peak} bytes for a {size}-byte file"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_endless_file_is_sent_until_the_deadline(
    capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    with LoopbackServer("sink") as server:
        tracemalloc.start()
        try:
            status, out, _ = run(capsys, "send", server.target, "--file", "/dev/zero",
                                 "--timeout", "0.5", "--backend", backend, "--json")  # fmt: skip
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    report = json.loads(out)
    assert status == 1
    assert report["status"] == "timeout"
    assert report["bytes_sent"] > 0
    assert peak < 4 * MiB


@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_deadline_applies_while_stdin_is_quiet(backend: str) -> None:
    with LoopbackServer("sink") as server:
        argv = ("send", server.target, "--backend", backend, "--timeout", "0.5")
        # stdin: open, and nothing ever written
        with cli_process(*argv, stdin=subprocess.PIPE) as proc:
            proc.wait(timeout=20)  # not communicate(): it would close stdin first
            out, err = proc.communicate()
    assert proc.returncode == 1, err
    assert out.startswith("timeout:")
    assert "passed during send" in out


# --------------------------------------------------------------------------------------
# A closed standard output is not an error
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("extra", [[], ["--raw"], ["--json"]], ids=["text", "raw", "json"])
def test_a_reader_that_goes_away_is_not_an_error(
    unbuffered: bool, extra: list[str], backend: str
) -> None:
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    with LoopbackServer("echo") as server:
        read_end, write_end = os.pipe()
        os.close(read_end)  # `| head -1` that has already gone: every write fails
        try:
            done = subprocess.run(
                command(
                    "send",
                    server.target,
                    "--data",
                    "line\n" * 20000,
                    "--reply",
                    "--backend",
                    backend,
                    *extra,
                ),
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                timeout=50,
            )
        finally:
            os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr


# --------------------------------------------------------------------------------------
# Replies: shown readably, raw to stdout, to a file, and the cap visible
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", BACKENDS)
def test_raw_writes_the_reply_bytes_to_stdout(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path, backend: str
) -> None:
    payload = bytes(range(256)) * 64
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    with LoopbackServer("echo") as server:
        status = main(["send", server.target, "--file", str(path), "--raw",
                       "--backend", backend])  # fmt: skip
    out, err = capsysbinary.readouterr()
    assert status == 0
    assert out == payload  # binary-safe, nothing else on stdout
    assert err.startswith(b"ok: ")  # the report goes to stderr
    assert b"written to standard output" in err


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", BACKENDS)
def test_output_writes_the_reply_bytes_to_a_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, backend: str
) -> None:
    payload = bytes(range(256)) * 64
    saved = tmp_path / "reply.bin"
    with LoopbackServer("echo") as server:
        status, out, _ = run(capsys, "send", server.target, "--data", "x" * 10,
                             "--output", str(saved), "--backend", backend)  # fmt: skip
    assert status == 0
    assert saved.read_bytes() == b"x" * 10
    assert f"reply: 10 bytes, the peer closed, written to {saved}" in " ".join(out.split())
    assert_fits_80_columns(out)
    with text_server(payload) as target:
        status, out, _ = run(capsys, "send", target, "--data", "hi", "--output", str(saved))
    assert status == 0
    assert saved.read_bytes() == payload


@pytest.mark.timeout(10)
def test_output_to_a_bad_path_is_refused_before_connecting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "missing" / "reply.bin"
    with LoopbackServer("sink") as server:
        status, out, err = run(capsys, "send", server.target, "--data", "x", "--output", str(bad))
        assert not server.wait_connections(1, timeout=0.2)
    assert status == 2
    assert str(bad) in err
    assert out == ""


@pytest.mark.timeout(20)
def test_a_failed_send_leaves_the_output_file_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    saved = tmp_path / "reply.bin"
    saved.write_bytes(b"the last reply")
    with refusing_target() as target:
        status, _, _ = run(capsys, "send", target, "--data", "x", "--output", str(saved))
    assert status == 1
    assert saved.read_bytes() == b"the last reply"
    status, _, err = run(capsys, "send", target, "--data", "x", "--output", str(tmp_path))
    assert status == 2
    assert f"cannot write --output {str(tmp_path)!r}: that is a directory" in err


@pytest.mark.timeout(20)
def test_no_half_close_asks_for_the_reply(capsys: pytest.CaptureFixture[str]) -> None:
    with text_server(b"+PONG\r\n") as target:
        status, out, _ = run(capsys, "send", target, "--data", "PING\r\n", "--no-half-close")
    assert status == 0
    assert "reply: 7 bytes, the peer closed:\n  | +PONG\n" in out


@pytest.mark.timeout(20)
def test_a_long_text_reply_is_a_short_readable_preview(capsys: pytest.CaptureFixture[str]) -> None:
    reply = b"HTTP/1.0 200 OK\r\nServer: test\r\n\r\n" + b"<p>" + b"y" * 143_000 + b"</p>\n"
    with text_server(reply) as target:
        status, out, _ = run(capsys, "send", target, "--data", "GET / HTTP/1.0\r\n\r\n",
                             "--reply", "--max-reply", "1000000")  # fmt: skip
    assert status == 0
    assert_fits_80_columns(out)
    assert len(out) < 2000
    assert f"reply: {len(reply)} bytes, the peer closed:" in out
    assert "  | HTTP/1.0 200 OK\n" in out
    assert "--raw or --output FILE" in out


@pytest.mark.timeout(20)
def test_a_binary_reply_is_shown_escaped_with_its_size(capsys: pytest.CaptureFixture[str]) -> None:
    reply = bytes(range(256)) * 10
    with text_server(reply) as target:
        status, out, _ = run(capsys, "send", target, "--data", "hi", "--reply")
    assert status == 0
    assert_fits_80_columns(out)
    assert "reply: 2560 bytes, the peer closed, binary:" in out
    assert "\\x00\\x01\\x02" in out
    assert "\x00" not in out and "\x1b" not in out


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cut_reply_says_so_in_the_text_and_the_json(
    capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    with LoopbackServer("echo") as server:
        status, out, _ = run(capsys, "send", server.target, "--data", "z" * 5000, "--reply",
                             "--max-reply", "1000", "--backend", backend)  # fmt: skip
        assert status == 0
        assert "reply: 1000 bytes, cut at 1000 bytes (--max-reply)" in out
        status, _, err = run(capsys, "send", server.target, "--data", "z" * 5000, "--raw",
                             "--max-reply", "1000", "--backend", backend)  # fmt: skip
        assert "cut at 1000 bytes (--max-reply), written to standard output" in " ".join(
            err.split()
        )
        assert_fits_80_columns(err)
        status, out, _ = run(capsys, "send", server.target, "--data", "z" * 5000, "--reply",
                             "--max-reply", "1000", "--backend", backend, "--json")  # fmt: skip
    assert status == 0
    report = json.loads(out)
    assert report["reply_end"] == "limit"
    assert len(report["reply"]) == 1000


@pytest.mark.timeout(10)
@pytest.mark.parametrize("value", ["0", "-5", "lots", "1.5"])
def test_max_reply_must_be_a_positive_size(capsys: pytest.CaptureFixture[str], value: str) -> None:
    status, _, err = run(capsys, "send", "127.0.0.1:9", "--data", "x", "--max-reply", value)
    assert status == 2
    assert "--max-reply" in err
    assert repr(value) in err


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "argv",
    [
        ["send", "127.0.0.1:9", "--data", "x", "--max-reply", "99999999999999"],
        ["send", "127.0.0.1:9", "--data", "x", "--max-reply", "2147483648"],
        ["send", "127.0.0.1:9", "--data", "x", "--max-reply", "1073741825"],
        ["send", "127.0.0.1:9", "--data", "x", "--max-reply", "nan"],
        ["send", "127.0.0.1:9", "--data", "x", "--timeout", "-1e400"],
        ["send", "127.0.0.1:9", "--data", "x", "--timeout", "nan"],
        ["send", "127.0.0.1:9", "--data", "x", "--idle-timeout", "-1"],
        ["send", "127.0.0.1:9", "--data", "x", "--idle-timeout", "nan"],
        ["serve", "sink", "--port", "99999999999999"],
        ["serve", "sink", "--port", "-1"],
        ["serve", "sink", "--port", "nan"],
    ],
)
def test_numeric_options_out_of_range_are_bad_usage(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2, err
    assert argv[-2] in err
    assert repr(argv[-1]) in err
    assert "Traceback" not in err
    assert out == ""


@pytest.mark.timeout(10)
def test_max_reply_too_large_names_the_maximum(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "send", "127.0.0.1:9", "--data", "x", "--max-reply", "2147483648")
    assert status == 2
    assert "'2147483648'" in err
    assert "1073741824" in err


# --------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize("value", ["-inf", "-1", "nan", "-nan", "soon"])
@pytest.mark.parametrize("form", ["separate", "joined"])
def test_a_bad_timeout_is_named(capsys: pytest.CaptureFixture[str], value: str, form: str) -> None:
    args = ["--timeout", value] if form == "separate" else [f"--timeout={value}"]
    status, out, err = run(capsys, "send", "127.0.0.1:9", "--data", "x", *args)
    assert status == 2
    assert "argument --timeout: " in err
    assert repr(value) in err
    assert "expected one argument" not in err
    assert out == ""


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_the_refusal_is_said_once(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    with refusing_target() as target:
        status, out, _ = run(capsys, "send", target, "--data", "x", "--backend", backend)
    assert status == 1
    assert out.count("ConnectionRefusedError") == 1
    assert_fits_80_columns(out)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_a_name_that_does_not_resolve_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    # uvloop resolves in libuv, out of the test's reach: the core test covers the text.
    real = socket.getaddrinfo

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host in ("nowhere.test", b"nowhere.test"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    status, out, _ = run(capsys, "send", "nowhere.test:80", "--data", "x", "--backend", backend)
    assert status == 1
    # The resolver's error type, and the library's message, which names the host.
    assert "error: gaierror: could not resolve 'nowhere.test': [Errno -2]" in out


@pytest.mark.timeout(10)
def test_a_url_is_refused_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "send", "http://localhost:18080", "--data", "x")
    assert status == 2
    assert "is a URL; give host:port, such as 'localhost:18080'" in err
    assert err.count("http://localhost:18080") == 1
    assert out == ""


class _Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


@pytest.mark.timeout(20)
def test_a_payload_typed_at_the_terminal_gets_a_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal(io.BytesIO(b"typed\n")))
    with LoopbackServer("sink") as server:
        status, _, err = run(capsys, "send", server.target)
        assert server.wait_bytes(6)
    assert status == 0
    assert "reading the payload from the terminal: end it with Ctrl+D" in err
    status, _, err = run(capsys, "send", "127.0.0.1:9", "--data", "x", "--timeout", "0.001")
    assert "terminal" not in err


@pytest.mark.timeout(10)
def test_help_says_what_exit_0_means(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "send", "--help")
    assert status == 0
    text = " ".join(out.split())
    assert "Exit 0 when the kernel took every byte" in text
    assert "delivered" not in text
    assert_fits_80_columns(out)


@pytest.mark.timeout(10)
def test_ctrl_c_inside_an_exception_group_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trio_sockets.cli import _send

    def interrupted(args: object) -> int:
        raise BaseExceptionGroup("race", [KeyboardInterrupt(), KeyboardInterrupt()])

    monkeypatch.setattr(_send, "run_send", interrupted)
    status, _, err = run(capsys, "send", "127.0.0.1:9", "--data", "x")
    assert status == 130
    assert "interrupted" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------------------
# Reply modes: servers that never close
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", BACKENDS)
def test_no_half_close_with_an_idle_timeout(
    capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    # A server waiting for the next request never closes: the idle timeout ends the reply.
    with LoopbackServer("hold") as server:
        status, out, _ = run(capsys, "send", server.target, "--data", "PING\r\n",
                             "--no-half-close", "--idle-timeout", "0.3", "--json",
                             "--backend", backend)  # fmt: skip
        assert status == 0, out
        report = json.loads(out)
        assert (report["reply"], report["reply_end"]) == ("PING\r\n", "idle")
        status, out, _ = run(capsys, "send", server.target, "--data", "PING\r\n",
                             "--no-half-close", "--idle-timeout", "0.3",
                             "--backend", backend)  # fmt: skip
    assert status == 0
    assert "reply: 6 bytes, idle timeout:\n  | PING\n" in out


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("until", ["\\r\\n", "\\x0d\\x0a"])
def test_reply_until_takes_escapes(
    capsys: pytest.CaptureFixture[str], backend: str, until: str
) -> None:
    with LoopbackServer("hold") as server:
        status, out, _ = run(capsys, "send", server.target, "--data", "+PONG\r\n",
                             "--no-half-close", "--reply-until", until, "--timeout", "5",
                             "--backend", backend)  # fmt: skip
    assert status == 0, out
    assert "reply: 7 bytes, --reply-until matched:\n  | +PONG\n" in out


@pytest.mark.timeout(10)
@pytest.mark.parametrize("until", ["\\q", "\\x4", ""])
def test_reply_until_bad_escapes_are_named(capsys: pytest.CaptureFixture[str], until: str) -> None:
    status, _, err = run(capsys, "send", "127.0.0.1:9", "--data", "x", "--reply-until", until)
    assert status == 2
    assert "--reply-until" in err
    assert f"'{until}'" in err  # as typed: backslashes not doubled
    assert "\\\\" not in err.split(";")[0]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", BACKENDS)
def test_data_takes_the_same_escapes(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    with LoopbackServer("echo") as server:
        status, out, _ = run(capsys, "send", server.target, "--data", "PING\\r\\n\\t\\x41\\\\q",
                             "--reply", "--json", "--backend", backend)  # fmt: skip
    assert status == 0, out
    report = json.loads(out)
    assert report["bytes_sent"] == 10
    assert report["reply"] == "PING\r\n\tA\\q"


@pytest.mark.timeout(10)
def test_data_bad_escapes_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "send", "127.0.0.1:9", "--data", "\\xZZ")
    assert status == 2
    assert "argument --data: unknown escape '\\x' in '\\xZZ'" in err
    assert out == ""


@pytest.mark.timeout(10)
@pytest.mark.parametrize("value", ["-1", "-inf", "nan", "0"])
def test_a_bad_idle_timeout_is_named(capsys: pytest.CaptureFixture[str], value: str) -> None:
    status, _, err = run(capsys, "send", "127.0.0.1:9", "--data", "x", "--idle-timeout", value)
    assert status == 2
    assert "argument --idle-timeout" in err
    assert repr(value) in err


@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("source", ["--file", "stdin"])
def test_ctrl_c_during_a_file_send_says_how_many_bytes_went_out(
    tmp_path: Path, backend: str, source: str
) -> None:
    # A slow reader holds the send back; Ctrl+C comes once bytes are arriving. The count
    # printed is what the kernel took, so the reader gets exactly that many in the end.
    # Standard input redirected from a file (`< big.bin`) is a file too.
    big = tmp_path / "big.bin"
    with open(big, "wb") as file:
        file.truncate(2**30)  # sparse: a GiB of zeros that takes no disk
    with LoopbackServer("slow") as slow, open(big, "rb") as stdin:
        argv: tuple[str, ...] = ("send", slow.target, "--backend", backend)
        if source == "--file":
            argv += ("--file", str(big))
        with cli_process(*argv, stdin=stdin) as process:
            assert slow.wait_bytes(100_000)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=20)
        assert process.returncode == 130, err
        assert "Traceback" not in err
        name = "'.*big\\.bin'" if source == "--file" else "standard input"
        found = re.search(rf"send: ([\d,]+) bytes of {name} sent before Ctrl\+C", err)
        assert found, err
        sent = int(found[1].replace(",", ""))
        assert 100_000 <= sent < 2**30
        assert slow.wait_bytes(sent), (slow.bytes_received, sent)  # no fewer arrived...
        assert slow.bytes_received == sent  # ...and no more
