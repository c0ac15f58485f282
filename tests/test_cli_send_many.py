"""``trio-sockets send-many``: a file of targets, streamed, with a report per line.

Called in-process through ``main([...])`` (standard output is then not a terminal, so
reports are JSON lines), once with a terminal faked for the text output, and once as a
subprocess, whose reader goes away early. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import cli_support
import pytest
import trio
from cli_support import BACKENDS, cli_process, refusing_target

from trio_sockets import asyncio_port, trio_port
from trio_sockets._reports import ReportBuilder, SendReport
from trio_sockets._targets import Target
from trio_sockets.cli import main
from trio_sockets.cli._send_many import _after_a_stop, _consume, _Run, target_lines
from trio_sockets.testing import LoopbackServer

pytestmark = pytest.mark.timeout(30)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    """:func:`cli_support.run`, with standard output read as JSON lines."""
    status, out, err = cli_support.run(capsys, *argv)
    return status, [json.loads(line) for line in out.splitlines()], err


def test_target_lines_skip_blanks_and_comments() -> None:
    lines = [b"# header\n", b"a.test:1\n", b"\n", b"  \t\n", b"  b.test:2  \n", b"\xff:3\n"]
    assert list(target_lines(iter(lines))) == [(2, "a.test:1"), (5, "b.test:2"), (6, "\\xff:3")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_line_reports_once_with_its_line_number(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, backend: str
) -> None:
    with LoopbackServer("sink") as sink, refusing_target() as refused:
        path = tmp_path / "targets.txt"
        path.write_text(f"# targets\n{sink.target}\n\nnot a target\n{refused}\n{sink.target}\n")
        status, reports, err = run(
            capsys, "send-many", str(path), "--data", "hello", "--backend", backend
        )
        assert sink.wait_bytes(2 * len(b"hello"))
    assert status == 1  # two lines failed
    by_line = {r["line"]: r for r in reports}
    assert sorted(by_line) == [2, 4, 5, 6]
    assert [by_line[n]["status"] for n in (2, 4, 5, 6)] == ["ok", "error", "error", "ok"]
    assert by_line[4]["target"] == "not a target"
    assert (
        by_line[4]["error"].startswith("TargetError: ") and "'not a target'" in by_line[4]["error"]
    )
    assert by_line[5]["error"].startswith("ConnectionRefusedError")
    assert sorted(r["index"] for r in reports) == [0, 1, 2, 3]
    assert "send-many: 4 targets (2 ok, 2 error)" in err


def test_all_ok_exits_0_and_the_payload_may_come_from_stdin(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer("sink") as sink:
        path = tmp_path / "targets.txt"
        path.write_text(f"{sink.target}\n" * 50)
        monkeypatch.setattr(sys, "stdin", _Stdin(b"from stdin"))
        status, reports, err = run(capsys, "send-many", str(path), "--concurrency", "7")
        assert sink.wait_bytes(50 * len(b"from stdin"))
    assert status == 0
    assert len(reports) == 50 and all(r["ok"] and r["bytes_sent"] == 10 for r in reports)
    assert "50 targets (50 ok)" in err


def test_the_targets_may_come_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer("sink") as sink:
        monkeypatch.setattr(sys, "stdin", _Stdin(f"{sink.target}\n{sink.target}\n".encode()))
        status, reports, _ = run(capsys, "send-many", "-", "--data", "x")
    assert status == 0 and [r["line"] for r in sorted(reports, key=lambda r: r["line"])] == [1, 2]


@pytest.mark.parametrize("backend", BACKENDS)
def test_fail_fast_stops_at_the_first_failure_and_every_target_read_has_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, backend: str
) -> None:
    # Line 1 waits for a reply that never comes (the server holds its side open), so it
    # is in flight when line 2 is refused; the lines read after it have not run.
    with LoopbackServer("hold") as hold, refusing_target() as refused:
        path = tmp_path / "targets.txt"
        path.write_text(f"{hold.target}\n{refused}\n" + f"{hold.target}\n" * 20)
        status, reports, err = run(
            capsys, "send-many", str(path), "--data", "x", "--reply", "--fail-fast",
            "--concurrency", "2", "--backend", backend,
        )  # fmt: skip
    assert status == 1
    by_line = {r["line"]: r for r in reports}
    assert len(by_line) == len(reports) >= 2  # one line per target read, no more
    assert sorted(by_line) == list(range(1, len(reports) + 1))  # read in order, then stopped
    assert by_line[2]["status"] == "error"
    assert by_line[2]["error"].startswith("ConnectionRefusedError")
    others = [r for n, r in by_line.items() if n != 2]
    assert {r["status"] for r in others} == {"cancelled"}
    assert all(r["error"].startswith("Cancelled: --fail-fast") for r in others)
    assert sorted(r["index"] for r in reports) == list(range(len(reports)))
    summary = f"send-many: {len(reports)} targets (1 error, {len(reports) - 1} cancelled)"
    assert summary in err
    assert "--fail-fast stopped the run after the first failure, before the rest" in err
    assert max(len(line) for line in err.splitlines()) <= 80


def test_fail_fast_gives_a_line_that_is_not_a_target_its_error_not_cancelled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Its error report is made at once, as it is read, so a run can stop on another
    # failure before taking it: it is still reported as what it is.
    run = _Run(argparse.Namespace(jsonl=True, fail_fast=True), total=None)
    run.cancelled([(3, (4, "not a target")), (4, (5, "127.0.0.1:80"))])
    out, _ = capsys.readouterr()
    reports = [json.loads(line) for line in out.splitlines()]
    assert [(r["line"], r["index"], r["status"]) for r in reports] == [
        (4, 3, "error"),
        (5, 4, "cancelled"),
    ]
    assert reports[0]["error"].startswith("TargetError: ")
    assert reports[1]["target"] == "127.0.0.1:80"
    assert reports[1]["error"].startswith("Cancelled: --fail-fast")
    assert run.counts == {"error": 1, "cancelled": 1}


def test_reply_options_reach_each_target(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with LoopbackServer("echo") as echo:
        path = tmp_path / "targets.txt"
        path.write_text(f"{echo.target}\n" * 3)
        status, reports, _ = run(
            capsys, "send-many", str(path), "--data", "ping\n", "--no-half-close",
            "--reply-until", r"\n", "--timeout", "5",
        )  # fmt: skip
    assert status == 0
    assert [(r["reply"], r["reply_end"]) for r in reports] == [("ping\n", "until")] * 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["send-many", "{missing}", "--data", "x"], "cannot read TARGETS_FILE"),
        (["send-many", "-"], "give --data TEXT or --file PATH"),
        (["send-many", "{targets}", "--concurrency", "0"], "positive integer"),
        (["send-many", "{targets}", "--file", "{missing}"], "cannot read --file"),
        (["send-many", "{targets}", "--timeout", "-1"], "non-negative"),
    ],
)
def test_bad_usage_exits_2_before_any_io(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    with LoopbackServer("sink") as sink:
        targets = tmp_path / "targets.txt"
        targets.write_text(f"{sink.target}\n")
        names = {"missing": str(tmp_path / "missing"), "targets": str(targets)}
        status = main([arg.format(**names) for arg in argv])
        _, err = capsys.readouterr()
        assert status == 2
        assert message in err
        assert sink.connections == 0


def test_a_regular_file_payload_goes_to_every_target(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(bytes(range(256)) * 1000)
    with LoopbackServer("sink") as sink:
        path = tmp_path / "targets.txt"
        path.write_text(f"{sink.target}\n" * 4)
        status, reports, _ = run(capsys, "send-many", str(path), "--file", str(payload))
        assert sink.wait_bytes(4 * 256_000)
    assert status == 0 and [r["bytes_sent"] for r in reports] == [256_000] * 4


def test_a_payload_that_never_ends_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("127.0.0.1:9\n")
    status = main(["send-many", str(targets), "--file", "/dev/zero"])
    assert status == 2
    assert "larger than 64 MiB" in capsys.readouterr().err


def test_text_lines_on_a_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer("sink") as sink, refusing_target() as refused:
        path = tmp_path / "targets.txt"
        path.write_text(f"{sink.target}\n{refused}\n")
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
        status = main(["send-many", str(path), "--data", "x", "--concurrency", "1"])
        out, _ = capsys.readouterr()
    assert status == 1
    first, second = out.splitlines()
    assert first.startswith(f"ok      line 1: {sink.target} ({sink.target}): sent 1 B in ")
    assert second.startswith(f"error   line 2: {refused}: ConnectionRefusedError")


def test_reports_reach_a_redirected_stdout_while_progress_shows_on_the_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `send-many FILE > out.jsonl` at a terminal: the progress bar is on stderr, and
    # every report must still land in the file, not on the screen.
    with LoopbackServer("sink") as sink, refusing_target() as refused:
        path = tmp_path / "targets.txt"
        path.write_text(f"{sink.target}\n{refused}\n")
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        status = main(["send-many", str(path), "--data", "x", "--concurrency", "1"])
        out, _ = capsys.readouterr()
    assert status == 1
    assert [json.loads(line)["line"] for line in out.splitlines()] == [1, 2]


def test_as_a_subprocess_whose_reader_goes_away(tmp_path: Path) -> None:
    with LoopbackServer("sink") as sink:
        path = tmp_path / "targets.txt"
        path.write_text(f"{sink.target}\n" * 20_000)
        with cli_process("send-many", str(path), "--data", "x") as process:
            assert process.stdout is not None and process.stderr is not None
            first = json.loads(process.stdout.readline())
            process.stdout.close()  # like `| head -1`
            err = process.stderr.read()
            status = process.wait(timeout=20)
    assert first["ok"] and first["line"] >= 1
    assert status == 0, err
    assert "Traceback" not in err
    assert "standard output was closed" in err


class _Stdin:
    """A stand-in for ``sys.stdin``: its ``buffer`` holds the given bytes."""

    def __init__(self, data: bytes) -> None:
        import io

        self.buffer = io.BytesIO(data)


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_ctrl_c_exits_130_without_a_traceback(tmp_path: Path, backend: str) -> None:
    with LoopbackServer("hold") as hold:  # reads, never answers nor closes
        path = tmp_path / "targets.txt"
        path.write_text(f"{hold.target}\n" * 5)
        argv = ("send-many", str(path), "--data", "x", "--reply", "--timeout", "30")
        with cli_process(*argv, "--backend", backend) as process:
            assert hold.wait_bytes(5)  # every workflow is waiting for its reply
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


class _StoppedStream:
    """A fan-out's reports: one failure, then reports already ended and buffered."""

    def __init__(self, first: SendReport, buffered: list[SendReport]) -> None:
        self.first, self.buffered = first, buffered

    def __aiter__(self) -> _StoppedStream:
        return self

    async def __anext__(self) -> SendReport:
        if self.first is None:
            raise AssertionError("read on after the run stopped")
        first, self.first = self.first, None  # type: ignore[assignment]
        return first

    def taken_late(self) -> list[SendReport]:
        late, self.buffered = self.buffered, []
        return late


