"""The ``trio-sockets`` command: ``demo``, ``send``, ``send-many``, ``serve`` and ``bench``.

``main(argv)`` returns the exit status instead of exiting, so that tests can call it
in-process: 0 for success, 1 when the network said no (a target failed or timed out, a
demo scenario misbehaved), 2 for bad usage, with a message on stderr that names the bad
value. ``python -m trio_sockets`` is the same command.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, NoReturn

from .. import __version__
from .._addresses import format_address
from .._checks import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_REPLY_BYTES, DEFAULT_TIMEOUT, MAX_BYTES

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["build_parser", "main"]

# Start-up is part of every command's time (`send` is often one short connection), so
# what only some commands need is imported where they use it: the install hints, the
# demo, the benchmark, json, tempfile, pathlib. tests/test_cli_startup.py keeps it so.

PROG: Final = "trio-sockets"
_EXTRA_OF_MODULE: Final = {"trustme": "tls"}  # a demo scenario's module: its extra


def install_hint(extra: str) -> str:
    """How to install ``extra`` into this installation (see :mod:`trio_sockets._hints`)."""
    # Imported when a hint is shown: finding it reads the installation's metadata
    # (importlib.metadata, email, urllib: about 15 ms that no command needs otherwise).
    from .._hints import install_hint as hint

    return hint(extra)


# A mark in a help text, written as that extra's install hint when help is shown.
_HINT_MARK: Final = re.compile(r"<install hint: (\w+)>")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help, with each ``<install hint: EXTRA>`` written as that hint."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text is None:
            return None
        # "%" doubled: argparse formats the help with %-style fields after this.
        return _HINT_MARK.sub(lambda mark: install_hint(mark[1]).replace("%", "%%"), text)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser with :class:`_HelpFormatter`, passed on to its subcommands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _fail(command: str, message: str) -> int:
    print(f"{PROG} {command}: error: {message}", file=sys.stderr)
    return 2


# --------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    import importlib.util
    import json
    from pathlib import Path

    from .. import demo  # the scenarios, their servers and rich: only when asked for

    try:
        scenarios = demo.select(args.scenarios)
    except KeyError as exc:
        valid = ", ".join(demo.scenario_names())
        return _fail("demo", f"unknown scenario {exc.args[0]!r}; valid names: {valid}")
    # A scenario whose optional extra is missing is skipped, with how to install it.
    for scenario in [s for s in scenarios if s.needs and not importlib.util.find_spec(s.needs)]:
        extra = _EXTRA_OF_MODULE.get(scenario.needs or "")
        hint = install_hint(extra) if extra else f"pip install {scenario.needs}"
        print(
            f"{PROG} demo: skipping {scenario.name}: it needs {scenario.needs}: {hint}",
            file=sys.stderr,
        )
        scenarios.remove(scenario)
    if not scenarios and not args.json:  # --json still prints its (empty) document
        return 0
    contestants = demo.CONTESTANTS_ON_UVLOOP if args.uvloop else demo.CONTESTANTS
    ports = demo.PORTS_ON_UVLOOP if args.uvloop else demo.PORTS
    if args.uvloop and importlib.util.find_spec("uvloop") is None:
        return _fail(
            "demo", f"--uvloop needs uvloop, which is not installed: {install_hint('uvloop')}"
        )
    # The value as given, for messages: Path("") would be shown as ".".
    given: str | None = args.plot
    plot = None if given is None else Path(given)
    if plot is not None:
        from ..demo._render import PLOT_SUFFIXES

        if plot.suffix.lower() not in PLOT_SUFFIXES:
            return _fail("demo", f"--plot {given!r}: the file name must end in .png or .svg")
        # Checked now, not after the whole demo has run (and its --json output is lost).
        problem = _unwritable(plot)
        if problem:
            return _fail("demo", f"--plot {given!r}: {problem}")
        try:
            import matplotlib  # noqa: F401 (checked before the demo runs, not after)
        except ImportError:
            return _fail(
                "demo", f"--plot needs matplotlib, which is not installed: {install_hint('plot')}"
            )

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..demo import _render
    from ..demo._code import Listings

    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=args.json or not sys.stderr.isatty(),
    )
    with progress:
        bar = progress.add_task("demo", total=len(scenarios) * len(contestants))
        for scenario in scenarios:
            row: dict[str, Any] = {
                "name": scenario.name,
                "title": scenario.title,
                "lesson": scenario.lesson,
                "results": {},
            }
            for contestant in contestants:
                progress.update(bar, description=f"{scenario.name} · {demo.LABELS[contestant]}")
                row["results"][contestant] = demo.run_scenario(scenario, contestant)
                progress.advance(bar)
            results.append(row)
    elapsed = time.perf_counter() - started

    if args.json:
        labels = [{"id": c, "label": demo.LABELS[c]} for c in contestants]
        output = {"contestants": labels, "scenarios": results, "total_s": elapsed}
        print(json.dumps(output, indent=2))
    else:
        # A file or a pipe gets 80 columns (or $COLUMNS), not the width of whatever
        # terminal rich finds on stdin or stderr: `| less` and `> file` read the same.
        piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
        console = Console(width=80 if piped else None, highlight=False)
        code = Listings([s.code for s in scenarios]) if args.code else None
        with console.capture() as captured:
            _render.print_demo(console, results, contestants, code)
            console.print(
                f"\n{len(results)} scenario{'s' if len(results) > 1 else ''}, "
                f"{len(contestants)} contestants, in {elapsed:.1f} s"
            )
        # rich pads wrapped lines to the width: trailing spaces in a file, and a blank
        # line after each in a narrower terminal. In colour, the padding is mixed with
        # the closing style codes: those stay.
        lines = captured.get().splitlines()
        sys.stdout.write("".join(_PADDING.sub(_unpadded, line) + "\n" for line in lines))
    if plot is not None:
        # After the output: a file system that refuses the plot late loses nothing else.
        try:
            _render.render_plot(results, contestants, plot)
        except OSError as exc:
            return _fail("demo", f"--plot {given!r}: {exc.strerror or exc}")
        print(f"plot written to {plot}", file=sys.stderr)
    # The plain contestants' flaws are the lesson; the ports must behave.
    behaved = all(row["results"][port]["as_expected"] for row in results for port in ports)
    return 0 if behaved else 1


# The end of a line made of spaces and SGR (colour, style) escape codes.
_PADDING: Final = re.compile(r"(?: |\x1b\[[0-9;]*m)+$")


def _unpadded(match: re.Match[str]) -> str:
    return match.group().replace(" ", "")


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written, or None if it can (as far as can be told now)."""
    folder = path.parent
    if not folder.is_dir():
        return f"the directory {str(folder)!r} does not exist"
    if path.is_dir():
        return "that is a directory"
    if not os.access(path if path.exists() else folder, os.W_OK):
        return f"{'the file' if path.exists() else 'its directory'} is not writable"
    # access() says yes where the file system still says no (/proc, a read-only mount
    # seen by root): create and remove a file there to be sure.
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".trio-sockets-plot-"):
            pass
    except OSError as exc:
        return f"cannot write in its directory {str(folder)!r}: {exc.strerror or exc}"
    return None


