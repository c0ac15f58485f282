"""``trio-sockets send``: one payload to one target, like netcat, with a report.

Exit status: 0 when the kernel took every byte (and the reply was read, if asked), 1
when the target failed or timed out, 2 for bad usage (checked before any I/O: the
target, the files), 130 on Ctrl+C (see ``main``). A reader of standard output that
goes away (``| head -1``) changes nothing: the status is the send's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import ssl
import sys
from typing import IO, Any

from .._errors import TargetError
from .._reports import SendReport
from .._targets import Target
from ._output import report_text
from ._stream import Payload, StoppableStream, open_payload

__all__ = ["run_send", "silence_stdout"]


PROG = "trio-sockets send"


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def silence_stdout() -> None:
    """Point standard output at /dev/null: its reader has gone away.

    This is the recipe of Python's documentation (``signal``, "Note on SIGPIPE"): the
    interpreter's last flush at exit then has nowhere to fail, so no second error and
    no traceback follow the first.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def run_send(args: argparse.Namespace) -> int:
    """The ``send`` command, from parsed arguments; returns the exit status."""
    try:
        target = Target.parse(args.target)
    except TargetError as exc:
        return _fail(f"bad TARGET: {exc}")  # the message names the target itself
    if args.backend == "asyncio+uvloop" and _missing("uvloop"):
        from . import install_hint

        return _fail(f"--backend asyncio+uvloop needs uvloop: {install_hint('uvloop')}")
    if args.output is not None and (problem := _unwritable(args.output)):
        # Checked before connecting: a reply must not be lost to a bad path. The file
        # itself is written only once there is a reply: a failed send leaves it alone.
        return _fail(f"cannot write --output {args.output!r}: {problem}")
    with contextlib.ExitStack() as stack:
        if args.data is None and args.file in (None, "-") and _stdin_is_a_terminal():
            # Otherwise a user who forgot the payload sees nothing happen at all.
            limit = "" if args.timeout is None else f", within --timeout {args.timeout:g} s"
            print(
                f"reading the payload from the terminal: end it with Ctrl+D{limit}",
                file=sys.stderr,
            )
        try:
            payload = open_payload(_data(args), args.file, _stdin())
        except OSError as exc:
            return _fail(f"cannot read --file {args.file!r}: {exc.strerror or exc}")
        if isinstance(payload, StoppableStream) or args.file not in (None, "-"):
            stack.callback(payload.close)  # type: ignore[union-attr]
        try:
            tls = _tls(args)
        except (OSError, ValueError) as exc:
            return _fail(f"cannot load --cafile {args.cafile!r}: {exc}")
        # A file's position tells how much of it went out: the workflow leaves it just
        # past the last byte the kernel took, also when Ctrl+C cuts the send short.
        file = payload if isinstance(payload, io.IOBase) and payload.seekable() else None
        start = 0 if file is None else file.tell()
        try:
            report = _run(args.backend, target, payload, _options(args, tls))
        except KeyboardInterrupt:
            if file is not None:  # --file, or standard input redirected from a file
                sent = file.tell() - start
                noun = "byte" if sent == 1 else "bytes"
                name = "standard input" if args.file in (None, "-") else repr(args.file)
                print(f"{PROG}: {sent:,} {noun} of {name} sent before Ctrl+C", file=sys.stderr)
            raise
        status = 0 if report.ok else 1
        if args.output is not None and report.reply is not None:
            try:
                with open(args.output, "wb") as output:
                    output.write(report.reply)
            except OSError as exc:
                print(f"{PROG}: cannot write --output {args.output!r}: {exc}", file=sys.stderr)
                status = 1
        try:
            _emit(args, report)
            sys.stdout.flush()  # a reader that went away is found here, not at exit
        except BrokenPipeError:
            silence_stdout()
        return status


def _missing(module: str) -> bool:
    # Imported, not looked up with importlib.util.find_spec: the backend imports it
    # next anyway, and importlib.util would be one more module to start.
    try:
        __import__(module)
    except ImportError:
        return True
    return False