def test_fail_fast_shows_reports_that_ended_before_the_stop_as_they_ended(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A workflow that ended while the failure was being taken waits in the fan-out's
    # buffer: its bytes went out, so its line says ok, not cancelled.
    target = Target.parse("127.0.0.1:9")
    failed = SendReport(target=target, status="error", error="refused", index=0)
    ended = SendReport(target=target, status="ok", bytes_sent=1, index=1)
    run = _Run(argparse.Namespace(jsonl=True, fail_fast=True), total=None)
    unreported = {0: (1, "127.0.0.1:9"), 1: (2, "127.0.0.1:9"), 2: (3, "127.0.0.1:9")}
    stream = _StoppedStream(failed, [ended])
    trio.run(_consume, stream, run, unreported)
    _after_a_stop(stream, run, unreported)  # once the fan-out's block has exited
    out, _ = capsys.readouterr()
    reports = [json.loads(line) for line in out.splitlines()]
    assert [(r["line"], r["status"]) for r in reports] == [
        (1, "error"),
        (2, "ok"),
        (3, "cancelled"),  # still in flight: reported cancelled
    ]
    assert unreported == {2: (3, "127.0.0.1:9")}
    assert run.stopped_early
    for port in (trio_port, asyncio_port):  # what the CLI asks of each port's stream
        assert callable(port._ReportStream.taken_late)


class _GoneStdout:
    """A standard output whose reader went away."""

    def write(self, text: str) -> int:
        raise BrokenPipeError

    def flush(self) -> None:
        pass


def test_a_closed_stdout_takes_no_late_reports_and_is_no_fail_fast_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nobody reads the reports any more: a report that ended meanwhile must not count,
    # nor turn the stop into a --fail-fast one, nor change the status.
    target = Target.parse("127.0.0.1:9")
    shown = SendReport(target=target, status="ok", bytes_sent=1, index=0)
    late = SendReport(target=target, status="error", error="refused", index=1)
    monkeypatch.setattr(sys, "stdout", _GoneStdout())
    monkeypatch.setattr("trio_sockets.cli._send_many.silence_stdout", lambda: None)
    run = _Run(argparse.Namespace(jsonl=True, fail_fast=True), total=None)
    unreported = {0: (1, "127.0.0.1:9"), 1: (2, "127.0.0.1:9")}
    stream = _StoppedStream(shown, [late])
    trio.run(_consume, stream, run, unreported)
    _after_a_stop(stream, run, unreported)
    assert run.reader_gone and not run.stopped_early
    assert run.counts == {"ok": 1} and run.status == 0
    assert stream.buffered == [late]  # not taken


@pytest.mark.parametrize("port", [trio_port, asyncio_port], ids=["trio", "asyncio"])
def test_taken_late_has_the_buffered_reports_and_those_whose_hand_over_was_cut(
    port: Any,
) -> None:
    # A workflow that ended while the fan-out was stopping could not hand its report
    # over: it is in the fan-out's `running`, beside the ones still running.
    target = Target.parse("127.0.0.1:9")
    buffered = SendReport(target=target, status="ok", index=0)
    ended = SendReport(target=target, status="ok", index=1)
    running: dict[int, Any] = {1: ended, 2: ReportBuilder(target, 0.0, 2)}

    def late() -> list[SendReport]:
        if port is trio_port:
            send, receive = trio.open_memory_channel[SendReport](4)
            send.send_nowait(buffered)
            return trio_port._ReportStream(receive, running).taken_late()
        queue: asyncio.Queue[SendReport | None] = asyncio.Queue()
        queue.put_nowait(buffered)
        queue.put_nowait(None)  # the end of the stream is no report
        return asyncio_port._ReportStream(queue, running).taken_late()

    assert late() == [buffered, ended]
