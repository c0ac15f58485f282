"""Reply assembly: chunks gathered up to a limit. Part of the sans-I/O core."""

from __future__ import annotations

__all__ = ["ReplyBuffer"]


class ReplyBuffer:
    """Gathers reply chunks up to ``max_bytes``; :attr:`room` is what may still come."""

    __slots__ = ("_chunks", "_size", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._chunks: list[bytes] = []
        self._size = 0

    @property
    def room(self) -> int:
        return self.max_bytes - self._size

    def add(self, chunk: bytes) -> None:
        if len(chunk) > self.room:
            raise ValueError(f"chunk of {len(chunk)} bytes exceeds the {self.room} bytes left")
        self._chunks.append(chunk)
        self._size += len(chunk)

    def value(self) -> bytes:
        return b"".join(self._chunks)