def _tls(args: argparse.Namespace, command: str = "send") -> bool | ssl.SSLContext:
    """``tls=`` for the library: False, True (the system's CAs), or a context of our own."""
    if not (args.tls or args.cafile or args.insecure):
        return False
    if args.cafile is None and not args.insecure:
        return True
    context = ssl.create_default_context(cafile=args.cafile)
    if args.insecure:
        # Said every time, on standard error: a connection that anyone on the path can
        # read and change must never look like a verified one.
        print(
            f"trio-sockets {command}: warning: --insecure: the server's certificate and host name "
            "are NOT verified; anyone on the path can read and change this connection",
            file=sys.stderr,
        )
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _options(args: argparse.Namespace, tls: bool | ssl.SSLContext) -> dict[str, Any]:
    """The library's options for one target, from ``send``'s flags (``send-many``'s too)."""
    return {
        "timeout": args.timeout,
        "read_reply": args.reply or _implies_reply(args),
        "max_reply_bytes": args.max_reply,
        "half_close": args.half_close,
        "reply_until": args.reply_until,
        "reply_idle_timeout": args.idle_timeout,
        "tls": tls,
    }


def _implies_reply(args: argparse.Namespace) -> bool:
    # Each of these is about the reply: asking for one asks for the reply.
    return bool(
        args.raw or args.output is not None or args.reply_until is not None
        or args.idle_timeout is not None or not args.half_close
    )  # fmt: skip


def _data(args: argparse.Namespace) -> bytes | None:
    # Already bytes: the parser decoded the escapes and the UTF-8.
    data: bytes | None = args.data
    return data


def _stdin() -> IO[bytes] | None:
    stdin = sys.stdin
    return None if stdin is None else stdin.buffer


def _stdin_is_a_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


def _run(backend: str, target: Target, payload: Payload, options: dict[str, Any]) -> SendReport:
    """``connect_check_send`` on ``backend``; only that framework is imported."""

    def stopped() -> None:
        # The send is over (done, timed out, or interrupted): a thread still waiting
        # on standard input must end now, or asyncio.run() would wait for it.
        if isinstance(payload, StoppableStream):
            payload.stop()

    if backend == "trio":
        import trio

        from .. import trio_port

        async def on_trio() -> SendReport:
            try:
                return await trio_port.connect_check_send(target, payload, **options)  # type: ignore[arg-type]
            finally:
                stopped()

        return trio.run(on_trio)

    from .. import asyncio_port

    async def on_asyncio() -> SendReport:
        try:
            return await asyncio_port.connect_check_send(target, payload, **options)  # type: ignore[arg-type]
        finally:
            stopped()

    if backend == "asyncio+uvloop":
        import uvloop

        report: SendReport = uvloop.run(on_asyncio())
        return report
    import asyncio

    return asyncio.run(on_asyncio())


def _unwritable(path: str) -> str | None:
    """Why ``path`` cannot be written, or ``None``: checked before any I/O."""
    if os.path.isdir(path):
        return "that is a directory"
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        return f"no directory {folder!r}"
    if not os.access(path if os.path.exists(path) else folder, os.W_OK):
        return "permission denied"
    return None


def _emit(args: argparse.Namespace, report: SendReport) -> None:
    reply_to = None
    if args.raw:
        reply_to = "standard output"
        if report.reply:
            sys.stdout.buffer.write(report.reply)
    elif args.output is not None and report.reply is not None:
        reply_to = args.output
    # With --raw, standard output holds the reply alone: the report goes to stderr.
    stream = sys.stderr if args.raw else sys.stdout
    if args.json:
        import json  # only for --json: start-up counts in a short send

        data = _json(report, args.backend)
        if reply_to is not None:
            data["reply_written_to"] = reply_to
        print(json.dumps(data, indent=2), file=stream)
    else:
        print(report_text(report, max_reply=args.max_reply, reply_to=reply_to), file=stream)


def _json(report: SendReport, backend: str) -> dict[str, Any]:
    return report.to_dict() | {"backend": backend}