# --------------------------------------------------------------------------------------
# send
# --------------------------------------------------------------------------------------


def _seconds(text: str) -> float | None:
    """argparse type for ``--timeout``: seconds, non-negative; ``none`` for no deadline."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"must be a non-negative number of seconds, got {text!r}"
        ) from None
    return value


def _idle_seconds(text: str) -> float | None:
    """argparse type for ``--idle-timeout``: as ``--timeout``, but more than 0."""
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def _size(text: str) -> int:
    """argparse type for ``--max-reply``: a positive number of bytes, at most 1 GiB."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of bytes, got {text!r}")
    if int(text) > MAX_BYTES:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_BYTES} bytes, got {text!r}")
    return int(text)


# The escapes of --data and --reply-until: a shell cannot easily pass CR LF, and
# protocols end in it.
_ESCAPES: Final = {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0", b"\\": b"\\"}
_ESCAPE: Final = re.compile(rb"\\(x[0-9a-fA-F]{2}|.?)", re.DOTALL)


def _unescaped(text: str) -> bytes:
    r"""argparse type for ``--data``: ``\r``, ``\n``, ``\t``, ``\0``, ``\\`` and ``\xHH``
    escapes are decoded, the rest is taken as UTF-8."""

    def decode(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if len(code) == 3:  # xHH
            return bytes([int(code[1:], 16)])
        if code in _ESCAPES:
            return _ESCAPES[code]
        # Quoted, not repr(): the user's text as typed, backslashes not doubled.
        escape = match.group(0).decode("utf-8", "surrogateescape")
        raise argparse.ArgumentTypeError(
            f"unknown escape '{escape}' in '{text}'; use \\r, \\n, \\t, \\0, \\\\ or \\xHH"
        )

    # surrogateescape: bytes that were not UTF-8 in argv go out as they came in.
    return _ESCAPE.sub(decode, text.encode("utf-8", "surrogateescape"))


def _escaped_bytes(text: str) -> bytes:
    r"""argparse type for ``--reply-until``: as ``--data``, and not empty."""
    value = _unescaped(text)
    if not value:
        raise argparse.ArgumentTypeError(f"must not be empty, got {text!r}")
    return value


def _send_command(args: argparse.Namespace) -> int:
    from ._send import run_send

    return run_send(args)


# --------------------------------------------------------------------------------------
# send-many
# --------------------------------------------------------------------------------------


def _send_many_command(args: argparse.Namespace) -> int:
    from ._send_many import run_send_many

    return run_send_many(args)


def _concurrency(text: str) -> int:
    """argparse type for ``--concurrency``: a positive number of workflows at once."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def _add_send_many(sub: Any) -> None:
    many = sub.add_parser(
        "send-many",
        help="send one payload to every target of a file, many at a time",
        description="Read TARGETS_FILE (or standard input, '-') lazily, one target per "
        "line (blank lines and '#' comments are skipped), and run send's workflow for "
        "each, at most --concurrency at once, in memory bounded by --concurrency however "
        "long the file. A line that is not a target is that line's error report. Reports "
        "come as they complete: JSON lines on standard output when it is not a terminal "
        "(or with --jsonl), one line of text on a terminal; progress and a summary on "
        "standard error. Exit 0 when every target was ok, 1 when any was not, 2 for bad "
        "usage, 130 on Ctrl+C.",
    )
    many.add_argument(
        "targets", metavar="TARGETS_FILE", help="a file of targets, one per line, or '-'"
    )
    source = many.add_mutually_exclusive_group()
    source.add_argument(
        "--data",
        type=_unescaped,
        metavar="TEXT",
        help=r"send TEXT (UTF-8) to every target, with \r, \n, \t, \0, \xHH escapes and "
        r"\\ for a backslash",
    )
    source.add_argument(
        "--file",
        metavar="PATH",
        help="send the bytes of PATH to every target, zero-copy where the system allows "
        "('-' for standard input; a stream other than a regular file: at most 64 MiB)",
    )
    many.add_argument(
        "--backend",
        choices=("trio", "asyncio", "asyncio+uvloop"),
        default="trio",
        help="which framework runs the fan-out (<install hint: uvloop> for uvloop) (default: trio)",
    )
    many.add_argument(
        "--concurrency",
        type=_concurrency,
        default=DEFAULT_MAX_CONCURRENCY,
        metavar="N",
        help=f"at most N targets at once (default: {DEFAULT_MAX_CONCURRENCY})",
    )
    many.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first target that is not ok: the others in flight are cancelled",
    )
    many.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds for each target's workflow, or 'none' (default: {DEFAULT_TIMEOUT:g})",
    )
    many.add_argument(
        "--reply", action="store_true", help="read each reply while sending; half-close once sent"
    )
    many.add_argument(
        "--no-half-close",
        dest="half_close",
        action="store_false",
        help="keep the sending side open while the reply is read; end the reply with "
        "--reply-until or --idle-timeout",
    )
    many.add_argument(
        "--reply-until",
        type=_escaped_bytes,
        metavar="TEXT",
        help=r"stop reading once the reply ends with TEXT (\r, \n, \t, \xHH escapes; "
        "implies --reply)",
    )
    many.add_argument(
        "--idle-timeout",
        type=_idle_seconds,
        metavar="S",
        help="stop reading after S seconds without a byte of reply (implies --reply)",
    )
    many.add_argument(
        "--max-reply",
        type=_size,
        default=DEFAULT_MAX_REPLY_BYTES,
        metavar="N",
        help=f"read at most N bytes of each reply (default: {DEFAULT_MAX_REPLY_BYTES})",
    )
    many.add_argument("--tls", action="store_true", help="speak TLS, verified as send does")
    many.add_argument(
        "--cafile", metavar="PATH", help="trust the CA certificates in PATH (implies --tls)"
    )
    many.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify certificates or host names (implies --tls)",
    )
    many.add_argument(
        "--jsonl",
        action="store_true",
        help="JSON lines on standard output even on a terminal (the default elsewhere)",
    )
    # send's report helpers look for these; send-many writes no reply bytes anywhere.
    many.set_defaults(func=_send_many_command, raw=False, output=None)


# --------------------------------------------------------------------------------------
# serve
# --------------------------------------------------------------------------------------


def _port_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..65535, got {text!r}")
    return int(text)


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    # SIGTERM takes the same way out as Ctrl+C: close the server, exit 0.
    raise KeyboardInterrupt


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _size_text(count: int) -> str:
    """``"5 bytes"``, or ``"11.0 GiB (11,811,160,066 bytes)"`` for a large count."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit} ({count:,} bytes)"
    return _count(count, "byte")


def _add_serve(subparsers: Any) -> None:
    from ..testing.servers import MODES, TLS_MODES

    serve = subparsers.add_parser(
        "serve",
        help=f"run a loopback test server ({', '.join(MODES)})",
        description="Run a test server until Ctrl+C or SIGTERM. Its first line of output "
        "is 'listening on HOST:PORT'.",
    )
    serve.add_argument("mode", choices=MODES, metavar="MODE", help=f"one of {', '.join(MODES)}")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback)"
    )
    serve.add_argument(
        "--port", type=_port_number, default=0, help="port to bind (default: 0, any free port)"
    )
    serve.add_argument(
        "--tls",
        action="store_true",
        help=f"speak TLS ({', '.join(TLS_MODES)}), with a certificate from a throwaway CA "
        f"whose file is printed, for send --tls --cafile FILE; needs trustme: <install hint: tls>",
    )
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from ..testing.servers import TLS_MODES, LoopbackServer

    if not args.host.strip():
        return _fail(
            "serve",
            f"--host {args.host!r} would bind every interface; use 127.0.0.1",
        )
    tls: _ThrowawayTLS | None = None
    if args.tls:
        if args.mode not in TLS_MODES:
            return _fail("serve", f"--tls works with {', '.join(TLS_MODES)}, not {args.mode!r}")
        import importlib.util

        if importlib.util.find_spec("trustme") is None:
            return _fail(
                "serve", f"--tls needs trustme, which is not installed: {install_hint('tls')}"
            )
        tls = _ThrowawayTLS(args.host)
    try:
        server = LoopbackServer(
            args.mode, args.host, args.port, tls=None if tls is None else tls.context
        )
    except OSError as exc:
        if tls is not None:
            tls.close()
        print(
            f"{PROG} serve: cannot listen on {format_address((args.host, args.port))}: {exc}",
            file=sys.stderr,
        )
        return 1
    in_main = threading.current_thread() is threading.main_thread()
    previous: dict[int, Any] = {}
    if in_main:  # signal handlers can only be set from the main thread
        # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python then
        # leaves it so; `kill -INT` must still stop the server.
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _interrupt)
    try:
        # The signal may come as soon as the line is out: be ready for it before that.
        with server, contextlib.suppress(KeyboardInterrupt):
            print(f"listening on {server.target}", flush=True)
            if tls is not None:
                print(f"TLS certificate from a throwaway CA: {tls.ca_path}", flush=True)
                # Two lines, joined by the shell's backslash, to fit 80 columns.
                print(
                    f"try: {PROG} send {server.target} --tls --data hi \\\n"
                    f"       --cafile {tls.ca_path}",
                    flush=True,
                )
            threading.Event().wait()  # only a signal ends this
    finally:
        if tls is not None:
            tls.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(
        f"stopped: {_count(server.connections, 'connection')}, "
        f"{_size_text(server.bytes_received)} received",
        file=sys.stderr,
    )
    return 0


