"""``trio-sockets send-many``: one payload to every target of a file, streamed.

The targets file (or standard input, ``-``) holds one target per line; blank lines and
lines starting with ``#`` are skipped. It is read lazily, a line at a time, by
``stream_to_many``: a file of a million lines runs in memory bounded by
``--concurrency``, never by its length. A line that is not a target becomes that
line's error report; it does not stop the others.

Output: one report per target, as it completes. On standard output, JSON lines (one
object per report, with the ``line`` it came from) when standard output is not a
terminal or with ``--jsonl``; on a terminal, one short line of text per report. On
standard error: a progress line while it runs (only when standard error is a
terminal) with the rate, the counts and, for a regular file, an ETA; and a summary
at the end.

With ``--fail-fast`` the first report that is not ok stops the run; every target
read by then still gets its line: those that had ended with their own status, the
others (in flight, or waiting for a slot) ``cancelled``; the lines after them are not
read. So the summary counts the targets read.

Exit status: 0 when every target was ok, 1 when any was not, 2 for bad usage
(checked before any I/O), 130 on Ctrl+C. A reader of standard output that goes away
(``| head``) stops the run quietly; the status tells about the targets reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import IO, Any, BinaryIO, Final, Protocol, cast

from .._addresses import format_address
from .._errors import TargetError
from .._reports import SendReport, bad_target_report, cancelled_report
from .._targets import Target
from ._send import _data, _missing, _options, _tls, silence_stdout

__all__ = ["MAX_PAYLOAD", "run_send_many", "target_lines"]

# A payload from a stream (standard input, a pipe, a device) is held in memory once and
# sent to every target: one larger than this is refused (/dev/zero never ends). A
# regular file is sent from the file itself, whatever its size.
MAX_PAYLOAD: Final = 64 * 1024 * 1024  # bytes
# Counting the targets of a regular file first, for the ETA, reads it twice: worth it
# up to this size (some 10 million lines), not beyond.
COUNT_LIMIT: Final = 512 * 1024 * 1024  # bytes
STATUSES: Final = ("ok", "error", "timeout", "cancelled")
# Said of a target read but not done when the run stopped: in flight, or not started.
FAIL_FAST_TEXT: Final = "Cancelled: --fail-fast stopped the run before this target was done"


def _fail(message: str) -> int:
    print(f"trio-sockets send-many: error: {message}", file=sys.stderr)
    return 2


def target_lines(lines: Iterator[bytes]) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each target line: blank lines and ``#`` comments skipped.

    A line that is not UTF-8 is still yielded (with its bad bytes escaped), so that it
    becomes its line's error report rather than stopping the run.
    """
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", "backslashreplace").strip()
        if text and not text.startswith("#"):
            yield number, text


