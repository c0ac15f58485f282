"""Reply assembly: bytes received into one buffer, up to a limit. Part of the sans-I/O core.

The ports receive straight into the buffer's free space (``recv_into``), so a reply
costs one ``bytearray`` whatever the peer's pacing. Gathering ``bytes`` chunks in a list
instead costs an object per receive: a peer that trickles one byte at a time would make
each byte of reply cost some 60 bytes of memory.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

__all__ = ["ReplyBuffer", "ReplyEnd"]

# Why reading a reply stopped: the peer's end of stream, the size limit, the bytes that
# end a reply, or an idle peer.
ReplyEnd: TypeAlias = Literal["eof", "limit", "until", "idle"]

# The buffer starts this large (or at the limit, if smaller) and doubles as the reply
# grows: a short reply under a large limit does not reserve the whole limit up front,
# and a long one is copied O(log n) times. Either way it never exceeds the limit.
_FIRST_CAPACITY: Final = 65536  # bytes


class ReplyBuffer:
    """A reply received into one growing ``bytearray``, up to ``max_bytes``.

    The port asks for :meth:`free` space, receives into it, and reports the count with
    :meth:`received`; :attr:`end` becomes set once reading should stop. Memory stays
    under twice ``max_bytes`` (the buffer) plus the final copy from :meth:`value`.

    ``until``, when given, ends the reply once the bytes received so far end with it,
    wherever the receives split it; a marker followed by more bytes in the same receive
    does not end it (the reply would not end with it).
    """

    __slots__ = ("_buffer", "_size", "end", "max_bytes", "until")

    def __init__(self, max_bytes: int, until: bytes | None = None) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.until = until
        self.end: ReplyEnd | None = None
        self._buffer = bytearray(min(max_bytes, _FIRST_CAPACITY))
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def room(self) -> int:
        """How many more bytes the reply may hold."""
        return self.max_bytes - self._size

    def free(self) -> memoryview:
        """A view of the free space to receive into; release it before the next call.

        Grows the buffer first when it is full and the limit allows more.
        """
        if self.end is not None:
            raise RuntimeError(f"the reply has ended ({self.end}); nothing more is read")
        if self._size == len(self._buffer):
            grown = bytearray(min(2 * len(self._buffer), self.max_bytes))
            grown[: self._size] = self._buffer
            self._buffer = grown
        return memoryview(self._buffer)[self._size :]

    def received(self, count: int) -> ReplyEnd | None:
        """Count ``count`` bytes just received into :meth:`free`; 0 means end of stream.

        Returns:
            :attr:`end`: why reading should stop now, or ``None`` to read on.
        """
        if not 0 <= count <= len(self._buffer) - self._size:
            raise ValueError(f"received {count} bytes into {len(self._buffer) - self._size}")
        if count == 0:
            self.end = "eof"
            return self.end
        self._size += count
        until = self.until
        if until is not None and self._buffer.endswith(until, 0, self._size):
            self.end = "until"
        elif self._size == self.max_bytes:
            self.end = "limit"
        return self.end

    def idle(self) -> None:
        """The peer sent nothing for the idle timeout: the reply ends here."""
        self.end = "idle"

    def add(self, chunk: bytes) -> ReplyEnd | None:
        """Append ``chunk`` as if received into :meth:`free` (a convenience for tests)."""
        if len(chunk) > self.room:
            raise ValueError(f"chunk of {len(chunk)} bytes exceeds the {self.room} bytes left")
        done = 0
        while done < len(chunk) and self.end is None:
            with self.free() as space:
                n = min(len(space), len(chunk) - done)
                space[:n] = chunk[done : done + n]
            self.received(n)
            done += n
        return self.end

    def value(self) -> bytes:
        """The reply so far, as ``bytes``."""
        with memoryview(self._buffer) as view:
            return bytes(view[: self._size])
