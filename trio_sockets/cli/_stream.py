"""``send``'s payload: bytes, a file, or a stream such as standard input.

The library streams a file payload itself: a regular file goes zero-copy with
``os.sendfile``, from its current position; anything else is read in bounded chunks
after connecting, and a pipe in a worker thread, so that the event loop runs while the
writer is quiet. That is netcat's behaviour: connect first, then send each piece as it
arrives, in memory bounded by one chunk however long the input.

One piece is the command's own. A worker thread blocked on a quiet pipe cannot be
interrupted, and asyncio's ``asyncio.run`` waits for its worker threads before it
returns: after the deadline, or Ctrl+C, the command would hang until the writer spoke.
So a stream is wrapped in :class:`StoppableStream`, whose reads wait for the data *or*
for :meth:`StoppableStream.stop`; the command stops it when the send is over, and the
thread ends at once.
"""

from __future__ import annotations

import io
import os
import select
from typing import IO, TypeAlias

__all__ = ["Payload", "StoppableStream", "open_payload"]

Payload: TypeAlias = "bytes | IO[bytes] | StoppableStream"


class StoppableStream(io.RawIOBase):
    """A readable file descriptor (a pipe, a terminal) whose blocked reads can be ended.

    Each read returns what has arrived, as soon as something has (as ``os.read``
    does), or ``b""`` once :meth:`stop` was called, as at end of file. POSIX only: it
    waits with ``select`` on the descriptor and on a pipe of its own.
    """

    def __init__(self, fd: int, name: str, owner: IO[bytes] | None = None) -> None:
        super().__init__()
        self._fd = fd
        self._owner = owner  # the file that holds ``fd``, closed with this one
        self.name = name
        self._wake_r, self._wake_w = os.pipe()
        self._stopped = False

    def __repr__(self) -> str:
        return f"<StoppableStream {self.name}>"

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._stopped:
            return 0
        ready, _, _ = select.select([self._fd, self._wake_r], [], [])
        if self._wake_r in ready:
            return 0
        return os.readv(self._fd, [buffer])

    def stop(self) -> None:
        """End the read under way, and every later one, as if at end of file."""
        if not self._stopped:
            self._stopped = True
            os.write(self._wake_w, b"\0")

    def close(self) -> None:
        """Stop, release the wake-up pipe, and close the owner of the descriptor."""
        if not self.closed:
            self.stop()
            os.close(self._wake_r)
            os.close(self._wake_w)
            if self._owner is not None:
                self._owner.close()
        super().close()


def open_payload(data: bytes | None, path: str | None, stdin: IO[bytes] | None) -> Payload:
    """The payload: ``data``, else the file at ``path`` (``-``: stdin), else ``stdin``.

    A file that can seek (a regular file, ``/dev/zero``) is given to the library as it
    is; one that cannot (a pipe, a terminal, a FIFO) as a :class:`StoppableStream`.

    Raises:
        OSError: ``path`` cannot be opened.
    """
    if data is not None:
        return data
    if path is not None and path != "-":
        file = open(path, "rb")  # noqa: SIM115 (the caller closes what it gets back)
        return _streamed(file, path, owned=True)
    if stdin is None:  # no standard input at all (closed by the parent)
        return b""
    return _streamed(stdin, "standard input", owned=False)


def _streamed(file: IO[bytes], name: str, *, owned: bool) -> IO[bytes] | StoppableStream:
    if file.seekable():
        return file
    try:
        fd = file.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both: no descriptor
        return file
    return StoppableStream(fd, name, file if owned else None)