def _count_targets(path: str) -> int | None:
    """How many targets a regular file holds, if it is small enough to read twice."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > COUNT_LIMIT:
            return None
        with open(path, "rb") as file:
            return sum(1 for _ in target_lines(iter(file)))
    except OSError:
        return None


def _open_payload(
    args: argparse.Namespace, stdin: IO[bytes] | None, stack: contextlib.ExitStack
) -> bytes | BinaryIO:
    """The payload: ``--data``, ``--file`` or standard input.

    A regular file is handed to the library as it is, and sent to every target from its
    start (zero-copy where the system allows). Anything else (standard input, a pipe, a
    device) is read into memory, at most :data:`MAX_PAYLOAD`, since every target needs
    the same bytes again.

    Raises:
        OSError: the file cannot be read.
        ValueError: the payload is larger than :data:`MAX_PAYLOAD`.
    """
    data = _data(args)
    if data is not None:
        return data
    source: IO[bytes]
    if args.file is not None and args.file != "-":
        file: BinaryIO = stack.enter_context(open(args.file, "rb"))  # noqa: SIM115
        if stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return file
        source, name = file, repr(args.file)
    elif stdin is not None:
        source, name = stdin, "standard input"
    else:
        return b""
    payload = source.read(MAX_PAYLOAD + 1)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(
            f"the payload from {name} is larger than {MAX_PAYLOAD >> 20} MiB: each target "
            "is sent the same bytes, so a stream is held in memory (a regular file is not)"
        )
    return payload


def run_send_many(args: argparse.Namespace) -> int:
    """The ``send-many`` command, from parsed arguments; returns the exit status."""
    if args.backend == "asyncio+uvloop" and _missing("uvloop"):
        from . import install_hint

        return _fail(f"--backend asyncio+uvloop needs uvloop: {install_hint('uvloop')}")
    from_stdin = args.targets == "-"
    if from_stdin and args.data is None and args.file in (None, "-"):
        return _fail(
            "the targets come from standard input, so the payload cannot: give --data "
            "TEXT or --file PATH"
        )
    stdin = sys.stdin.buffer if sys.stdin is not None else None
    with contextlib.ExitStack() as stack:
        try:
            payload = _open_payload(args, stdin, stack)
        except OSError as exc:
            return _fail(f"cannot read --file {args.file!r}: {exc.strerror or exc}")
        except ValueError as exc:
            return _fail(str(exc))
        try:
            tls = _tls(args, "send-many")
        except (OSError, ValueError) as exc:
            return _fail(f"cannot load --cafile {args.cafile!r}: {exc}")
        if from_stdin:
            if stdin is None:
                return _fail("standard input is closed: there are no targets to read")
            source: IO[bytes] = stdin
            total = None
        else:
            try:
                source = stack.enter_context(open(args.targets, "rb"))
            except OSError as exc:
                return _fail(f"cannot read TARGETS_FILE {args.targets!r}: {exc.strerror or exc}")
            total = _count_targets(args.targets)
        options = {"max_concurrency": args.concurrency, **_options(args, tls)}
        run = _Run(args, total)
        with run.progress():
            _run_backend(args.backend, run, target_lines(iter(source)), payload, options)
        run.summary()
        return run.status


class _Run:
    """One run's output: each report as it comes, the progress line, the summary."""

    def __init__(self, args: argparse.Namespace, total: int | None) -> None:
        self.args = args
        self.total = total
        self.jsonl = args.jsonl or not sys.stdout.isatty()
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()
        self.reader_gone = False  # standard output's reader went away (| head)
        self.stopped_early = False  # --fail-fast
        self.read_all = False  # every line of the targets was read
        self._update: Callable[[], None] = lambda: None

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    @property
    def status(self) -> int:
        return 0 if self.counts["ok"] == self.done else 1

    @contextlib.contextmanager
    def progress(self) -> Iterator[None]:
        """A live progress line on standard error, if it is a terminal."""
        if not sys.stderr.isatty():
            yield
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns: list[Any] = [TextColumn("send-many")]
        if self.total is not None:
            columns += [BarColumn(), TaskProgressColumn(), MofNCompleteColumn()]
        else:
            columns += [TextColumn("{task.completed} done")]
        columns += [
            TextColumn("{task.fields[rate]}/s"),
            TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[error]} error[/] "
                       "[yellow]{task.fields[timeout]} timeout[/]"),
            TimeElapsedColumn(),
        ]  # fmt: skip
        if self.total is not None:
            columns.append(TimeRemainingColumn())
        # rich redirects stdout through the live display by default: right when stdout
        # is the same terminal, wrong when it was redirected (`> out.jsonl`), where the
        # reports must go to the file, not the screen.
        bar = Progress(
            *columns,
            console=Console(file=sys.stderr),
            transient=True,
            redirect_stdout=sys.stdout.isatty(),
        )
        task = bar.add_task("send-many", total=self.total, rate="0", ok=0, error=0, timeout=0)
        last = 0.0

        def update() -> None:
            nonlocal last
            now = time.monotonic()
            if now - last < 0.1 and self.done != self.total:
                return  # at most ten redraws a second, however fast the reports come
            last = now
            rate = self.done / max(now - self.started, 1e-9)
            bar.update(
                task,
                completed=self.done,
                rate=f"{rate:,.0f}",
                ok=self.counts["ok"],
                error=self.counts["error"],
                timeout=self.counts["timeout"],
            )

        self._update = update
        with bar:
            yield

    def report(self, report: SendReport, line: int) -> bool:
        """Show one report; returns False when the run should stop."""
        self.counts[report.status] += 1
        self._update()
        if not self.reader_gone:
            try:
                print(self._format(report, line), file=sys.stdout)
            except BrokenPipeError:
                # Nobody reads the reports any more (`send-many ... | head`): stop.
                self.reader_gone = True
                silence_stdout()
                return False
        if self.args.fail_fast and not report.ok:
            self.stopped_early = True
            return False
        return True

    def cancelled(self, targets: Iterable[tuple[int, tuple[int, str]]]) -> None:
        """Give each target that --fail-fast cut short its line, as the library would.

        ``targets`` are ``(index, (line, text))`` of the targets read but not reported:
        cancelled in flight, or not started yet. A line that is not a target has its
        error report, made at once, which the run stopped before taking.
        """
        for index, (line, text) in targets:
            try:
                target = Target.parse(text)
            except TargetError as exc:
                report = bad_target_report(text, exc, index)
            else:
                report = cancelled_report(target, FAIL_FAST_TEXT, index)
            self.report(report, line)

    def _format(self, report: SendReport, line: int) -> str:
        if self.jsonl:
            return json.dumps(report.to_dict() | {"line": line})
        where = "" if report.address is None else f" ({format_address(report.address)})"
        text = f"{report.status:<7} line {line}: {report.target}{where}"
        if report.ok:
            return f"{text}: sent {report.bytes_sent} B in {report.total_s:.3f} s"
        return f"{text}: {report.error}"

    def summary(self) -> None:
        elapsed = time.monotonic() - self.started
        counts = ", ".join(f"{self.counts[s]} {s}" for s in STATUSES if self.counts[s])
        rate = self.done / elapsed if elapsed > 0 else 0.0
        targets = "1 target" if self.done == 1 else f"{self.done} targets"
        text = f"send-many: {targets} ({counts or 'none'}) in {elapsed:.2f} s"
        if self.done:
            text += f", {rate:,.0f}/s"
        # The reason it stopped early on a line of its own: one line of 80 columns
        # holds the counts, not both.
        if self.stopped_early:
            text += "\n--fail-fast stopped the run after the first failure"
            if not self.read_all:
                text += ", before the rest of\nthe targets were read"
        if self.reader_gone:
            text += "\nstandard output was closed, so the rest were not sent"
        print(text, file=sys.stderr)