class _ThrowawayTLS:
    """A CA made for this run (``trustme``), a certificate for ``host``, the CA in a file.

    The CA file lives in a temporary directory, removed by :meth:`close`, so that
    ``send --tls --cafile`` can trust this server and nothing else ever does.
    """

    def __init__(self, host: str) -> None:
        import tempfile

        import trustme

        from ..testing.servers import tls_server_context

        ca = trustme.CA()
        names = (host, "localhost") if host != "localhost" else (host,)
        self.context = tls_server_context(ca, *names)
        self._directory = tempfile.TemporaryDirectory(prefix="trio-sockets-serve-")
        self.ca_path = os.path.join(self._directory.name, "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)

    def close(self) -> None:
        self._directory.cleanup()


# --------------------------------------------------------------------------------------
# bench (trio_sockets.bench, imported only when the subcommand is used)
# --------------------------------------------------------------------------------------


def _add_bench(subparsers: Any, wanted: bool) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure both ports against the raw frameworks and plain sockets",
        description="Measure both ports against the raw frameworks and plain sockets, on loopback.",
    )
    if not wanted:
        return  # `trio-sockets --help` need not import the benchmark
    try:
        from .. import bench  # type: ignore[attr-defined, unused-ignore]
    except ImportError as exc:
        reason = str(exc)
        parser.set_defaults(
            func=lambda _: _fail("bench", f"the benchmark is not available ({reason})")
        )
        return
    bench.add_arguments(parser)
    parser.set_defaults(func=bench.run)


