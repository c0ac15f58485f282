"""``send``'s payload, streamed: connect first, then send the bytes as they come.

netcat connects before it reads its standard input, and sends each piece as soon as it
arrives; so does ``trio-sockets send``. Memory stays bounded by one chunk, whatever
the size of the payload: a 1 GiB file or an endless ``/dev/zero`` costs what a 256 KiB
chunk costs.

The payload is one of:

- ``bytes`` (``--data``);
- a regular file (``--file PATH``, or standard input redirected from a file): read in
  bounded chunks, which never block for long;
- a stream (a pipe, a terminal, a FIFO, a character device): read in a thread, one
  chunk at a time, so that the event loop never blocks on it and the deadline still
  applies while nothing arrives.

The workflow is the library's own (resolve, race, check, send, reply) built from the
same pieces as ``connect_check_send``, with the payload step streamed; so the report,
its phases and its errors are those of the library.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import queue
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Final, TypeAlias

from .._checks import DEFAULT_DELAY
from .._errors import describe_error
from .._reports import ReportBuilder, SendReport
from .._targets import Target

if TYPE_CHECKING:  # each backend imports only its own framework, when it runs
    from ..asyncio_port import Connection as AsyncioConnection
    from ..trio_port import Connection as TrioConnection

__all__ = ["CHUNK", "Job", "Stream", "asyncio_send", "open_source", "trio_send"]

CHUNK: Final = 262144  # bytes read (and held) at a time


class Stream:
    """A file that may block (a pipe, a terminal, a FIFO): read in a thread."""

    def __init__(self, file: IO[bytes], name: str) -> None:
        self.file = file
        self.fd = file.fileno()
        self.name = name


Source: TypeAlias = "bytes | IO[bytes] | Stream"


def open_source(data: bytes | None, path: str | None, stdin: IO[bytes] | None) -> Source:
    """The payload: ``data``, else the file at ``path`` (``-``: stdin), else ``stdin``.

    Raises:
        OSError: ``path`` cannot be opened.
    """
    if data is not None:
        return data
    if path is not None and path != "-":
        file = open(path, "rb")  # noqa: SIM115 (closed by the caller, after the send)
        return _classify(file, path)
    if stdin is None:  # no standard input at all (closed by the parent)
        return b""
    return _classify(stdin, "standard input")


def _classify(file: IO[bytes], name: str) -> Source:
    try:
        fd = file.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both: BytesIO and the like
        return file
    if stat.S_ISREG(os.fstat(fd).st_mode):
        return file
    return Stream(file, name)


@dataclass(frozen=True)
class Job:
    """One send: where, what, and how to read the reply."""

    target: Target
    source: Source
    timeout: float | None
    read_reply: bool
    max_reply: int


def _read_file(file: IO[bytes], buffer: bytearray) -> int:
    # readinto where the object has it (every binary file does), into one buffer for
    # the whole file: no new bytes object per chunk.
    readinto = getattr(file, "readinto", None)
    if readinto is not None:
        return int(readinto(buffer) or 0)
    chunk = file.read(len(buffer))
    buffer[: len(chunk)] = chunk
    return len(chunk)


# --------------------------------------------------------------------------------------
# Trio
# --------------------------------------------------------------------------------------


async def trio_send(job: Job) -> SendReport:
    """Run ``job`` on Trio and return its report (network trouble is reported)."""
    import trio

    from .. import trio_port as port

    report = ReportBuilder(job.target, port._now())
    with trio.move_on_after(math.inf if job.timeout is None else job.timeout):
        try:
            conn = await port._open(job.target, DEFAULT_DELAY, None, report)
            try:
                report.address = conn.remote_address
                report.check_at = port._now()
                await conn.wait_writable()
                report.send_at = port._now()
                try:
                    await _trio_send_source(conn, job.source)
                finally:
                    report.bytes_sent = conn.bytes_sent
                if job.read_reply:
                    report.reply_at = port._now()
                    await port._read_reply(conn, job.max_reply, report)
            finally:
                conn._close()
        except OSError as exc:
            return report.finish("error", port._now(), describe_error(exc))
        return report.finish("ok", port._now())
    return report.finish("timeout", port._now(), report.timeout_text(job.timeout))


async def _trio_send_source(conn: TrioConnection, source: Source) -> None:
    import trio

    if isinstance(source, bytes):
        await conn.send_all(source)
    elif isinstance(source, Stream):
        # trio: a worker thread per read, from Trio's thread cache. abandon_on_cancel:
        # at the deadline (or Ctrl+C) the read is left behind in its daemon thread
        # instead of holding the whole run until the pipe says something.
        while chunk := await trio.to_thread.run_sync(
            os.read, source.fd, CHUNK, abandon_on_cancel=True
        ):
            await conn.send_all(chunk)
    else:
        buffer = bytearray(CHUNK)
        with memoryview(buffer) as view:
            while n := _read_file(source, buffer):
                await conn.send_all(view[:n])
                await trio.lowlevel.checkpoint_if_cancelled()


# --------------------------------------------------------------------------------------
# asyncio
# --------------------------------------------------------------------------------------


async def asyncio_send(job: Job) -> SendReport:
    """Run ``job`` on asyncio and return its report (network trouble is reported)."""
    from .. import asyncio_port as port

    report = ReportBuilder(job.target, port._now())
    # asyncio: no deadline is None; an infinite one would be a timer at float("inf").
    deadline = None if job.timeout is None or math.isinf(job.timeout) else job.timeout
    try:
        async with asyncio.timeout(deadline):
            try:
                conn = await port._open(job.target, DEFAULT_DELAY, None, report)
                try:
                    report.address = conn.remote_address
                    report.check_at = port._now()
                    await conn.wait_writable()
                    report.send_at = port._now()
                    try:
                        await _asyncio_send_source(conn, job.source)
                    finally:
                        report.bytes_sent = conn.bytes_sent
                    if job.read_reply:
                        report.reply_at = port._now()
                        await port._read_reply(conn, job.max_reply, report)
                finally:
                    conn._close()
            except OSError as exc:
                # asyncio: the deadline arrives as CancelledError in here, and leaves
                # the ``async with`` as TimeoutError (an OSError): never caught here.
                return report.finish("error", port._now(), describe_error(exc))
    except TimeoutError:
        return report.finish("timeout", port._now(), report.timeout_text(job.timeout))
    return report.finish("ok", port._now())


async def _asyncio_send_source(conn: AsyncioConnection, source: Source) -> None:
    if isinstance(source, bytes):
        await conn.send_all(source)
    elif isinstance(source, Stream):
        reader = _ThreadReader(source.fd)
        while chunk := await reader.read(CHUNK):
            await conn.send_all(chunk)
    else:
        buffer = bytearray(CHUNK)
        with memoryview(buffer) as view:
            while n := _read_file(source, buffer):
                await conn.send_all(view[:n])
                await asyncio.sleep(0)  # a deadline or Ctrl+C gets in between chunks


class _ThreadReader:
    """Reads a file descriptor in a daemon thread, one chunk per request.

    asyncio: ``asyncio.to_thread`` would run the read in the loop's default executor,
    whose threads ``asyncio.run`` joins when it ends: a read still waiting on a quiet
    pipe would hold the process after the deadline. A daemon thread of our own is left
    behind instead, as Trio's ``abandon_on_cancel`` does.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._requests: queue.SimpleQueue[tuple[int, Callable[[bytes | OSError], None]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    async def read(self, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()

        def settle(result: bytes | OSError) -> None:
            if future.done():  # cancelled meanwhile: nobody wants the chunk any more
                return
            if isinstance(result, OSError):
                future.set_exception(result)
            else:
                future.set_result(result)

        def done(result: bytes | OSError) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, result)

        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stdin reader", daemon=True)
            self._thread.start()
        self._requests.put((size, done))
        return await future

    def _run(self) -> None:
        while True:
            size, done = self._requests.get()
            try:
                data = os.read(self._fd, size)
            except OSError as exc:
                done(exc)
            else:
                done(data)