class _Buffered(Protocol):
    # What both ports' stream_to_many yields has, beyond the async iterator.
    def taken_late(self) -> list[SendReport]: ...


async def _consume(
    reports: AsyncIterator[SendReport], run: _Run, unreported: dict[int, tuple[int, str]]
) -> None:
    """Show each report as it comes, until the end or until the run must stop."""
    async for report in reports:
        assert report.index is not None
        if not run.report(report, unreported.pop(report.index)[0]):
            break  # leaving the block cancels what is in flight


def _after_a_stop(
    reports: AsyncIterator[SendReport], run: _Run, unreported: dict[int, tuple[int, str]]
) -> None:
    """After a --fail-fast stop, once the fan-out has exited: a line for every target read.

    The reports that ended first, waiting in the fan-out's buffer or ending while it
    stopped, are shown as they ended, not as cancelled: their bytes went out. Then the
    rest, cancelled. Nothing when standard output went away: nobody reads them, and
    they must not change the status of what was shown.
    """
    if not run.stopped_early or run.reader_gone:
        return
    for late in cast(_Buffered, reports).taken_late():
        assert late.index is not None
        run.report(late, unreported.pop(late.index)[0])
    run.cancelled(unreported.items())


def _run_backend(
    backend: str,
    run: _Run,
    lines: Iterator[tuple[int, str]],
    payload: bytes | BinaryIO,
    options: dict[str, Any],
) -> None:
    """Stream the fan-out on ``backend``; only that framework is imported."""
    # The line number and text of each target not yet reported, by its index in the
    # stream: at most the workflows in flight, so this stays small however long the file.
    unreported: dict[int, tuple[int, str]] = {}

    def targets() -> Iterator[str]:
        for index, (number, text) in enumerate(lines):
            unreported[index] = (number, text)
            yield text
        run.read_all = True

    if backend == "trio":
        import trio

        from .. import trio_port

        async def on_trio() -> None:
            async with trio_port.stream_to_many(targets(), payload, **options) as reports:
                await _consume(reports, run, unreported)
            _after_a_stop(reports, run, unreported)

        trio.run(on_trio)
        return

    from .. import asyncio_port

    async def on_asyncio() -> None:
        async with asyncio_port.stream_to_many(targets(), payload, **options) as reports:
            await _consume(reports, run, unreported)
        _after_a_stop(reports, run, unreported)

    if backend == "asyncio+uvloop":
        import uvloop

        uvloop.run(on_asyncio())
        return
    import asyncio

    asyncio.run(on_asyncio())