# --------------------------------------------------------------------------------------
# The parser and main()
# --------------------------------------------------------------------------------------


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The command's parser; ``argv`` tells which subcommands' parsers are built in full."""
    parser = _Parser(
        prog=PROG,
        description="Connect, check, send: Trio's structured concurrency side by side "
        "with asyncio. Start with `trio-sockets demo`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands = [a for a in argv if not a.startswith("-")]
    names = ""
    if commands[:1] == ["demo"]:
        # Only for the demo: its contestants import Trio, asyncio and both ports, most
        # of the start-up of a command such as `send --backend asyncio`.
        from ..demo import scenario_names  # no servers start on import

        names = ": " + ", ".join(scenario_names())
    demo = sub.add_parser(
        "demo",
        help="run the scenarios on four contestants and show what each measurably did",
        description="Run each scenario on the Trio port, the asyncio port, asyncio as "
        "tutorials write it, and threads, against loopback servers the demo starts itself, "
        "and show what each did and left behind.",
    )
    demo.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help=f"scenarios to run (default: all){names}"
    )
    demo.add_argument("--json", action="store_true", help="print one JSON object, no table")
    demo.add_argument(
        "--code",
        action="store_true",
        help="under each scenario, the Trio and asyncio source it exercises, the "
        "differing lines marked",
    )
    demo.add_argument(
        "--uvloop",
        action="store_true",
        help="run the asyncio port on uvloop (reported as asyncio+uvloop); <install hint: uvloop>",
    )
    demo.add_argument(
        "--plot",
        metavar="FILE",
        help="draw the connection attempts on a timeline, to FILE (.png or .svg); "
        "needs matplotlib: <install hint: plot>",
    )
    demo.set_defaults(func=_demo)

    send = sub.add_parser(
        "send",
        help="connect, check, send one payload to TARGET (like netcat)",
        description="Resolve TARGET, connect (racing its addresses), check it is writable, "
        "send the payload, and print the report. The payload is streamed: a file or "
        "standard input is sent as it is read, after connecting, in bounded memory. "
        "Exit 0 when the kernel took every byte (and the reply was read, if asked), 1 "
        "when the target failed or timed out, 2 for bad usage, 130 on Ctrl+C.",
    )
    send.add_argument("target", metavar="TARGET", help="host:port or [v6-literal]:port")
    source = send.add_mutually_exclusive_group()
    source.add_argument(
        "--data",
        type=_unescaped,
        metavar="TEXT",
        help=r"send TEXT (UTF-8), with \r, \n, \t, \0, \xHH escapes and \\ for a "
        r"backslash: --data 'PING\r\n'",
    )
    source.add_argument(
        "--file", metavar="PATH", help="send the bytes of PATH ('-' for standard input)"
    )
    send.add_argument(
        "--backend",
        choices=("trio", "asyncio", "asyncio+uvloop"),
        default="trio",
        help="which framework runs the workflow: the Trio port, the asyncio port, or the "
        "asyncio port on uvloop "
        "(<install hint: uvloop>) (default: trio)",
    )
    send.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds for the whole workflow, or 'none' (default: {DEFAULT_TIMEOUT:g})",
    )
    send.add_argument(
        "--reply",
        action="store_true",
        help="read the reply while sending, as netcat does; half-close (our end of "
        "stream) once the payload is sent, unless --no-half-close",
    )
    send.add_argument(
        "--no-half-close",
        dest="half_close",
        action="store_false",
        help="keep the sending side open while the reply is read (netcat's default), for "
        "servers that drop their reply on a half-close; end the reply with "
        "--reply-until or --idle-timeout (implies --reply)",
    )
    send.add_argument(
        "--reply-until",
        type=_escaped_bytes,
        metavar="TEXT",
        help=r"stop reading once the reply ends with TEXT, with --data's escapes: "
        r"--reply-until '\r\n' (implies --reply)",
    )
    send.add_argument(
        "--idle-timeout",
        type=_idle_seconds,
        metavar="S",
        help="stop reading after S seconds without a byte of reply, like nc -w (implies --reply)",
    )
    send.add_argument(
        "--max-reply",
        type=_size,
        default=DEFAULT_MAX_REPLY_BYTES,
        metavar="N",
        help=f"read at most N bytes of reply; a longer reply is cut, and the report says "
        f"so (default: {DEFAULT_MAX_REPLY_BYTES})",
    )
    sink = send.add_mutually_exclusive_group()
    sink.add_argument(
        "--raw",
        action="store_true",
        help="write the reply's bytes, unchanged, to standard output, and the report to "
        "standard error (implies --reply)",
    )
    sink.add_argument(
        "--output",
        metavar="FILE",
        help="write the reply's bytes, unchanged, to FILE (implies --reply)",
    )
    send.add_argument(
        "--tls",
        action="store_true",
        help="speak TLS; the server's certificate and host name are verified against the "
        "system's CA certificates (or --cafile's)",
    )
    send.add_argument(
        "--cafile",
        metavar="PATH",
        help="trust the CA certificates in PATH (PEM) instead of the system's (implies --tls)",
    )
    send.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server's certificate or host name (implies --tls); a "
        "warning says so every time",
    )
    send.add_argument("--json", action="store_true", help="print the report as JSON")
    send.epilog = (
        "Without --data or --file, the payload is read from standard input. --timeout "
        "covers the whole run, reading the payload included: give --timeout none for a "
        "slow or interactive input. The reply is read once the payload has ended."
    )
    send.set_defaults(func=_send_command)
    _add_send_many(sub)

    if commands[:1] in (["send"], ["send-many"]):
        # The modes come from the loopback servers' module: not imported for a send,
        # which waits for its start-up. Only the name is needed, to tell the commands apart.
        sub.add_parser("serve", help="run a loopback test server")
    else:
        _add_serve(sub)

    _add_bench(sub, wanted=bool(commands) and commands[0] == "bench")
    return parser


# Options whose value may be a negative number such as -inf: argparse would take
# "--timeout -inf" for two options ("-inf" does not look like a number to it) and say
# "expected one argument"; joined as "--timeout=-inf", the value reaches its check,
# whose message names it.
_NUMERIC_OPTIONS: Final = frozenset({"--timeout", "--idle-timeout", "--max-reply"})


def _join_numeric_values(argv: list[str]) -> list[str]:
    joined: list[str] = []
    values = iter(argv)
    for arg in values:
        if arg == "--":
            joined.append(arg)
            joined.extend(values)
            break
        if arg in _NUMERIC_OPTIONS:
            value = next(values, None)
            if value is not None and value.startswith("-") and _is_number(value):
                joined.append(f"{arg}={value}")
                continue
            joined.append(arg)
            if value is not None:
                joined.append(value)
            continue
        joined.append(arg)
    return joined


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _interrupted(exc: BaseException) -> bool:
    """Ctrl+C, bare or inside an exception group made of nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_interrupted(inner) for inner in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args_list = _join_numeric_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(args_list)
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or a usage error (status 2)
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = 1
    try:
        status = args.func(args)
        # Flushed here, not at exit: a reader that went away is found while we can
        # still keep the command's own status.
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`trio-sockets send ... | head -1`): not an error worth
        # a traceback. Point stdout at /dev/null so that the final flush cannot fail too.
        from ._send import silence_stdout

        silence_stdout()
        return status
    except BaseException as exc:
        if not _interrupted(exc):
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return status
